"""Telling people about alerts: signed webhooks in three formats, Alertmanager, and the outbox that delivers them."""
