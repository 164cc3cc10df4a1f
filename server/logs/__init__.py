"""Everything read from Loki: the client, LogQL, entry ordering, ListAppLogs, the live tail hub, tokens."""
