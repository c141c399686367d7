"""The audit log's chain, as pure rules: how an event is written down and hashed, and how a
sequence of stored events is checked.

Words: an *event* says who (`actor`) did what (`action`, e.g. "job.submit") to which `object`
(e.g. "job:12"), when (`at`, UNIX seconds), from where (`source`, the client address) and with
what `outcome` ("ok", "denied", "failed"). Events are numbered by `seq` from 1 with no gaps.

Invariants: an event's `hash` is the SHA-256 of its canonical form, which includes the previous
event's hash (`prev_hash`; 64 zeros for the first). So changing an event breaks its own hash;
deleting or inserting one breaks the numbering or the next event's `prev_hash`; and the last
event must be the one the log's head names, so cutting off the tail is seen too.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

GENESIS_HASH = "0" * 64


class Outcome(enum.StrEnum):
    OK = "ok"
    DENIED = "denied"  # refused: not allowed, or not who they said they were
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One event as it is stored, hash included."""

    seq: int
    at: float
    actor: str
    action: str
    object: str
    project_id: int | None
    source: str | None
    outcome: str
    detail: dict[str, Any]
    prev_hash: str
    hash: str


def canonical(
    *,
    seq: int,
    at: float,
    actor: str,
    action: str,
    object: str,
    project_id: int | None,
    source: str | None,
    outcome: str,
    detail: dict[str, Any],
    prev_hash: str,
) -> bytes:
    """Sorted-key, compact, ASCII JSON of every field but the hash: one byte string per event."""
    fields = {
        "seq": seq,
        "at": at,
        "actor": actor,
        "action": action,
        "object": object,
        "project_id": project_id,
        "source": source,
        "outcome": outcome,
        "detail": detail,
        "prev_hash": prev_hash,
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def event_hash(**fields: Any) -> str:
    """The SHA-256 (hex) of `canonical(**fields)`."""
    return hashlib.sha256(canonical(**fields)).hexdigest()


def record_hash(record: AuditRecord) -> str:
    return event_hash(
        seq=record.seq,
        at=record.at,
        actor=record.actor,
        action=record.action,
        object=record.object,
        project_id=record.project_id,
        source=record.source,
        outcome=record.outcome,
        detail=record.detail,
        prev_hash=record.prev_hash,
    )


@dataclass(frozen=True, slots=True)
class ChainCheck:
    ok: bool
    checked: int  # events read before the first break (all of them when ok)
    first_bad_seq: int | None = None
    reason: str | None = None


def check_chain(records: Iterable[AuditRecord], *, head: tuple[int, str] | None) -> ChainCheck:
    """Walk `records` in seq order and name the first event that breaks the chain.

    `head` is (seq, hash) of the last event as the log's head records it; None skips that
    check. Reads the records once, holding only the previous one.
    """
    expected, prev_hash, checked = 1, GENESIS_HASH, 0
    for record in records:
        problem = _problem(record, expected, prev_hash)
        if problem is not None:
            return ChainCheck(False, checked, problem[0], problem[1])
        expected, prev_hash, checked = expected + 1, record.hash, checked + 1
    return _check_head(checked, prev_hash, head)


def _problem(record: AuditRecord, expected: int, prev_hash: str) -> tuple[int, str] | None:
    if record.seq > expected:
        return expected, f"event {expected} is missing (the next stored event is {record.seq})"
    if record.seq < expected:
        return record.seq, f"event {record.seq} appears again after event {expected - 1}"
    if record.prev_hash != prev_hash:
        return record.seq, (
            f"event {record.seq} does not follow event {record.seq - 1}: its previous-event "
            "hash differs (an event before it was removed, replaced or inserted)"
        )
    if record_hash(record) != record.hash:
        return record.seq, f"event {record.seq} was changed: its hash does not match its contents"
    return None


def _check_head(checked: int, last_hash: str, head: tuple[int, str] | None) -> ChainCheck:
    if head is None:
        return ChainCheck(True, checked)
    head_seq, head_hash = head
    if head_seq > checked:
        return ChainCheck(
            False,
            checked,
            checked + 1,
            f"event {checked + 1} is missing: the log's head says it holds {head_seq} events",
        )
    if head_seq < checked:
        return ChainCheck(
            False,
            head_seq,
            head_seq + 1,
            f"event {head_seq + 1} is past the last event the log's head recorded ({head_seq})",
        )
    if head_hash != last_hash:
        return ChainCheck(
            False, checked, checked, f"event {checked} is not the last event the head recorded"
        )
    return ChainCheck(True, checked)
