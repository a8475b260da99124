"""Campaigns: reviewable YAML files that marketing operations schedule, pause and measure.

A campaign selects an audience, promotes offers through (a narrowing of) the offers' channels at set
send times, within daily and total budgets, with template variants and a control group. It never
bypasses the decision engine: its candidates go through the same eligibility, caps, arbitration and
capacity as everything else, and the campaign rules (``seam.apply``) only narrow the outcome.

Modules, each with one job (import them directly; this package imports nothing eagerly so that
``outreach.models`` can load the tables without pulling in the policy engine):

- ``model``      the schema of a campaign file (pydantic)
- ``loader``     YAML with line numbers, schema and reference checks -> file:line: reason
- ``tables``     the state tables (campaigns, campaign_assignments, campaign_events)
- ``state``      sync definitions, pause/resume, lifecycle state, budgets used
- ``assignment`` deterministic control-group and variant assignment (pure functions)
- ``audience``   the candidate source: customers matching a campaign's audience filter
- ``seam``       the campaign rules applied to the engine's decisions (planning calls this)
- ``gate``       the dispatcher's check: paused campaigns wait, variants choose templates
- ``report``     results per variant and channel, uplift vs control with a 95% interval, chart
- ``demo``       a finished campaign simulated into the database for the demo
"""
