"""The API against its own OpenAPI, as schemathesis sees it (`st run --checks all`): every
operation of the live schema of a real server, signed in as the admin, through every phase
(examples, coverage, fuzzing, stateful) with every check, on SQLite and on PostgreSQL.

Bounded to run in well under a minute a database: a few examples an operation, and a fixed
seed, so that a run repeats (change SEED, or raise MAX_EXAMPLES, to look further).
schemathesis missing is a failure, never a skip: the dev extra installs it.

The engine (`schemathesis.engine.from_schema(schema).execute()`, what `st run` drives) is used
rather than `schemathesis.pytest.from_fixture`, whose lazy loader breaks on pytest 9.2 (it sets
the node's `_nodeid`, which pytest no longer has).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import LiveServer

SEED = 20260101
MAX_EXAMPLES = 10

# Operations left out, each with why.
LEFT_OUT = [
    # Revoking tokens by id: the fuzzer would revoke the admin's own token (id 1), and every
    # request after it would answer 401. tests/api/test_tokens.py covers revocation.
    ("DELETE", "/api/v1/tokens/{token_id}"),
]

# Checks left out for some operations, each with why. positive_data_acceptance expects every
# schema-valid request to succeed; these operations also keep rules between fields, or against
# what is stored, that JSON Schema cannot state, and answer 422 naming the field at fault (the
# schemas check types and sizes, the services the rules: see api/accounting_schemas.py).
RULES_BEYOND_THE_SCHEMA = [
    # a period's end after its start
    ("GET", "/api/v1/usage"),
    ("GET", "/api/v1/reports/funder"),
    ("GET", "/api/v1/reports/funder/charts/{chart}.{fmt}"),
    # validity windows, budgets and capacity shares against the programme and the others
    ("POST", "/api/v1/allocations"),
    ("POST", "/api/v1/calls"),
    ("POST", "/api/v1/programmes"),
    ("PUT", "/api/v1/programmes/{programme}"),
    # a month that has ended
    ("POST", "/api/v1/projects/{project}/invoices"),
    # a path inside the data root that exists, a retention in the future
    ("POST", "/api/v1/datasets"),
    ("POST", "/api/v1/datasets/{name}/versions"),
    # B must differ from A
    ("POST", "/api/v1/whatif"),
    # the current password must match
    ("PUT", "/api/v1/me/password"),
    # job ids or filters, not both, and not neither; no ended state among the filters
    ("POST", "/api/v1/jobs/cancel"),
    # bytes that are an image's tar, of this host's architecture, whose blobs match their digests
    ("POST", "/api/v1/images"),
]


def load_schemathesis() -> ModuleType:
    try:
        return importlib.import_module("schemathesis")
    except ModuleNotFoundError:
        pytest.fail("schemathesis is not installed: `make setup-dev` installs the dev extra")


# schemathesis' own lists, less 5xx (never a right answer here) and with 413: a body over the
# server's limit (64 KiB in these tests) is refused before it is read, whatever it holds; every
# operation documents that answer.
REJECTED = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "413", "429"]


def config(token: str) -> dict[str, Any]:
    return {
        "seed": SEED,
        "headers": {"Authorization": f"Bearer {token}"},
        "generation": {
            "max-examples": MAX_EXAMPLES,
            "database": "none",  # no examples kept between runs: each run is the same run
            # Every string the API takes refuses NUL (PostgreSQL text cannot hold it, nor can an
            # argv or an environment: api.schemas.Request), a rule the schema does not state.
            "allow-x00": False,
        },
        "checks": {
            "enabled": True,  # all of them, as --checks all
            "negative_data_rejection": {"expected-statuses": REJECTED},
            "positive_data_acceptance": {"expected-statuses": ACCEPTED},
            # The stateful phase guesses links between operations: it takes a created project's
            # `id` for the `{project}` path parameter, which is the project's name, and calls
            # the right 404 a resource that vanished. The schema declares no links to follow.
            "ensure_resource_availability": {"enabled": False},
        },
        "operations": [
            {
                "include-method": method,
                "include-path": path,
                "checks": {"positive_data_acceptance": {"enabled": False}},
            }
            for method, path in RULES_BEYOND_THE_SCHEMA
        ],
    }


def test_the_api_conforms_to_its_openapi(live_server: LiveServer) -> None:
    schemathesis = load_schemathesis()
    schema = schemathesis.openapi.from_url(
        f"{live_server.url}/api/v1/openapi.json",
        config=schemathesis.Config.from_dict(config(live_server.admin_token)),
    )
    for method, path in LEFT_OUT:
        schema = schema.exclude(method=method, path=path)
    schema.hook("map_body")(whole_numbers_as_integers)
    failures = run(schemathesis, schema)
    assert not failures, f"{len(failures)} failures:\n\n" + "\n\n".join(failures)


def whole_numbers_as_integers(_context: Any, body: Any) -> Any:
    """2.0 where the schema says integer: JSON Schema counts it as one, while the API's strict
    request models take only 2 (as they refuse "2" and true). Left out here, not decided here:
    the bodies go with 2."""
    if isinstance(body, float) and body.is_integer() and abs(body) < 2**53:
        return int(body)
    if isinstance(body, dict):
        return {key: whole_numbers_as_integers(_context, value) for key, value in body.items()}
    if isinstance(body, list):
        return [whole_numbers_as_integers(_context, value) for value in body]
    return body


def run(schemathesis: ModuleType, schema: Any) -> list[str]:
    """Each distinct failure the run found, as text: the operation, the check, why, and a curl
    command that repeats it."""
    events = importlib.import_module("schemathesis.engine.events")
    found: dict[tuple[str, str, str], str] = {}
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished | events.FuzzScenarioFinished):
            for checks in event.recorder.checks.values():
                for check in checks:
                    if (info := check.failure_info) is not None:
                        key = (event.recorder.label, check.name, info.failure.title)
                        found.setdefault(key, describe(key, info))
        elif isinstance(event, events.NonFatalError | events.FatalError):
            found.setdefault(("error", repr(event), ""), f"error: {event!r}")
        elif isinstance(event, events.EngineFinished):
            found.update({("after run", str(f), ""): str(f) for f in event.failures})
    return list(found.values())


def describe(key: tuple[str, str, str], info: Any) -> str:
    label, check, title = key
    sample = info.code_sample
    sample = sample if len(sample) <= 600 else sample[:600] + " …"
    return f"{label} — {check}: {title}\n{info.failure.message}\n{sample}"
