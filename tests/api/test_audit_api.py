"""The audit log over the API: what is recorded (with the client's address), who reads how
much of it, its filters, the JSON Lines export and the chain check."""

from __future__ import annotations

import json

import httpx
import pytest

from aifactory.client.client import ApiError
from tests.api.helpers import Tenants, assert_error, bearer


@pytest.fixture
def world(tenants: Tenants) -> dict[str, int]:
    """proj-a and proj-b each with a job; an auditor, audrey. Returns the job ids."""
    tenants.tokens["audrey"] = tenants.admin.create_user("audrey", facility_role="auditor")["token"]
    a = tenants.as_("alice").submit(["true"], project="proj-a")["id"]
    b = tenants.as_("bob").submit(["true"], project="proj-b")["id"]
    tenants.as_("alice").cancel(a)
    return {"proj-a": a, "proj-b": b}


def objects(events: list[dict[str, object]]) -> list[object]:
    return [e["object"] for e in events]


def test_actions_are_recorded_with_actor_object_source_and_outcome(
    tenants: Tenants, world: dict[str, int]
) -> None:
    events = tenants.admin.audit(limit=1000)
    actions = [e["action"] for e in events]
    for action in (
        "organisation.create",
        "user.create",
        "token.create",
        "project.create",
        "member.add",
        "job.submit",
        "job.cancel",
    ):
        assert action in actions, action
    submit = tenants.admin.audit(action="job.submit", actor="alice")
    assert objects(submit) == [f"job:{world['proj-a']}"]
    (event,) = submit
    assert (event["outcome"], event["source"]) == ("ok", "127.0.0.1")
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))


def test_admins_and_auditors_read_everything_members_their_projects_others_nothing(
    tenants: Tenants, world: dict[str, int]
) -> None:
    every = objects(tenants.admin.audit(action="job.submit"))
    assert every == [f"job:{world['proj-a']}", f"job:{world['proj-b']}"]
    assert objects(tenants.as_("audrey").audit(action="job.submit")) == every
    for name in ("alice", "owen"):
        seen = tenants.as_(name).audit(limit=1000)
        assert f"job:{world['proj-a']}" in objects(seen)
        assert f"job:{world['proj-b']}" not in objects(seen)
        assert {e["project_id"] for e in seen} == {seen[0]["project_id"]}
    assert objects(tenants.as_("bob").audit(action="job.submit")) == [f"job:{world['proj-b']}"]
    for name in ("vera", "carol", "olga"):  # a viewer, a user with no project, an operator
        with pytest.raises(ApiError) as refused:
            tenants.as_(name).audit()
        assert refused.value.status == 403, name


def test_filters_by_object_and_time_and_pages_by_seq(
    tenants: Tenants, world: dict[str, int]
) -> None:
    job = f"job:{world['proj-a']}"
    assert [e["action"] for e in tenants.admin.audit(object=job)] == ["job.submit", "job.cancel"]
    everything = tenants.admin.audit(limit=1000)
    first_two = tenants.admin.audit(limit=2)
    assert first_two == everything[:2]
    assert tenants.admin.audit(after_seq=2, limit=1) == everything[2:3]
    assert tenants.admin.audit(since="2999-01-01") == []
    assert tenants.admin.audit(until="2000-01-01") == []


def test_a_refused_token_is_recorded_with_its_source(api: httpx.Client, tenants: Tenants) -> None:
    assert_error(api.get("/me", headers=bearer("afy_garbage0")), 401)
    issued = tenants.as_("carol").create_token("laptop")
    tenants.as_("carol").revoke_token(issued["id"])
    assert_error(api.get("/me", headers=bearer(issued["token"])), 401, reason="revoked")
    assert_error(api.get("/me"), 401)  # no token at all: no attempt to sign in, not recorded

    failed = tenants.admin.audit(action="auth.failed")
    assert [(e["actor"], e["object"], e["outcome"], e["source"]) for e in failed] == [
        ("unknown", "token:?", "denied", "127.0.0.1"),
        ("carol", f"token:{issued['id']}", "denied", "127.0.0.1"),
    ]
    assert failed[0]["detail"]["prefix"] == "afy_garbag"
    assert "revoked" in failed[1]["detail"]["reason"]
    revoked = tenants.admin.audit(action="token.revoke", actor="carol")
    assert objects(revoked) == [f"token:{issued['id']}"]


def test_export_is_json_lines_with_the_same_visibility(
    api: httpx.Client, tenants: Tenants, world: dict[str, int]
) -> None:
    response = api.get("/audit/export", headers=tenants.headers("alice"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert lines == tenants.as_("alice").audit(limit=1000)
    streamed = [json.loads(line) for line in tenants.admin.audit_export(actor="bob")]
    assert streamed == tenants.admin.audit(actor="bob", limit=1000)
    assert_error(api.get("/audit/export", headers=tenants.headers("vera")), 403)


def test_verify_is_for_admins_and_auditors(
    api: httpx.Client, tenants: Tenants, world: dict[str, int]
) -> None:
    result = tenants.as_("audrey").audit_verify()
    count = len(tenants.admin.audit(limit=1000))
    assert result == {"ok": True, "checked": count, "first_bad_seq": None, "reason": None}
    assert_error(api.get("/audit/verify", headers=tenants.headers("owen")), 403)
