"""The audit chain's pure rules: any one change, removal, insertion or reordering of events
is found, at the event where it happened."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from aifactory.domain.audit import (
    GENESIS_HASH,
    AuditRecord,
    canonical,
    check_chain,
    event_hash,
    record_hash,
)


def chain(count: int, *, start_at: float = 1_700_000_000.25) -> list[AuditRecord]:
    records: list[AuditRecord] = []
    prev = GENESIS_HASH
    for seq in range(1, count + 1):
        record = forged(seq, prev, actor=f"user{seq % 3}", at=start_at + seq)
        records.append(record)
        prev = record.hash
    return records


def forged(seq: int, prev_hash: str, *, actor: str = "mallory", at: float = 1.5) -> AuditRecord:
    """An event whose own hash is right: what someone who can write SQL could make."""
    fields = {
        "seq": seq,
        "at": at,
        "actor": actor,
        "action": "job.submit",
        "object": f"job:{seq}",
        "project_id": seq % 2 or None,
        "source": "10.0.0.7",
        "outcome": "ok",
        "detail": {"n": seq, "why": "é"},
        "prev_hash": prev_hash,
    }
    return AuditRecord(**fields, hash=event_hash(**fields))  # type: ignore[arg-type]


def head_of(records: list[AuditRecord]) -> tuple[int, str]:
    return (records[-1].seq, records[-1].hash) if records else (0, GENESIS_HASH)


def test_an_untouched_chain_is_intact() -> None:
    records = chain(5)
    assert check_chain(records, head=head_of(records)).ok
    assert check_chain(records, head=head_of(records)).checked == 5
    assert check_chain([], head=(0, GENESIS_HASH)).ok


def test_the_canonical_form_is_sorted_compact_json_of_every_field_but_the_hash() -> None:
    text = canonical(
        seq=1,
        at=2.5,
        actor="a",
        action="x.y",
        object="o:1",
        project_id=None,
        source=None,
        outcome="ok",
        detail={"b": 1, "a": [1]},
        prev_hash=GENESIS_HASH,
    )
    assert text == (
        b'{"action":"x.y","actor":"a","at":2.5,"detail":{"a":[1],"b":1},"object":"o:1",'
        b'"outcome":"ok","prev_hash":"' + GENESIS_HASH.encode() + b'","project_id":null,'
        b'"seq":1,"source":null}'
    )
    record = chain(1)[0]
    assert record_hash(record) == record.hash


sizes = st.integers(min_value=1, max_value=12)


@given(st.data(), sizes)
def test_a_changed_event_is_found_at_its_seq(data: st.DataObject, count: int) -> None:
    records = chain(count)
    i = data.draw(st.integers(0, count - 1))
    change = data.draw(
        st.sampled_from(
            [
                {"actor": "someone-else"},
                {"at": records[i].at + 1},
                {"outcome": "denied"},
                {"detail": {"n": -1}},
                {"source": None},
                {"project_id": 99},
                {"hash": "f" * 64},
            ]
        )
    )
    records[i] = replace(records[i], **change)
    found = check_chain(records, head=head_of(chain(count)))
    assert (found.ok, found.first_bad_seq) == (False, i + 1), found


@given(st.data(), sizes)
def test_a_changed_and_rehashed_event_breaks_the_next_link(data: st.DataObject, n: int) -> None:
    original = chain(n)
    i = data.draw(st.integers(0, n - 1))
    records = list(original)
    records[i] = forged(i + 1, records[i].prev_hash)
    found = check_chain(records, head=head_of(original))
    # The next event's prev_hash no longer matches; the last event no longer matches the head.
    assert (found.ok, found.first_bad_seq) == (False, min(i + 2, n)), found


@given(st.data(), sizes)
def test_a_removed_event_is_found_at_its_seq(data: st.DataObject, count: int) -> None:
    records = chain(count)
    head = head_of(records)
    i = data.draw(st.integers(0, count - 1))
    del records[i]
    found = check_chain(records, head=head)
    assert (found.ok, found.first_bad_seq) == (False, i + 1), found
    assert "missing" in (found.reason or "")


@given(st.data(), sizes)
def test_an_inserted_event_is_found_at_its_seq(data: st.DataObject, count: int) -> None:
    records = chain(count)
    head = head_of(records)
    i = data.draw(st.integers(0, count))
    prev = records[i - 1].hash if i else GENESIS_HASH
    records.insert(i, forged(i + 1, prev))
    found = check_chain(records, head=head)
    assert (found.ok, found.first_bad_seq) == (False, i + 1), found


@given(st.data(), st.integers(min_value=2, max_value=12))
def test_reordered_events_are_found_where_the_order_breaks(data: st.DataObject, n: int) -> None:
    records = chain(n)
    head = head_of(records)
    i = data.draw(st.integers(0, n - 2))
    j = data.draw(st.integers(i + 1, n - 1))
    records[i], records[j] = records[j], records[i]
    found = check_chain(records, head=head)
    assert (found.ok, found.first_bad_seq) == (False, i + 1), found


def test_the_check_reads_the_records_once_in_order() -> None:
    records = chain(3)
    assert check_chain(iter(records), head=head_of(records)).checked == 3
