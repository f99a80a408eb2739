"""Alembic's migration environment and revisions for the gateway's schema (store.migrate)."""
