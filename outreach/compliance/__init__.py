"""Accountability for the regulator: figures computed from the ledger, consent history and events."""
