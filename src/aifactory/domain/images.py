"""How an imported image is named. Pure.

An image is known by its digest (`sha256:<64 hex>`), which names its content for good, and by
the names it came with or an admin gave it (`pytorch:2.3`, `registry.example.nl/nlp/gpt:1`):
a job may give either; the job keeps the digest it was given at submission.
"""

from __future__ import annotations

import re

IMAGE_REF = (
    r"^(sha256:[0-9a-f]{64}|[a-z0-9][a-z0-9._/-]{0,100}(:[A-Za-z0-9_][A-Za-z0-9._-]{0,60})?)$"
)
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_REF = re.compile(IMAGE_REF)


def is_digest(ref: str) -> bool:
    return DIGEST.match(ref) is not None


def image_name(ref: str) -> str:
    """A name as kept: with its tag, `:latest` where it has none (Docker's rule)."""
    if _REF.match(ref) is None:
        raise ValueError(
            f"{ref!r} is not an image name: lower-case name[:tag] (e.g. pytorch:2.3) or "
            "sha256:<digest>"
        )
    if is_digest(ref) or ":" in ref.rsplit("/", 1)[-1]:
        return ref
    return f"{ref}:latest"


def short(digest: str) -> str:
    """What tables show: sha256: and the first 12 hex digits."""
    return digest[:19]
