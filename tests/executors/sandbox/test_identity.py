"""Each project's identity: made once with exactly its numbers, looked up in a directory, or
the facility's own where it cannot switch; never root."""

from __future__ import annotations

import os
import pwd
import subprocess
from collections.abc import Sequence

import pytest

from aifactory.executors.sandbox.identity import (
    Identities,
    Identity,
    IdentityConfig,
    IdentityError,
)
from tests.executors.sandbox.conftest import requires_root

BASE = 3_000_000


@requires_root
def test_a_project_gets_its_own_user_made_once_with_its_numbers() -> None:
    calls: list[list[str]] = []

    def runner(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        calls.append(list(argv))
        return subprocess.run(list(argv), capture_output=True, text=True, check=False)

    identities = Identities(IdentityConfig(uid_base=BASE), runner)
    first = identities.of(1, "default")
    assert first == Identity(BASE + 1, BASE + 1, "aif-p1")
    entry = pwd.getpwnam("aif-p1")
    assert (entry.pw_uid, entry.pw_gid, entry.pw_shell) == (BASE + 1, BASE + 1, "/usr/sbin/nologin")
    made_before = len(calls)
    assert identities.of(1, "default") == first
    assert len(calls) == made_before  # remembered: no second useradd
    assert Identities(IdentityConfig(uid_base=BASE)).of(1) == first  # found, not made again


@requires_root
def test_a_user_of_that_name_with_other_numbers_is_refused() -> None:
    Identities(IdentityConfig(uid_base=BASE)).of(1)  # aif-p1, uid BASE + 1
    with pytest.raises(IdentityError, match="should have uid and gid 3100001"):
        Identities(IdentityConfig(uid_base=BASE + 100_000)).of(1)  # aif-p1 has BASE + 1


def test_the_directory_gives_identities_it_has_and_names_those_it_lacks() -> None:
    found = Identities(IdentityConfig(mode="directory", name_template="{project}")).of(9, "nobody")
    assert (found.name, found.uid) == ("nobody", pwd.getpwnam("nobody").pw_uid)
    with pytest.raises(IdentityError, match="no user 'prj-ghost'"):
        Identities(IdentityConfig(mode="directory")).of(9, "ghost")


def test_no_job_runs_as_root() -> None:
    with pytest.raises(IdentityError, match="never runs as root"):
        Identities(IdentityConfig(mode="directory", name_template="{project}")).of(1, "root")
    if os.geteuid() == 0:  # root cannot take the shared identity: it would be root's
        with pytest.raises(IdentityError):
            Identities(IdentityConfig(mode="shared")).of(1)


def test_a_facility_that_is_not_root_shares_its_own_identity() -> None:
    config = IdentityConfig.for_this_process()
    assert config.mode == ("project" if os.geteuid() == 0 else "shared")
