"""Outgoing mail: written to the outbox in the request's transaction, delivered by a job."""
