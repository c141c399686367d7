"""A small synchronous SDK over /api/v1. Responses are the API's JSON objects, as dicts;
files (PDF, CSV, charts) come back as bytes. The accounting calls live in client.accounting,
the audit log's in client.audit, the interactive sessions' in client.sessions."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import quote

import httpx

if TYPE_CHECKING:
    from websockets.sync.client import ClientConnection

from aifactory.client.accounting import AccountingCalls
from aifactory.client.audit import AuditCalls
from aifactory.client.datasets import DatasetCalls
from aifactory.client.federation import FederationCalls
from aifactory.client.gdpr import GdprCalls
from aifactory.client.inference import InferenceCalls
from aifactory.client.job_shell import ShellCalls
from aifactory.client.notifications import NotificationCalls
from aifactory.client.sessions import SessionCalls
from aifactory.client.software import SoftwareCalls

Json = dict[str, Any]
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "CANCELLED", "TIMEOUT"})


class ApiError(Exception):
    """The facility refused a request; `errors` lists (field, reason) pairs."""

    def __init__(self, status: int, code: str, message: str, errors: list[Json]) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors


class Unreachable(Exception):
    pass


class Client(
    AccountingCalls,
    AuditCalls,
    DatasetCalls,
    FederationCalls,
    GdprCalls,
    InferenceCalls,
    NotificationCalls,
    SessionCalls,
    ShellCalls,
    SoftwareCalls,
):
    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url + "/api/v1", headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ---- plumbing --------------------------------------------------------------------
    def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        response = self._send(method, path, json=json, params=params, headers=headers)
        return response.json() if response.content else None

    def _download(self, path: str, *, params: dict[str, Any] | None = None) -> bytes:
        return self._send("GET", path, params=params).content

    def _upload(self, path: str, file: BinaryIO, *, params: dict[str, Any] | None = None) -> Any:
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.post(
                path,
                content=iter(lambda: file.read(1024 * 1024), b""),
                params=clean,
                headers={"Content-Type": "application/x-tar"},
                timeout=None,  # a big image takes its time; the facility answers when unpacked
            )
        except httpx.TransportError as exc:
            raise Unreachable(f"cannot reach the facility at {self.url}: {exc}") from exc
        if response.status_code >= 400:
            raise _api_error(response)
        return response.json()

    def _lines(self, path: str, *, params: dict[str, Any] | None = None) -> Iterator[str]:
        """A streamed text response, line by line (each with its newline)."""
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            with self._http.stream("GET", path, params=clean) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _api_error(response)
                for line in response.iter_lines():
                    yield line + "\n"
        except httpx.TransportError as exc:
            raise Unreachable(f"cannot reach the facility at {self.url}: {exc}") from exc

    def _websocket(self, path: str) -> ClientConnection:
        from websockets.sync.client import connect

        url = "ws" + self.url.removeprefix("http") + "/api/v1" + path
        token = self._http.headers.get("Authorization")
        try:
            return connect(
                url, additional_headers={"Authorization": token} if token else None,
                max_size=None, open_timeout=30,
            ).__enter__()  # fmt: skip  # closed by its JobShell
        except OSError as exc:
            raise Unreachable(f"cannot reach the facility at {self.url}: {exc}") from exc

    def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.request(method, path, json=json, params=clean, headers=headers)
        except httpx.TransportError as exc:
            raise Unreachable(f"cannot reach the facility at {self.url}: {exc}") from exc
        if response.status_code >= 400:
            raise _api_error(response)
        return response

    # ---- facility --------------------------------------------------------------------
    def health(self) -> Json:
        result: Json = self._call("GET", "/health")
        return result

    def facility(self) -> Json:
        result: Json = self._call("GET", "/facility")
        return result

    def set_admission(self, *, paused: bool) -> Json:
        result: Json = self._call("PUT", "/facility/admission", json={"paused": paused})
        return result

    def nodes(self) -> list[Json]:
        result: list[Json] = self._call("GET", "/nodes")
        return result

    def drain_node(self, node: str, *, reason: str) -> Json:
        path = f"/nodes/{quote(node, safe='')}/drain"
        result: Json = self._call("POST", path, json={"reason": reason})
        return result

    def resume_node(self, node: str) -> Json:
        result: Json = self._call("POST", f"/nodes/{quote(node, safe='')}/resume")
        return result

    def maintenance(self, *, everything: bool = False) -> list[Json]:
        params = {"all": "true"} if everything else None
        result: list[Json] = self._call("GET", "/maintenance", params=params)
        return result

    def create_maintenance(
        self, *, nodes: list[str] | None, begins_at: str, ends_at: str, reason: str
    ) -> Json:
        body = {"nodes": nodes, "begins_at": begins_at, "ends_at": ends_at, "reason": reason}
        result: Json = self._call("POST", "/maintenance", json=body)
        return result

    def cancel_maintenance(self, window_id: int) -> Json:
        result: Json = self._call("POST", f"/maintenance/{window_id}/cancel")
        return result

    def sites(self) -> list[Json]:
        result: list[Json] = self._call("GET", "/sites")
        return result

    def set_site(self, name: str, *, country: str, description: str | None = None) -> Json:
        body = {"country": country, "description": description}
        result: Json = self._call("PUT", f"/sites/{name}", json=body)
        return result

    # ---- jobs ------------------------------------------------------------------------
    def submit(
        self,
        command: list[str] | None = None,
        *,
        script: str | None = None,
        idempotency_key: str | None = None,
        **spec: Any,
    ) -> Json:
        """Submit a job; `spec` takes the API's fields (gpus, cpus, memory_mb, project...)."""
        body = {"command": command, "script": script, **spec}
        body = {k: v for k, v in body.items() if v is not None}
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        result: Json = self._call("POST", "/jobs", json=body, headers=headers)
        return result

    def jobs(
        self,
        *,
        project: str | None = None,
        state: str | None = None,
        owner: str | None = None,
        limit: int = 100,
        array: int | None = None,
    ) -> list[Json]:
        params = {"project": project, "state": state, "owner": owner, "limit": limit}
        if array is not None:
            params["array"] = array
        result: list[Json] = self._call("GET", "/jobs", params=params)
        return result

    def job(self, job_id: int) -> Json:
        result: Json = self._call("GET", f"/jobs/{job_id}")
        return result

    def queue(self, *, project: str | None = None, limit: int = 200) -> list[Json]:
        """Waiting jobs in queue order, each with `queue.reason` and `queue.estimated_start_at`."""
        result: list[Json] = self._call(
            "GET", "/queue", params={"project": project, "limit": limit}
        )
        return result

    def cancel(self, job_id: int) -> Json:
        result: Json = self._call("POST", f"/jobs/{job_id}/cancel")
        return result

    def set_priority(self, job_id: int, priority: int) -> Json:
        """Operators and admins: a waiting job's new priority (-1000..1000); the job back."""
        result: Json = self._call("PUT", f"/jobs/{job_id}/priority", json={"priority": priority})
        return result

    def hold(self, job_id: int, reason: str | None = None) -> Json:
        """Hold a waiting job until a person releases it; the job back."""
        body = {"reason": reason} if reason else {}
        result: Json = self._call("POST", f"/jobs/{job_id}/hold", json=body)
        return result

    def release(self, job_id: int) -> Json:
        """Release a job a person held (not one held for data or budget); the job back."""
        result: Json = self._call("POST", f"/jobs/{job_id}/release")
        return result

    def update(
        self,
        job_id: int,
        *,
        name: str | None = None,
        time_limit_s: int | None = None,
        priority: int | None = None,
    ) -> Json:
        """Change a waiting job's name, time limit or priority; None leaves it as it is."""
        body = {"name": name, "time_limit_s": time_limit_s, "priority": priority}
        result: Json = self._call(
            "PATCH", f"/jobs/{job_id}", json={k: v for k, v in body.items() if v is not None}
        )
        return result

    def cancel_many(
        self,
        ids: list[int] | None = None,
        *,
        states: list[str] | None = None,
        name: str | None = None,
        mine: bool = False,
        project: str | None = None,
        dry_run: bool = False,
    ) -> list[Json]:
        """Cancel the jobs named, or those matching every filter given; one answer a job
        (`outcome`: cancelled, stopping, already ended, not found, refused)."""
        body: Json = {"ids": ids or [], "states": states or [], "mine": mine, "dry_run": dry_run}
        body.update({k: v for k, v in (("name", name), ("project", project)) if v is not None})
        result: list[Json] = self._call("POST", "/jobs/cancel", json=body)
        return result

    def logs(self, job_id: int, *, offset: int = 0, tail: int | None = None) -> Json:
        result: Json = self._call(
            "GET", f"/jobs/{job_id}/logs", params={"offset": offset, "tail": tail}
        )
        return result

    def progress(self, job_id: int, *, points: int | None = None) -> Json:
        """The job's training progress: latest figures, loss curves, what preemptions lost
        and its checkpoint directory (docs/recipes.md)."""
        params = {"points": points} if points is not None else None
        result: Json = self._call("GET", f"/jobs/{job_id}/progress", params=params)
        return result

    def follow_logs(self, job_id: int, *, poll_s: float = 0.5, offset: int = 0) -> Iterator[str]:
        """Yield new log text until the job has ended and its log is read to the end."""
        while True:
            chunk = self.logs(job_id, offset=offset)
            if chunk["text"]:
                yield chunk["text"]
            offset = chunk["offset"]
            if chunk["complete"]:
                return
            if not chunk["text"]:
                time.sleep(poll_s)

    def wait(self, job_id: int, *, timeout_s: float = 3600, poll_s: float = 0.5) -> Json:
        deadline = time.monotonic() + timeout_s
        while True:
            job = self.job(job_id)
            if job["state"] in TERMINAL:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job['state']} after {timeout_s} s")
            time.sleep(poll_s)

    # ---- tenancy ---------------------------------------------------------------------
    def me(self) -> Json:
        result: Json = self._call("GET", "/me")
        return result

    def use_project(self, project: str) -> Json:
        result: Json = self._call("PUT", f"/me/default-project/{project}")
        return result

    def organisations(self) -> list[Json]:
        result: list[Json] = self._call("GET", "/organisations")
        return result

    def create_organisation(self, name: str, kind: str) -> Json:
        result: Json = self._call("POST", "/organisations", json={"name": name, "kind": kind})
        return result

    def projects(self) -> list[Json]:
        result: list[Json] = self._call("GET", "/projects")
        return result

    def create_project(self, name: str, organisation: str, owner: str | None = None) -> Json:
        body = {"name": name, "organisation": organisation, "owner": owner}
        result: Json = self._call(
            "POST", "/projects", json={k: v for k, v in body.items() if v is not None}
        )
        return result

    def members(self, project: str) -> list[Json]:
        result: list[Json] = self._call("GET", f"/projects/{project}/members")
        return result

    def add_member(self, project: str, user: str, role: str = "member") -> Json:
        result: Json = self._call(
            "PUT", f"/projects/{project}/members", json={"user": user, "role": role}
        )
        return result

    def remove_member(self, project: str, user: str) -> None:
        self._call("DELETE", f"/projects/{project}/members/{user}")

    def users(self) -> list[Json]:
        result: list[Json] = self._call("GET", "/users")
        return result

    def create_user(
        self,
        name: str,
        *,
        email: str | None = None,
        facility_role: str = "user",
        token: bool = True,
    ) -> Json:
        body = {"name": name, "email": email, "facility_role": facility_role, "token": token}
        result: Json = self._call(
            "POST", "/users", json={k: v for k, v in body.items() if v is not None}
        )
        return result

    def reset_password(self, user: str) -> Json:
        result: Json = self._call("POST", f"/users/{user}/password")
        return result

    def change_password(self, new: str, *, current: str | None = None) -> None:
        body = {"new_password": new, "current_password": current}
        self._call("PUT", "/me/password", json={k: v for k, v in body.items() if v is not None})

    def tokens(self, owner: str | None = None) -> list[Json]:
        result: list[Json] = self._call("GET", "/tokens", params={"owner": owner})
        return result

    def create_token(
        self, name: str = "cli", *, ttl_days: float | None = None, user: str | None = None
    ) -> Json:
        body = {"name": name, "ttl_days": ttl_days, "user": user}
        result: Json = self._call(
            "POST", "/tokens", json={k: v for k, v in body.items() if v is not None}
        )
        return result

    def revoke_token(self, token_id: int) -> Json:
        result: Json = self._call("DELETE", f"/tokens/{token_id}")
        return result

    # ---- federated sign-in (client.sso drives the provider's side) -----------------------
    def sign_in_providers(self) -> list[Json]:
        result: list[Json] = self._call("GET", "/auth/providers")
        return result

    def sso_token(self, provider: str, id_token: str) -> Json:
        body = {"provider": provider, "id_token": id_token}
        result: Json = self._call("POST", "/auth/sso/token", json=body)
        return result

    def sign_in_requests(self) -> list[Json]:
        result: list[Json] = self._call("GET", "/sign-in-requests")
        return result

    def decide_sign_in_request(self, request_id: int, *, approve: bool) -> Json:
        verb = "approve" if approve else "reject"
        result: Json = self._call("POST", f"/sign-in-requests/{request_id}/{verb}")
        return result

    def efficiency(self, job_id: int) -> Json:
        """The job's efficiency report: asked against used, per attempt and overall, hints."""
        result: Json = self._call("GET", f"/jobs/{job_id}/efficiency")
        return result

    def least_efficient(self, project: str, *, limit: int = 10) -> list[Json]:
        """The project's finished jobs that wasted most, as efficiency reports."""
        result: list[Json] = self._call(
            "GET", f"/projects/{project}/least-efficient", params={"limit": limit}
        )
        return result


def _api_error(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
        return ApiError(
            response.status_code,
            str(body.get("error", "error")),
            str(body.get("message", response.reason_phrase)),
            list(body.get("errors", [])),
        )
    except ValueError:
        return ApiError(
            response.status_code, "error", f"HTTP {response.status_code}: {response.text[:200]}", []
        )
