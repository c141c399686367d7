"""Scheduler what-if runs (being built)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/whatif", tags=["what-if"])
