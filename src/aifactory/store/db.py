"""Engines and sessions for SQLite (embedded default) and PostgreSQL (facility).

SQLite serialises writers; a deferred transaction that reads and then writes can fail at once
with SQLITE_BUSY when another writer got in between. So write sessions on SQLite start with
`BEGIN IMMEDIATE` (they wait on busy_timeout instead), while read sessions stay deferred and
run beside writers under WAL. Within one process, writers also queue on a lock first: SQLite's
busy handler waits by sleeping in growing steps, which turns contention into long tails.
"""

from __future__ import annotations

import math
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _ensure_exp(connection: Any, cursor: Any) -> None:
    """EXP() in SQL (decayed usage is summed in the database): SQLite has it when built with
    its math functions, as Debian's is; else Python's, registered on the connection."""
    try:
        cursor.execute("SELECT exp(0)")
    except sqlite3.OperationalError:
        connection.create_function("exp", 1, math.exp, deterministic=True)


def _sqlite_engine(url: str, *, immediate: bool) -> Engine:
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        # Checkpoints (which fsync) never run inside a writer's commit: `checkpoint()` does
        # them off the hot path.
        cursor.execute("PRAGMA wal_autocheckpoint=0")
        _ensure_exp(dbapi_connection, cursor)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Database:
    """Owns the engines of one facility database; hands out short sessions."""

    def __init__(self, url: str) -> None:
        self.url = url
        if is_sqlite(url):
            self.write_engine = _sqlite_engine(url, immediate=True)
            self.read_engine = _sqlite_engine(url, immediate=False)
        else:
            self.write_engine = create_engine(
                url, pool_size=10, max_overflow=20, pool_pre_ping=True
            )
            self.read_engine = self.write_engine
        self._writer_lock: threading.Lock | None = threading.Lock() if is_sqlite(url) else None
        self._write = sessionmaker(self.write_engine, expire_on_commit=False)
        self._read = sessionmaker(self.read_engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A write transaction: committed on success, rolled back on any error."""
        with self._writer_lock or nullcontext(), self._write() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._read() as session, session.begin():
            yield session

    def checkpoint(self) -> None:
        """SQLite: copy the write-ahead log into the database file without blocking anyone
        (PASSIVE). A no-op on PostgreSQL."""
        if is_sqlite(self.url):
            with self.read_engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    def dispose(self) -> None:
        self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            self.read_engine.dispose()
