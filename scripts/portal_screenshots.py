"""README screenshots of the portal, from a small demo facility doing real work.

Starts a facility (`python -m aifactory up`, SQLite, local executor, 8 virtual GPUs, the
dashboard sampled every 2 s instead of every minute so that a few minutes make a chart),
creates three organisations and projects with allocations through the API, runs real jobs in
them — long ones holding GPUs, short ones that do a little numerical work and print it, a big
one that has to wait — then signs in through the portal with the printed admin password in
Debian's Chromium (Playwright) and saves docs/screenshots/{dashboard,job,cluster}.png.

    .venv/bin/python scripts/portal_screenshots.py [--minutes 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.process import FacilityProcess  # noqa: E402
from tests.web.conftest import CHROMIUM_ARGS, chromium_path  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
TEAMS = [  # organisation, kind, project, GPUs its long job holds
    ("uva", "university", "dutch-llm", 4),
    ("tno", "research_institute", "speech-nl", 2),
    ("spark", "startup", "spark-chat", 1),
]
# A little real work with output worth reading: gradient descent on a least-squares problem.
TRAIN = """
import random, time
random.seed(7)
xs = [random.uniform(-1, 1) for _ in range(200)]
ys = [3.0 * x - 0.5 + random.gauss(0, 0.1) for x in xs]
w, b = 0.0, 0.0
for step in range(1, 41):
    gw = sum(2 * (w * x + b - y) * x for x, y in zip(xs, ys)) / len(xs)
    gb = sum(2 * (w * x + b - y) for x, y in zip(xs, ys)) / len(xs)
    w, b = w - 0.3 * gw, b - 0.3 * gb
    loss = sum((w * x + b - y) ** 2 for x, y in zip(xs, ys)) / len(xs)
    print(f"step {step:3d}  loss {loss:.4f}  w {w:.3f}  b {b:.3f}", flush=True)
    time.sleep(0.25)
print("done: w ~ 3.0, b ~ -0.5")
"""


def seed(facility: FacilityProcess) -> int:
    """Teams, allocations and the long jobs; returns the id of a short job to show."""
    api = facility.client()
    start = datetime.now(UTC) - timedelta(days=1)
    for org, kind, project, _ in TEAMS:
        api.create_organisation(org, kind)
        api.create_project(project, org, owner="admin")
        programme = "startup" if kind == "startup" else "research"
        api.create_allocation(
            project=project,
            programme=programme,
            gpu_hours=500,
            valid_from=start,
            valid_to=start + timedelta(days=90),
            reason="demo",
        )
    for _, _, project, gpus in TEAMS:
        api.submit(["sleep", "3600"], project=project, gpus=gpus, name=f"{project}-train")
    return int(api.submit(["python3", "-c", TRAIN], gpus=1, name="least-squares")["id"])


def keep_busy(facility: FacilityProcess, minutes: float) -> None:
    """Short jobs coming and going, and one that waits for room, for the charts."""
    api = facility.client()
    deadline = time.monotonic() + minutes * 60
    round_ = 0
    while time.monotonic() < deadline:
        round_ += 1
        api.submit(["python3", "-c", TRAIN], gpus=1, name=f"sweep-{round_}", project="speech-nl")
        if round_ % 3 == 0:
            api.submit(["sleep", "20"], gpus=4, name=f"eval-{round_}", project="dutch-llm")
        time.sleep(12)


def shoot(facility: FacilityProcess, job_id: int) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{facility.url}/login")
        page.get_by_label("User name", exact=True).fill("admin")
        page.get_by_label("Password", exact=True).fill(str(facility.password))
        page.get_by_role("button", name="Sign in").first.click()
        page.wait_for_url(f"{facility.url}/")
        page.screenshot(path=str(OUT / "dashboard.png"), full_page=True)
        page.goto(f"{facility.url}/jobs/{job_id}")
        page.wait_for_timeout(2500)  # the log tail's first refresh
        page.screenshot(path=str(OUT / "job.png"), full_page=True)
        page.goto(f"{facility.url}/nodes")
        page.screenshot(path=str(OUT / "cluster.png"), full_page=True)
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="of work before the pictures")
    args = parser.parse_args()
    os.environ["AIFACTORY_SAMPLE_S"] = "2"
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        facility = FacilityProcess(data, f"sqlite:///{data / 'aifactory.db'}", virtual_gpus=8)
        facility.start()
        try:
            job_id = seed(facility)
            keep_busy(facility, args.minutes)
            shoot(facility, job_id)
        finally:
            facility.stop()
            facility.kill_leftover_jobs()
    print(f"written: {', '.join(p.name for p in sorted(OUT.glob('*.png')))} in {OUT}")


if __name__ == "__main__":
    main()
