"""SQL the two databases spell differently."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class floor_div(FunctionElement[int]):  # noqa: N801 - SQL function style
    """floor((value - start) / width) for value ≥ start: the index of a time slice.
    PostgreSQL rounds a float cast to an integer, SQLite truncates (and may lack FLOOR)."""

    type = Integer()
    inherit_cache = True
    name = "floor_div"


@compiles(floor_div)
def _floor_div_default(element: floor_div, compiler: Any, **kw: Any) -> str:
    value, start, width = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(FLOOR(({value} - {start}) / {width}) AS INTEGER)"


@compiles(floor_div, "sqlite")
def _floor_div_sqlite(element: floor_div, compiler: Any, **kw: Any) -> str:
    value, start, width = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST((({value}) - ({start})) / ({width}) AS INTEGER)"
