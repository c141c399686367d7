"""The cluster picture: whose job holds each GPU, as far as the viewer may know.

First the pure picture (web.cluster_picture), then the page over HTTP with jobs placed on the
live server's node (node-1, GPUs "0".."7") as the control loop would have placed them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from aifactory.client import Client
from aifactory.domain.jobs import JobState
from aifactory.store.jobs import switch_job_state
from aifactory.store.models import Job, Node
from aifactory.web.cluster_picture import (
    ANOTHER_PROJECT,
    FREE,
    OTHER,
    Holding,
    NodeInfo,
    colours,
    picture,
    svg,
)
from tests.api.helpers import Tenants
from tests.conftest import LiveServer
from tests.web.conftest import PortalSession

NODE = NodeInfo(
    id="gpu-01",
    site="ams",
    country="NL",
    gpu_model="h100",
    gpu_ids=("g0", "g1", "g2", "g3"),
    cpus=64,
    memory_mb=512_000,
    schedulable=True,
)
PROJ_A, PROJ_B = 1, 2
HOLDINGS = [
    Holding(job_id=11, project_id=PROJ_A, project="proj-a", gpus={"gpu-01": ["g0", "g1"]}),
    Holding(job_id=12, project_id=PROJ_B, project="proj-b", gpus={"gpu-01": ["g3"]}),
]


def test_a_member_sees_their_project_by_name_and_another_project_in_grey() -> None:
    shown = picture([NODE], HOLDINGS, visible={PROJ_A})

    (row,) = shown.rows
    cells = row.cells
    own = colours([PROJ_A])[PROJ_A]
    assert [c.project for c in cells] == ["proj-a", "proj-a", None, ANOTHER_PROJECT]
    assert [c.colour for c in cells] == [own, own, FREE, OTHER]
    assert [c.job_id for c in cells] == [11, 11, None, None]
    assert cells[0].title == "gpu-01, GPU 0 (g0): proj-a, job 11"
    assert cells[3].title == "gpu-01, GPU 3 (g3): another project"
    assert [(e.label, e.gpus) for e in shown.legend] == [
        ("proj-a", 2),
        (ANOTHER_PROJECT, 1),
        ("free", 1),
    ]
    assert (row.busy, shown.busy, shown.total) == (3, 3, 4)
    markup = svg(shown).markup
    assert "proj-b" not in markup
    assert "job 12" not in markup
    assert markup.count('href="/jobs/11"') == 2
    assert "/jobs/12" not in markup


def test_an_operator_sees_every_project_in_its_own_colour_with_links() -> None:
    shown = picture([NODE], HOLDINGS, visible=None)

    cells = shown.rows[0].cells
    palette = colours([PROJ_A, PROJ_B])
    assert [c.project for c in cells] == ["proj-a", "proj-a", None, "proj-b"]
    assert [c.colour for c in cells] == [palette[PROJ_A], palette[PROJ_A], FREE, palette[PROJ_B]]
    assert palette[PROJ_A] != palette[PROJ_B]
    assert OTHER not in palette.values()
    assert [e.label for e in shown.legend] == ["proj-a", "proj-b", "free"]
    markup = svg(shown).markup
    assert 'href="/jobs/12"' in markup
    assert "gpu-01, GPU 3 (g3): proj-b, job 12" in markup


def test_a_drained_node_is_marked_and_its_free_gpus_struck_through() -> None:
    drained = replace(NODE, id="gpu-02", gpu_ids=("g0", "g1"), schedulable=False)
    markup = svg(picture([drained], [], visible=None)).markup
    assert "gpu-02 (drained)" in markup
    assert markup.count('fill="url(#cluster-drained)"') == 2


def test_colours_stay_apart_while_the_palette_lasts_and_keep_to_their_project() -> None:
    clashing = colours([1, 11, 21])  # the same preferred colour
    assert len(set(clashing.values())) == 3
    assert colours([1])[1] == clashing[1]


# ---- the page over HTTP ---------------------------------------------------------------------


def place(server: LiveServer, job_id: int, gpu_ids: list[str]) -> None:
    """Admit and start a job on node-1's `gpu_ids`, as the control loop records it."""
    now = time.time()
    placement = {
        "node-1": {
            "gpus": len(gpu_ids),
            "cpus": 1,
            "memory_mb": 1024,
            "gpu_ids": gpu_ids,
            "cpu_ids": [int(g) for g in gpu_ids],
        }
    }
    with server.db.session() as session:
        job = session.get_one(Job, job_id)
        switch_job_state(
            session,
            job,
            JobState.ADMITTED,
            now=now,
            actor="test",
            placement=placement,
            admitted_at=now,
        )
        switch_job_state(session, job, JobState.RUNNING, now=now, actor="test", started_at=now)


