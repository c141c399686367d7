"""Where the CLI finds its facility and token: flags, then AIFACTORY_URL / AIFACTORY_TOKEN,
then the config file `login` writes ($AIFACTORY_CONFIG or ~/.config/aifactory/config.json)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

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


def resolve(url: str | None, token: str | None) -> Target:
    saved = load()
    return Target(
        url=url or os.environ.get("AIFACTORY_URL") or saved.get("url") or DEFAULT_URL,
        token=token or os.environ.get("AIFACTORY_TOKEN") or saved.get("token"),
    )


def load() -> dict[str, str]:
    try:
        data = json.loads(config_path().read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return {k: str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def save(url: str, token: str) -> Path:
    path = config_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a file there before keeps its mode otherwise: it holds a token
    with os.fdopen(fd, "w") as handle:
        json.dump({"url": url, "token": token}, handle)
    return path
