"""Where the CLI finds its facility and token: flags, then AIFACTORY_URL / AIFACTORY_TOKEN,
then the config file `login` writes ($AIFACTORY_CONFIG or ~/.config/aifactory/config.json)."""

from __future__ import annotations

import json
import os
import time
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


def facility_url(url: str | None) -> str:
    return url or os.environ.get("AIFACTORY_URL") or load().get("url") or DEFAULT_URL


def resolve(url: str | None, token: str | None) -> Target:
    saved = load()
    url = facility_url(url)
    given = token or os.environ.get("AIFACTORY_TOKEN")
    if given:
        return Target(url=url, token=given)
    sso = load_sso()
    if sso is not None and saved.get("url") == url and _ending(sso):
        from aifactory.cli.sso_login import renew_saved  # only then: the CLI starts fast

        return Target(url=url, token=renew_saved(url, sso))
    return Target(url=url, token=saved.get("token"))


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


def _ending(sso: dict[str, Any], margin_s: float = 60.0) -> bool:
    try:
        ends = datetime.fromisoformat(str(sso["expires_at"])).timestamp()
    except (KeyError, ValueError):
        return True
    return ends - margin_s <= time.time()


def save(url: str, token: str, sso: dict[str, Any] | None = None) -> Path:
    path = config_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a file there before keeps its mode otherwise: it holds a token
    data: dict[str, Any] = {"url": url, "token": token}
    if sso is not None:
        data["sso"] = sso
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
    return path


def forget() -> Path:
    """Remove the saved token (and what renews it); keep the facility's address."""
    url = load().get("url")
    path = config_path()
    if url is None:
        path.unlink(missing_ok=True)
        return path
    return save(url, "")
