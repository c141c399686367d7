"""Figures of a replay: the JCT distribution per policy and GPU utilisation over time.

Rendered with matplotlib's Agg backend to a PNG file: no display, no fonts or assets fetched.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

from aifactory.sim.replay import PolicyRun

HOUR = 3600.0


def plot_runs(runs: list[PolicyRun], title: str, out: Path) -> None:
    figure, (cdf, busy) = plt.subplots(1, 2, figsize=(12, 4.5))
    for run in runs:
        jct = np.sort([f.jct / HOUR for f in run.result.finished])
        if len(jct):
            cdf.plot(jct, np.arange(1, len(jct) + 1) / len(jct), label=run.policy)
        samples = run.result.samples
        if samples:
            hours = [(s.at - samples[0].at) / HOUR for s in samples]
            used = [sum(s.running.values()) / run.result.total_gpus for s in samples]
            busy.plot(hours, used, label=run.policy, linewidth=0.8)
    cdf.set(
        xscale="log",
        xlabel="job completion time (h)",
        ylabel="fraction of jobs",
        title="JCT distribution",
    )
    busy.set(
        xlabel="time since first submit (h)",
        ylabel="GPUs busy",
        ylim=(0, 1.05),
        title="GPU utilisation",
    )
    for axis in (cdf, busy):
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(out, dpi=110)
    plt.close(figure)
