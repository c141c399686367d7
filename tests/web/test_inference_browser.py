"""Inference in a real browser on a real facility: a key made with the form is shown once, and
the chat box of an endpoint's page asks the gateway (`/v1`) with that key pasted into the page,
sending it nowhere else, and shows what the gateway says.

No engine is worth starting here: the endpoint serves a job that trained nothing, so its replica
never answers and the gateway's 503 (its OpenAI-shaped error message) is what the page shows;
a key that is not good shows the gateway's 401 the same way.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, Request, expect

from tests.e2e.process import FacilityProcess
from tests.web.conftest import api, screenshot, sign_in
from tests.web.test_accessibility_browser import violations
from tests.web.test_money_browser import run_a_job


@pytest.fixture(scope="module")
def dutch(portal: FacilityProcess) -> str:
    """An endpoint of the default project, serving a job that trained nothing."""
    trained = run_a_job(portal)
    with api(portal) as client:
        body = {"name": "dutch", "project": "default", "source_job": trained, "memory_mb": 512}
        made = client.post("/endpoints", json=body)
        assert made.status_code == 201, made.text
    return "dutch"


def test_the_chat_box_sends_the_pasted_key_to_the_gateway_only_and_shows_its_answer(
    page: Page, portal: FacilityProcess, dutch: str
) -> None:
    sign_in(page, portal)
    page.get_by_role("link", name="Inference", exact=True).click()
    page.goto(f"{portal.url}/inference?project=default")
    page.get_by_label("Name", exact=True).fill("browser")
    page.get_by_role("button", name="Make key").click()
    key = page.locator("#made-key").inner_text()
    assert key.startswith("aik_")
    assert key not in page.url
    expect(page.get_by_role("status")).to_contain_text("shown this once and never again")
    screenshot(page, "inference-key-made")

    sent: list[Request] = []
    page.on("request", lambda request: sent.append(request))  # a builtin is not taken
    page.goto(f"{portal.url}/inference/default/dutch")
    expect(page.get_by_role("heading", name="Endpoint dutch")).to_be_visible()
    page.get_by_label("Inference key").fill("aik_not-a-key")
    page.get_by_label("Prompt, in Dutch").fill("Vertel iets over Utrecht.")
    page.get_by_role("button", name="Ask dutch").click()
    expect(page.locator("#chat-error")).to_contain_text("401: ")

    page.get_by_label("Inference key").fill(key)
    page.get_by_role("button", name="Ask dutch").click()
    expect(page.locator("#chat-error")).to_contain_text("503: ", timeout=60_000)
    expect(page.locator("#chat-answer")).to_be_hidden()
    screenshot(page, "inference-chat")

    asked = [r for r in sent if "authorization" in r.all_headers()]
    assert [r.url for r in asked] == [f"{portal.url}/v1/chat/completions"] * 2
    assert asked[-1].all_headers()["authorization"] == f"Bearer {key}"
    assert asked[-1].post_data_json == {
        "model": "dutch",
        "messages": [{"role": "user", "content": "Vertel iets over Utrecht."}],
        "max_tokens": 64,
    }
    assert not any(key in r.url or key in (r.post_data or "") for r in sent if r not in asked)
    assert "cookie" not in asked[-1].all_headers(), "no session cookie goes to the gateway"


def test_the_inference_pages_have_no_serious_accessibility_violations(
    axe_page: Page, portal: FacilityProcess, dutch: str
) -> None:
    sign_in(axe_page, portal)
    axe_page.goto(f"{portal.url}/inference?project=default")
    axe_page.get_by_label("Name", exact=True).fill("axe")
    axe_page.get_by_label("Valid for, in days (optional)").fill("-1")
    axe_page.get_by_role("button", name="Make key").click()
    expect(axe_page.locator("#ttl_days-1-error")).to_contain_text("greater than 0")
    found = {"key form refused": violations(axe_page)}
    axe_page.goto(f"{portal.url}/inference/default/{dutch}")
    expect(axe_page.get_by_label("Inference key")).to_be_visible()  # the script shows the box
    found["endpoint"] = violations(axe_page)
    assert {page: v for page, v in found.items() if v} == {}
    axe_page.context.close()
