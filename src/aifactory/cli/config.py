"""Where the CLI finds its facility and token: flags, then AIFACTORY_URL / AIFACTORY_TOKEN,
then the config file `login` writes ($AIFACTORY_CONFIG or ~/.config/aifactory/config.json)."""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8000"


def config_path() -> Path:
    explicit = os.environ.get("AIFACTORY_CONFIG")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "aifactory" / "config.json"


@dataclass(frozen=True, slots=True)
class Target:
    url: str
    token: str | None


def facility_url(url: str | None, saved: dict[str, Any] | None = None) -> str:
    found = (saved if saved is not None else _read()).get("url")
    return url or os.environ.get("AIFACTORY_URL") or (str(found) if found else DEFAULT_URL)


def resolve(url: str | None, token: str | None) -> Target:
    saved = _read()  # the file, once
    url = facility_url(url, saved)
    given = token or os.environ.get("AIFACTORY_TOKEN")
    if given:
        return Target(url=url, token=given)
    sso = saved.get("sso")
    if isinstance(sso, dict) and saved.get("url") == url and ending(sso):
        from aifactory.cli.sso_login import renew_saved  # only then: the CLI starts fast

        return Target(url=url, token=renew_saved(url))
    token_saved = saved.get("token")
    return Target(url=url, token=str(token_saved) if token_saved is not None else None)


def load() -> dict[str, str]:
    data = _read()
    return {k: str(v) for k, v in data.items() if not isinstance(v, dict)}


def load_sso() -> dict[str, Any] | None:
    """What `aifactory login --sso` saved to renew its token (client.sso), if it did."""
    found = _read().get("sso")
    return found if isinstance(found, dict) else None


def _read() -> dict[str, Any]:
    try:
        data = json.loads(config_path().read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def ending(sso: dict[str, Any], margin_s: float = 60.0) -> bool:
    """Whether the saved facility token ends within `margin_s` (then it is renewed first)."""
    try:
        ends = datetime.fromisoformat(str(sso["expires_at"])).timestamp()
    except (KeyError, ValueError):
        return True
    return ends - margin_s <= time.time()


def save(url: str, token: str, sso: dict[str, Any] | None = None) -> Path:
    """Written whole or not at all (a new file put in place), 0600: it holds a token."""
    path = config_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    data: dict[str, Any] = {"url": url, "token": token}
    if sso is not None:
        data["sso"] = sso
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=".config-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as handle:  # mkstemp makes it 0600
            json.dump(data, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return path


@contextmanager
def renewing() -> Iterator[None]:
    """One process at a time renews the saved sign-in: a provider that rotates refresh tokens
    ends the whole grant when one is used twice."""
    path = config_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def forget() -> Path:
    """Remove the saved token (and what renews it); keep the facility's address."""
    url = load().get("url")
    path = config_path()
    if url is None:
        path.unlink(missing_ok=True)
        return path
    return save(url, "")
