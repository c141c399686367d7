"""The software jobs get: this host's /usr and a few /etc files, the facility's Python, and
what an operator adds — never a path that shows the facility's own files."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from aifactory.domain.jobs import Network
from aifactory.executors.sandbox.software import (
    SandboxConfigError,
    check_software,
    facility_python,
    host_software,
)


def test_the_facility_python_and_its_editable_source_are_software() -> None:
    found = facility_python()
    assert Path(sys.base_prefix).resolve() in found
    import aifactory

    source = Path(aifactory.__file__).resolve().parents[1]  # src/, in an editable install
    assert any(source.is_relative_to(p) for p in found)


def test_etc_files_come_one_by_one_and_name_resolution_only_with_a_network() -> None:
    software = host_software(python=False)
    closed = {m.target for m in software.for_network(Network.NONE)}
    opened = {m.target for m in software.for_network(Network.OPEN)}
    assert "/usr" in closed
    assert "/etc/ld.so.cache" in closed
    assert "/etc" not in closed  # never the whole of it (shadow, other users, the site's setup)
    assert "/etc/passwd" not in closed  # the facility writes its own
    assert "/etc/resolv.conf" in opened - closed


@pytest.mark.parametrize("relation", ["holds", "inside", "same"])
def test_a_software_path_overlapping_the_facilitys_files_is_refused(
    tmp_path: Path, relation: str
) -> None:
    data = tmp_path / "checkout" / ".aifactory"
    data.mkdir(parents=True)
    given = {"holds": tmp_path / "checkout", "inside": data, "same": data}[relation]
    with pytest.raises(SandboxConfigError, match="would show jobs the facility's"):
        check_software([given], [data])


def test_relative_or_missing_software_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SandboxConfigError, match="not absolute"):
        check_software([Path("opt/cuda")], [])
    with pytest.raises(SandboxConfigError, match="does not exist"):
        check_software([tmp_path / "nowhere"], [])
    assert check_software([tmp_path, tmp_path / "."], []) == [tmp_path]  # once, outermost
