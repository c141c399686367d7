"""An audit event's detail as people read it: moments as UTC dates, never epoch floats."""

from __future__ import annotations

from aifactory.web.templating import detail_items


def test_moments_lists_and_nested_values_are_written_for_people() -> None:
    items = detail_items(
        {
            "until": 1_767_225_600.0,
            "granted_at": 1_767_225_600,
            "from": 0,
            "to": -5,
            "nodes": ["n1", "n2"],
            "terms": {"purpose": "research"},
            "note": None,
            "ok": True,
        }
    )
    assert items == [
        ("from", "0"),  # a priority, not a moment
        ("granted_at", "2026-01-01 00:00:00 UTC"),
        ("nodes", "n1, n2"),
        ("note", "—"),
        ("ok", "True"),
        ("terms", '{"purpose": "research"}'),
        ("to", "-5"),
        ("until", "2026-01-01 00:00:00 UTC"),
    ]
    assert detail_items(None) == []
