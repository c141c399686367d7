"""The SDK's inference calls: endpoints (a project's models, served) and inference keys.
`Client` mixes them in. The gateway itself (`/v1`) is called with any OpenAI client."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from aifactory.client.plumbing import Plumbing

Json = dict[str, Any]


class InferenceCalls(Plumbing):
    def create_endpoint(
        self,
        name: str,
        *,
        project: str,
        source_job: int | None = None,
        replicas: int = 1,
        cpus: int = 1,
        memory_mb: int = 2048,
        gpus: int = 0,
        environment: str | None = None,
        max_replicas: int | None = None,
        concurrency: int = 4,
        idle_timeout_s: float = 900.0,
        time_limit_s: float = 86400.0,
        engine: str = "recipe",
        dataset: str | None = None,
        engine_args: Sequence[str] = (),
    ) -> Json:
        body = {
            "name": name,
            "project": project,
            "source_job": source_job,
            "replicas": replicas,
            "cpus": cpus,
            "memory_mb": memory_mb,
            "gpus": gpus,
            "environment": environment,
            "max_replicas": max_replicas,
            "concurrency": concurrency,
            "idle_timeout_s": idle_timeout_s,
            "time_limit_s": time_limit_s,
            "engine": engine,
            "dataset": dataset,
            "engine_args": list(engine_args),
        }
        result: Json = self._call("POST", "/endpoints", json=body)
        return result

    def endpoints(self, *, project: str) -> list[Json]:
        result: list[Json] = self._call("GET", "/endpoints", params={"project": project})
        return result

    def endpoint(self, name: str, *, project: str) -> Json:
        result: Json = self._call("GET", _endpoint(name), params={"project": project})
        return result

    def delete_endpoint(self, name: str, *, project: str) -> None:
        self._call("DELETE", _endpoint(name), params={"project": project})

    def create_inference_key(
        self,
        name: str,
        *,
        project: str,
        models: Sequence[str] | None = None,
        token_budget: int | None = None,
        ttl_days: float | None = None,
        budget_eur: str | None = None,
        rpm: int | None = None,
        tpm: int | None = None,
    ) -> Json:
        """A key for the gateway; its `key` is in this answer only."""
        body = {
            "name": name,
            "project": project,
            "models": list(models) if models else None,
            "token_budget": token_budget,
            "ttl_days": ttl_days,
            "budget_eur": budget_eur,
            "rpm": rpm,
            "tpm": tpm,
        }
        result: Json = self._call("POST", "/inference-keys", json=body)
        return result

    def inference_keys(self, *, project: str) -> list[Json]:
        result: list[Json] = self._call("GET", "/inference-keys", params={"project": project})
        return result

    def revoke_inference_key(self, key_id: int) -> Json:
        result: Json = self._call("DELETE", f"/inference-keys/{key_id}")
        return result


def _endpoint(name: str) -> str:
    return "/endpoints/" + quote(name, safe="")
