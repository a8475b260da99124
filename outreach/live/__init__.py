"""The live lane: payment events from a message broker, decided in micro-batches by the daily
lane's policy engine, written to the same ledger and sent through the same channels
(docs/realtime.md)."""
