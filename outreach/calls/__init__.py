"""The call centre: teams and agents, the day's call tasks, atomic claims, outcomes and exports.

Kept import-free on purpose: ``outreach.models`` imports ``outreach.calls.models`` to register the
tables, so importing this package must not pull in the rest of the core.
"""
