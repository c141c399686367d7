"""Which engine serves an endpoint (services.endpoints): the recipe's serves a finished job's
checkpoints; vLLM a dataset's model directory, in an environment that has it, listening on the
replica's socket only — the options that say where it listens are the facility's."""

from __future__ import annotations

from pathlib import Path

import pytest

from aifactory.errors import InvalidInput
from aifactory.services.auth import principal_of
from aifactory.services.endpoints import EndpointSpec, create_endpoint, engine_command
from aifactory.services.tenancy import user_by_name
from aifactory.store.db import Database
from aifactory.store.models import Endpoint
from tests.conftest import seed_facility

T0 = 1_800_000_000.0
JOBS = Path("/srv/jobs")


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (EndpointSpec("m", None, engine="tgi"), "engine"),
        (EndpointSpec("m", None, engine="vllm", environment="vllm-env"), "dataset"),
        (EndpointSpec("m", None, engine="vllm", dataset="llama"), "environment"),
        (EndpointSpec("m", 1, dataset="llama"), "engine"),
        (
            EndpointSpec(
                "m", None, engine="vllm", dataset="llama", environment="e",
                engine_args=("--port=8000",),
            ),
            "engine_args",
        ),
        (
            EndpointSpec(
                "m", None, engine="vllm", dataset="llama", environment="e",
                engine_args=("--max-model-len", "4096; rm -rf /"),
            ),
            "engine_args",
        ),
        (EndpointSpec("m", None), "source_job"),
    ],
)  # fmt: skip
def test_what_an_engine_needs_is_checked_naming_the_field(
    db: Database, spec: EndpointSpec, field: str
) -> None:
    seed_facility(db, now=T0)
    with db.session() as s, pytest.raises(InvalidInput) as refused:
        admin = principal_of(s, user_by_name(s, "admin"))
        create_endpoint(s, admin, spec, project="default", jobs_dir=JOBS, now=T0)
    assert refused.value.field == field


def test_vllm_listens_on_the_replicas_socket_only_under_the_endpoints_name() -> None:
    endpoint = Endpoint(
        name="llama", engine="vllm", dataset="llama-3@2", source_job_id=None,
        engine_args=["--max-model-len=4096", "--dtype", "bfloat16"], environment="vllm",
    )  # fmt: skip
    command = engine_command(endpoint, JOBS)
    assert command[:2] == ("sh", "-c")
    assert command[3:] == ("vllm", "llama", "--max-model-len=4096", "--dtype", "bfloat16")
    assert 'vllm serve "${AIFACTORY_DATASET_LLAMA_3}" --uds engine.sock' in command[2]
    assert '--served-model-name "$name" "$@"' in command[2]


def test_the_recipes_engine_serves_the_jobs_checkpoints() -> None:
    endpoint = Endpoint(name="dutch", engine="recipe", source_job_id=7, environment=None)
    command = engine_command(endpoint, JOBS)
    assert command[1:4] == ("-m", "aifactory.recipes.dutch_gpt", "serve")
    assert command[command.index("--from") + 1] == str(JOBS / "7" / "work" / "checkpoints")
    assert command[command.index("--socket") + 1] == "engine.sock"
