"""The progress channel: one JSON object per line, appended to `AIFACTORY_PROGRESS_FILE`.

Every line has `at` (unix time), `attempt`, `event`, `step`, `tokens` and `gpu_count`; then by
event: `train` → `loss`, `tokens_per_s` (and `mfu` on a GPU of known peak); `eval` → `eval_loss`,
`eval_ppl`; `start` → `params`, `flops_per_token`, `config`, `kind`; `checkpoint` → `path`,
`reason` (`interval`, `signal`, `final`), written only once the file is durably in place;
`resume` → the step resumed from; `done` → the final `loss`, `eval_loss`, `eval_ppl`.
Lines are flushed as written. Only rank 0 writes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


class Progress:
    def __init__(
        self,
        path: Path | None,
        *,
        attempt: int,
        gpu_count: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.attempt = attempt
        self.gpu_count = gpu_count
        self.clock = clock

    def emit(self, event: str, *, step: int, tokens: int, **fields: Any) -> None:
        if self.path is None:
            return
        record = {"at": self.clock(), "attempt": self.attempt, "event": event, "step": step}
        record |= {"tokens": tokens, "gpu_count": self.gpu_count, **fields}
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()


def read(path: Path) -> list[dict[str, Any]]:
    """The records of a progress file (for tests and tools)."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
