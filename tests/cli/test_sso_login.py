"""`aifactory login --sso` as a person runs it: the CLI prints an address, the person signs in
there (the provider's real pages, walked with httpx), the CLI saves a short-lived token; when
that token ends the next command renews it at the provider by itself; `aifactory logout`
revokes it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from aifactory.store.models import ApiToken
from tests.federated_portal import (  # noqa: F401 - the fixture
    Federated,
    cli_sso_login,
    federated_fixture,
)


def aifactory(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aifactory", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_login_sso_signs_in_through_the_browser_renews_and_logs_out(
    federated: Federated, tmp_path: Path
) -> None:
    config = tmp_path / "cli.json"
    env = {**os.environ, "AIFACTORY_CONFIG": str(config), "AIFACTORY_URL": federated.url}
    env.pop("AIFACTORY_TOKEN", None)
    printed = cli_sso_login(federated.provider, env, "anna")
    assert "as a.devries through SURFconext (test)" in printed
    saved = json.loads(config.read_text())
    assert saved["token"].startswith("afy_")
    assert saved["sso"]["refresh_token"]
    assert oct(config.stat().st_mode & 0o777) == "0o600"

    whoami = aifactory(env, "whoami")
    assert whoami.returncode == 0, whoami.stderr
    assert whoami.stdout.startswith("a.devries (user)")

    # The facility token ends: the next command gets the next one from the provider.
    first = saved["token"]
    saved["sso"]["expires_at"] = "2020-01-01T00:00:00+00:00"
    config.write_text(json.dumps(saved))
    renewed = aifactory(env, "whoami")
    assert renewed.returncode == 0, renewed.stderr
    assert renewed.stdout.startswith("a.devries (user)")
    again = json.loads(config.read_text())
    assert again["token"] != first
    assert again["sso"]["expires_at"] != "2020-01-01T00:00:00+00:00"

    # Two commands at once when it ends: one renews, the other takes what it saved (a second
    # use of the refresh token would make the provider end the whole grant).
    again["sso"]["expires_at"] = "2020-01-01T00:00:00+00:00"
    config.write_text(json.dumps(again))
    both = [
        subprocess.Popen(
            [sys.executable, "-m", "aifactory", "whoami"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    answers = [command.communicate(timeout=60) for command in both]  # all read, then checked
    for command, (out, err) in zip(both, answers, strict=True):
        assert command.returncode == 0, err
        assert out.startswith("a.devries (user)")
    again = json.loads(config.read_text())

    out = aifactory(env, "logout")
    assert out.returncode == 0, out.stderr
    assert json.loads(config.read_text())["token"] == ""
    with federated.server.db.read() as session:
        revoked = session.get(ApiToken, again["sso"]["token_id"])
        assert revoked is not None
        assert revoked.revoked_at is not None
        assert revoked.revoked_at <= time.time()
        names = set(session.scalars(select(ApiToken.name)))
    assert "sso-surf" in names
    # The provider's refresh token is revoked too: renewing with it is refused.
    again["sso"]["expires_at"] = "2020-01-01T00:00:00+00:00"
    config.write_text(json.dumps(again))
    ended = aifactory(env, "whoami")
    assert ended.returncode == 1
    assert "login --sso" in ended.stderr
