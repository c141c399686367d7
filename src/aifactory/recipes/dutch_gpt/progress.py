"""The progress channel: one JSON object per line, appended to `AIFACTORY_PROGRESS_FILE`.

Every line has `at` (unix time), `attempt`, `event`, `step`, `tokens` and `gpu_count`; then by
event: `train` → `loss`, `tokens_per_s` (and `mfu` on a GPU of known peak); `eval` → `eval_loss`,
`eval_ppl`; `start` → `params`, `flops_per_token`, `config`, `kind`; `checkpoint` → `path`,
`reason` (`interval`, `signal`, `final`), written only once the file is durably in place;
`resume` → the step resumed from; `done` → the final `loss`, `eval_loss`, `eval_ppl`.
Lines are flushed as written. Only rank 0 writes. Each record is also printed as one line a
person reads (`step 120  loss 2.871  41,200 tok/s`) on stdout, so `aifactory logs -f` and
`submit --wait` show the run as it goes.
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
        speak: bool = True,
    ) -> None:
        self.path = path
        self.speak = speak  # print each record for the log (rank 0 only)
        self.attempt = attempt
        self.gpu_count = gpu_count
        self.clock = clock

    def emit(self, event: str, *, step: int, tokens: int, **fields: Any) -> None:
        if self.speak:
            print(readable(event, step, fields), flush=True)
        if self.path is None:
            return
        record = {"at": self.clock(), "attempt": self.attempt, "event": event, "step": step}
        record |= {"tokens": tokens, "gpu_count": self.gpu_count, **fields}
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()


_SHOWN = {  # field → how a person reads it
    "loss": "loss {:.3f}",
    "tokens_per_s": "{:,.0f} tok/s",
    "mfu": "MFU {:.1%}",
    "eval_loss": "eval loss {:.3f}",
    "eval_ppl": "perplexity {:.2f}",
    "params": "{:,} parameters",
    "path": "→ {}",
    "reason": "({})",
}


def readable(event: str, step: int, fields: dict[str, Any]) -> str:
    """One progress record as a line for the job's log."""
    parts = [f"[{event}] step {step}"]
    for name, shape in _SHOWN.items():
        value = fields.get(name)
        if value is not None:
            try:
                parts.append(shape.format(value))
            except (TypeError, ValueError):
                parts.append(f"{name} {value}")
    return "  ".join(parts)


def read(path: Path) -> list[dict[str, Any]]:
    """The records of a progress file (for tests and tools)."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
