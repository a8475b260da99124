"""Development and demo support, kept out of the product core (``outreach``).

Imports ``outreach``; ``outreach`` never imports this package at module level, only the CLI
commands that exist for development do, lazily: ``outreach demo`` (synthetic bank, demo
campaign), ``outreach generate`` (synthetic bank as CSV) and ``outreach fake-providers``
(local servers that speak the Twilio and SendGrid APIs). The naive reference implementations
(``planning_reference``, ``policy_reference``) are what the tests and benchmarks compare the
set-based core against.
"""
