"""Persistence: SQLAlchemy 2 models, Alembic migrations and the reads and writes that use them.

The database is the only source of truth (DESIGN.md §7): every state change is one transaction
that writes the new state and its event row together.
"""
