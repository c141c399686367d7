"""`aifactory erasures`, `aifactory processing-records`, `aifactory project export|close`:
the GDPR workflows."""

from __future__ import annotations

import typer


def register(root: typer.Typer) -> None:
    """Adds the GDPR commands to the root app."""
