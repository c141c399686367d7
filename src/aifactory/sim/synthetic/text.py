"""Specs from text and the named family of settings (the keys: `SyntheticSpec`)."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Never

from aifactory.sim.synthetic.spec import MIXES, SizeMix, SyntheticSpec
from aifactory.sim.traces import TraceError

LOADS = (0.7, 0.85, 0.95)
QUALITIES = (0.2, 0.8)
FAMILY_MIXES = ("small", "gang")
_NAMED = re.compile(r"(syn-l\d+-q\d+-[a-z]+)-s(\d+)")


def _settings() -> dict[str, SyntheticSpec]:
    return {
        f"syn-l{round(load * 100)}-q{round(q * 10)}-{mix}": SyntheticSpec(
            load=load, estimate_quality=q, size_mix=MIXES[mix]
        )
        for load in LOADS
        for q in QUALITIES
        for mix in FAMILY_MIXES
    }


def family(seeds: Sequence[int] = (1, 2, 3)) -> list[tuple[str, SyntheticSpec]]:
    """The named grid: load × estimate quality × size mix, each with every seed."""
    return [
        (f"{name}-s{seed}", replace(spec, seed=seed))
        for name, spec in _settings().items()
        for seed in seeds
    ]


def parse_spec(text: str) -> SyntheticSpec:
    """A spec from a family name (`syn-l85-q8-gang-s1`), `key=value,…` overrides of the
    defaults (after a family name if one leads), `defaults`, or a TOML file of those keys."""
    text = text.strip()
    if text.endswith(".toml"):
        return _from_toml(Path(text))
    items = [item.strip() for item in text.split(",") if item.strip()]
    base = SyntheticSpec()
    if items and "=" not in items[0]:
        base = _named(items.pop(0))
    pairs: dict[str, object] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq:
            raise TraceError(f"synthetic spec: {item!r} is not key=value")
        if key.strip() in pairs:
            raise TraceError(f"synthetic spec: {key.strip()} is given twice")
        pairs[key.strip()] = value.strip()
    return _override(base, pairs)


def _named(name: str) -> SyntheticSpec:
    if name == "defaults":
        return SyntheticSpec()
    found = _NAMED.fullmatch(name)
    settings = _settings()
    if found is None or found[1] not in settings:
        known = ", ".join(f"{n}-sN" for n in settings)
        raise TraceError(f"synthetic spec: unknown setting {name!r}; known: {known}")
    return replace(settings[found[1]], seed=int(found[2]))


def _from_toml(path: Path) -> SyntheticSpec:
    try:
        values = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise TraceError(f"no such synthetic spec file: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise TraceError(f"{path}: {exc}") from None
    try:
        return _override(SyntheticSpec(), values)
    except TraceError as exc:
        raise TraceError(f"{path}: {exc}") from None


def _override(base: SyntheticSpec, values: Mapping[str, object]) -> SyntheticSpec:
    known = {f.name for f in fields(SyntheticSpec)}
    changes: dict[str, object] = {}
    for key, value in values.items():
        if key not in known:
            raise TraceError(
                f"synthetic spec: unknown key {key!r}; known: {', '.join(sorted(known))}"
            )
        changes[key] = _CONVERT.get(key, _number)(key, value)
    return replace(base, **changes)  # type: ignore[arg-type]  # each value converted by key


def _number(key: str, value: object, wanted: str = "a number") -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    try:
        return float(value) if isinstance(value, str) else _refuse(key, value, wanted)
    except ValueError:
        return _refuse(key, value, wanted)


def _whole(key: str, value: object) -> int:
    number = _number(key, value, "a whole number")
    if not number.is_integer():
        return _refuse(key, value, "a whole number")
    return int(number)


def _size_mix(key: str, value: object) -> SizeMix:
    if isinstance(value, str) and value in MIXES:
        return MIXES[value]
    pairs = value.split(";") if isinstance(value, str) else value
    if not isinstance(pairs, list | tuple):
        return _refuse(key, value, "pairs like 1:0.5;8:0.5, or small, default, gang")
    out = []
    for pair in pairs:
        parts = pair.split(":") if isinstance(pair, str) else pair
        if not isinstance(parts, list | tuple) or len(parts) != 2:
            return _refuse(key, value, "pairs like 1:0.5;8:0.5, or small, default, gang")
        out.append((_whole(key, parts[0]), _number(key, parts[1])))
    return tuple(out)


def _weights(key: str, value: object) -> tuple[float, ...]:
    items = value.split(";") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        return _refuse(key, value, "shares like 3;1;1")
    return tuple(_number(key, item) for item in items if item != "")


def _refuse(key: str, value: object, wanted: str) -> Never:
    raise TraceError(f"synthetic spec: {key} must be {wanted} (got {value!r})")


_CONVERT: dict[str, Callable[[str, object], object]] = {
    **{
        name: _whole
        for name in (
            "gpus",
            "gpus_per_node",
            "jobs",
            "tenants",
            "users_per_tenant",
            "kinds_per_user",
            "block_nodes",
            "seed",
        )
    },
    "size_mix": _size_mix,
    "weights": _weights,
}
