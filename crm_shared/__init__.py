"""Shared infrastructure for every CRM service: configuration, database,
migrations, outbox, reliable events, RPC with timeouts, secrets, metrics,
logging and errors. No business logic lives here."""