def running_jobs(tenants: Tenants, live_server: LiveServer) -> tuple[int, int]:
    """alice's 2-GPU job in proj-a on GPUs 0-1, bob's 1-GPU job in proj-b on GPU 5."""
    alice = tenants.as_("alice").submit(["sleep", "60"], project="proj-a", gpus=2)["id"]
    bob = tenants.as_("bob").submit(["sleep", "60"], project="proj-b", gpus=1)["id"]
    place(live_server, alice, ["0", "1"])
    place(live_server, bob, ["5"])
    return alice, bob


def cell_titles(html: str) -> list[str]:
    return re.findall(r'<rect class="gpu[^"]*"[^>]*><title>([^<]*)</title>', html)


def test_alice_sees_her_project_and_bobs_gpu_as_another_project(
    pages: Callable[[str], PortalSession], tenants: Tenants, live_server: LiveServer
) -> None:
    alice_job, bob_job = running_jobs(tenants, live_server)

    page = pages(tenants.tokens["alice"]).get("/nodes")

    assert page.status_code == 200
    titles = cell_titles(page.text)
    assert len(titles) == 8
    assert titles[0] == f"node-1, GPU 0 (0): proj-a, job {alice_job}"
    assert titles[5] == "node-1, GPU 5 (5): another project"
    assert titles[2] == "node-1, GPU 2 (2): free"
    assert "proj-b" not in page.text
    assert f"/jobs/{bob_job}" not in page.text
    assert f'href="/jobs/{alice_job}"' in page.text
    assert 'hx-get="/nodes/picture"' in page.text
    assert "3 of 8 GPUs busy" in page.text
    assert '<th scope="row">node-1</th>' in page.text


def test_an_operator_sees_both_projects_names(
    pages: Callable[[str], PortalSession], tenants: Tenants, live_server: LiveServer
) -> None:
    alice_job, bob_job = running_jobs(tenants, live_server)

    page = pages(tenants.tokens["olga"]).get("/nodes")

    titles = cell_titles(page.text)
    assert titles[1] == f"node-1, GPU 1 (1): proj-a, job {alice_job}"
    assert titles[5] == f"node-1, GPU 5 (5): proj-b, job {bob_job}"
    assert ANOTHER_PROJECT not in page.text
    legend = re.findall(r'<span class="legend-name">([^<]*)</span>', page.text)
    assert legend == ["proj-a", "proj-b", "free"]


def test_the_refresh_fragment_is_the_picture_alone_and_marks_a_drained_node(
    pages: Callable[[str], PortalSession], tenants: Tenants, live_server: LiveServer
) -> None:
    with live_server.db.session() as session:
        session.get_one(Node, "node-1").schedulable = False

    fragment = pages(tenants.tokens["carol"]).get("/nodes/picture")

    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert "node-1 (drained)" in fragment.text
    assert "no: drained" in fragment.text
    assert "0 of 8 GPUs busy" in fragment.text
    assert '<th scope="col">Block</th>' not in fragment.text  # no topology declared


def test_the_table_shows_each_nodes_network_block_once_one_is_declared(
    pages: Callable[[str], PortalSession], tenants: Tenants, live_server: LiveServer
) -> None:
    with live_server.db.session() as session:
        session.get_one(Node, "node-1").block = "leaf3"

    fragment = pages(tenants.tokens["carol"]).get("/nodes/picture")

    assert '<th scope="col">Block</th>' in fragment.text
    assert "<td>leaf3</td>" in fragment.text


def test_a_drain_shows_its_reason_and_who_drained_it(
    pages: Callable[[str], PortalSession], tenants: Tenants, live_server: LiveServer
) -> None:
    with Client(live_server.url, tenants.tokens["olga"]) as olga:
        olga.drain_node("node-1", reason="cooling <fault>")

    fragment = pages(tenants.tokens["carol"]).get("/nodes/picture")

    assert "no: drained</span> by olga: cooling &lt;fault&gt;" in fragment.text
    assert "<title>drained: cooling &lt;fault&gt;</title>" in fragment.text


def test_a_planned_window_is_announced_on_every_page_and_listed_under_the_cluster(
    pages: Callable[[str], PortalSession], tenants: Tenants, live_server: LiveServer
) -> None:
    soon = time.time() + 3600
    with Client(live_server.url, tenants.tokens["olga"]) as olga:
        made = olga.create_maintenance(
            nodes=["node-1"],
            begins_at=_iso(soon),
            ends_at=_iso(soon + 7200),
            reason="cooling <pipes>",
        )
    carol = pages(tenants.tokens["carol"])
    for path in ("/", "/jobs", "/nodes"):
        page = carol.get(path)
        assert "Maintenance planned:</strong>" in page.text, path
        assert "node-1" in page.text
        assert "cooling &lt;pipes&gt;." in page.text
    listed = carol.get("/nodes").text
    assert f"<td>{made['id']}</td>" in listed
    assert "<td>upcoming</td>" in listed
    with Client(live_server.url, tenants.tokens["olga"]) as olga:
        olga.cancel_maintenance(made["id"])
    assert "Maintenance planned" not in carol.get("/").text


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat()
