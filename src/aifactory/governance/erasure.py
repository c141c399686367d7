"""Erasure of dataset versions (GDPR Art. 17, retention expiry, project closure)."""

from __future__ import annotations

from pathlib import Path

from aifactory.store.db import Database


def advance(db: Database, now: float, *, data_root: Path, jobs_dir: Path) -> None:
    """Start the erasures that are due and finish the ones under way (the control loop calls
    this every tick; it must be cheap when there is nothing to do)."""
