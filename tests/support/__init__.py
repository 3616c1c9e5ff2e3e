"""Helpers the integration tests share: the broker, a running app, the database, waiting."""
