"""The unit of work every service call takes, named here so the faces (api, web) never
import the database layer: they open one, hand it to a service and read the view it returns.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from aifactory.store.db import Database

__all__ = ["Database", "Session"]
