"""The portal's notifications page: your preferences as a form (the same service as the API
and `aifactory notifications prefs`), what was refused named by its field, what was sent."""

from __future__ import annotations

from collections.abc import Callable

from aifactory.client import Client
from tests.api.helpers import Tenants
from tests.conftest import LiveServer
from tests.web.conftest import PortalSession


def test_alice_picks_her_events_and_sees_them_kept(
    pages: Callable[[str], PortalSession], tenants: Tenants, live_server: LiveServer
) -> None:
    alice = pages(tenants.tokens["alice"])
    page = alice.get("/account/notifications")
    assert page.status_code == 200
    assert 'value="maintenance" checked' in page.text  # on by default
    assert 'value="job_ended">' in page.text  # opt in
    assert "Nothing yet." in page.text

    saved = alice.post(
        "/account/notifications",
        {"events": ["job_ended", "maintenance"], "email": "yes", "webhook_url": ""},
    )
    assert saved.status_code == 200, saved.text
    assert "Saved." in saved.text
    with Client(live_server.url, tenants.tokens["alice"]) as api:
        prefs = api.notification_preferences()
    assert (prefs["events"], prefs["email"], prefs["webhook_url"]) == (
        ["job_ended", "maintenance"],
        True,
        None,
    )
    assert 'value="allocation_used">' in alice.get("/account/notifications").text


def test_a_webhook_the_facility_does_not_allow_is_refused_on_its_field(
    pages: Callable[[str], PortalSession], tenants: Tenants, live_server: LiveServer
) -> None:
    bob = pages(tenants.tokens["bob"])
    bob.get("/account/notifications")
    refused = bob.post(
        "/account/notifications",
        {"events": ["maintenance"], "webhook_url": "https://hooks.example.org/x"},
    )
    assert refused.status_code == 422
    assert 'aria-invalid="true" aria-describedby="webhook_url-error"' in refused.text
    assert "this facility sends webhooks nowhere" in refused.text
    assert 'value="https://hooks.example.org/x"' in refused.text  # what was typed stays
    with Client(live_server.url, tenants.tokens["bob"]) as api:
        assert api.notification_preferences()["webhook_url"] is None
