"""The start-up check: on this host (root, bubblewrap installed) it makes a real sandbox."""

from __future__ import annotations

import os

from aifactory.executors.sandbox.check import check


def test_this_host_can_make_the_sandbox_and_says_how() -> None:
    report = check()
    assert report.bwrap.count(".") >= 1  # a version
    assert report.identities is (os.geteuid() == 0)
    described = report.describe()
    assert described.startswith(f"bubblewrap {report.bwrap}, jobs run as ")
    if report.cgroups is not None:
        assert f"cgroup {report.cgroups}" in described
