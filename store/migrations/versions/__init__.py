"""The schema revisions, oldest first by their numbers; Alembic chains them by id."""
