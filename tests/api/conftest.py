"""Clients over the live API, and a small multi-tenant world built through the API itself."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator

import httpx
import pytest

from aifactory.client.client import Client
from tests.api.helpers import USERS, Tenants, bearer
from tests.conftest import LiveServer

# One TLS context for every client: httpx builds a new one per client otherwise (~50 ms each),
# though these tests speak plain HTTP.
TLS = ssl.create_default_context()


@pytest.fixture
def api(live_server: LiveServer) -> Iterator[httpx.Client]:
    """A raw HTTP client on /api/v1 that sends no token unless told."""
    with httpx.Client(base_url=f"{live_server.url}/api/v1", timeout=30, verify=TLS) as client:
        yield client


@pytest.fixture
def admin_headers(live_server: LiveServer) -> dict[str, str]:
    return bearer(live_server.admin_token)


@pytest.fixture
def clients(live_server: LiveServer) -> Iterator[Callable[[str], Client]]:
    """SDK clients for tokens, one per token, all closed at the end of the test."""
    opened: dict[str, Client] = {}

    def make(token: str) -> Client:
        if token not in opened:
            transport = httpx.HTTPTransport(verify=TLS)
            opened[token] = Client(live_server.url, token, transport=transport)
        return opened[token]

    yield make
    for client in opened.values():
        client.close()


@pytest.fixture
def admin(clients: Callable[[str], Client], live_server: LiveServer) -> Client:
    return clients(live_server.admin_token)


@pytest.fixture
def tenants(admin: Client, clients: Callable[[str], Client]) -> Tenants:
    admin.create_organisation("acme", "university")
    tokens = {
        name: admin.create_user(name, facility_role=role)["token"] for name, role in USERS.items()
    }
    admin.create_project("proj-a", "acme", owner="owen")
    admin.add_member("proj-a", "alice", "member")
    admin.add_member("proj-a", "vera", "viewer")
    admin.create_project("proj-b", "acme")
    admin.add_member("proj-b", "bob", "member")
    return Tenants(admin, tokens, clients)
