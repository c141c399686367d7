"""`aifactory sim`: replay a trace under several policies and compare them to a baseline.

The simulator (the scheduler, matplotlib, numpy) is imported when `sim` runs, not when the
module is: every other command's start-up would pay for it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from aifactory.cli.formats import console, table

if TYPE_CHECKING:
    from aifactory.sim.scenarios import Workload

# for --help only; `sim.replay.POLICIES` decides (a test keeps the two the same)
POLICY_NAMES = ("fifo", "easy", "slurm", "fairshare", "oracle")
HOURS = frozenset({"avg_wait", "p99_wait", "avg_jct"})
SHOWN = {  # JSON key → column heading (short, so the table fits a terminal)
    "avg_wait": "wait h",
    "p99_wait": "p99 wait h",
    "avg_jct": "JCT h",
    "avg_bsld": "bsld",
    "utilisation": "util",
    "jain_fairness": "Jain",
    "worst_tenant_wait_ratio": "worst/avg",
    "preemptions": "preempt",
    "decision_p99_ms": "p99 ms",
    "jobs_per_s": "jobs/s",
}


def register(app: typer.Typer) -> None:
    app.command()(sim)


def sim(
    trace: Annotated[
        str | None,
        typer.Option(
            help="itp-merged, itp-cluster04, openb, or a CSV path "
            "(submit_time,duration,gpus,[nodes],[project],[user],"
            "[time_limit],[name])"
        ),
    ] = None,
    synthetic: Annotated[
        str | None,
        typer.Option(
            help="a generated workload instead of a trace: a setting (syn-l85-q8-gang-s1), "
            "key=value overrides (jobs=2000,load=0.9,seed=3) or a TOML file; "
            "docs/scheduler.md lists the keys"
        ),
    ] = None,
    policies: Annotated[
        str, typer.Option(help=f"comma list of {', '.join(POLICY_NAMES)}")
    ] = "fifo,slurm,fairshare,oracle",
    gpus: Annotated[
        int | None, typer.Option(help="GPUs to replay on (8-GPU nodes; --synthetic: its gpus=)")
    ] = None,
    jobs: Annotated[
        int | None, typer.Option(help="only the first N jobs (--synthetic: its jobs=)")
    ] = None,
    openb_dir: Annotated[
        Path | None, typer.Option("--openb-dir", help="folder with the openb CSV files")
    ] = None,
    baseline: Annotated[
        str | None, typer.Option(help="policy the ratios compare to (default: slurm)")
    ] = None,
    seed: Annotated[
        int, typer.Option(help="seed of the user time-limit model (a --synthetic spec has seed=)")
    ] = 1,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the figures here")] = None,
    plot: Annotated[
        Path | None, typer.Option(help="write a PNG: JCT CDF and utilisation over time")
    ] = None,
    sweep_gpus: Annotated[
        str | None,
        typer.Option("--sweep-gpus", help="replay on several sizes, e.g. 640,960,1280,1600"),
    ] = None,
    gpu_cost: Annotated[
        float | None, typer.Option("--gpu-cost", help="capital cost per GPU in EUR (sweep)")
    ] = None,
) -> None:
    """Replay a workload trace through the live scheduler, policy by policy."""
    from rich.progress import Progress

    from aifactory.sim.replay import POLICIES, replay, report
    from aifactory.sim.scenarios import workload
    from aifactory.sim.traces import TraceError

    names = [p.strip() for p in policies.split(",") if p.strip()]
    unknown = [p for p in names if p not in POLICIES]
    if unknown:
        raise typer.BadParameter(
            f"unknown policy {unknown[0]!r}; known: {', '.join(POLICIES)}", param_hint="--policies"
        )
    sizes = _sizes(sweep_gpus) if sweep_gpus is not None else None
    source, hint = _source(trace, synthetic)
    try:
        work = workload(
            source,
            gpus=gpus or (sizes[0] if sizes else None),
            jobs=jobs,
            openb_dir=openb_dir,
            seed=seed,
        )
    except TraceError as exc:
        raise typer.BadParameter(str(exc), param_hint=hint) from None
    if sizes is not None:
        _sweep(work, sizes, names, gpu_cost, json_out)
        return
    with Progress(console=console, transient=True) as bar:
        tasks = {n: bar.add_task(n, total=len(work.jobs)) for n in names}
        runs = replay(work, names, progress=lambda name, n: bar.advance(tasks[name], n))
    result = report(work, runs)
    _print(result, baseline or ("slurm" if "slurm" in names else names[0]))
    if json_out is not None:
        json_out.write_text(json.dumps(result, indent=2) + "\n")
        console.print(f"wrote {json_out}")
    if plot is not None:
        from aifactory.sim.plots import plot_runs  # matplotlib: only for a plot

        plot_runs(runs, f"{result['trace']}: {result['jobs']} jobs on {result['gpus']} GPUs", plot)
        console.print(f"wrote {plot}")


def _source(trace: str | None, synthetic: str | None) -> tuple[str, str]:
    """What to replay, as `scenarios.workload` names it, and the option that named it."""
    if (trace is None) == (synthetic is None):
        raise typer.BadParameter("give a --trace or a --synthetic workload, not both")
    if synthetic is not None:
        return f"synthetic:{synthetic}", "--synthetic"
    return str(trace), "--trace"


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(
            "give GPU counts like 640,960,1280", param_hint="--sweep-gpus"
        ) from None
    if not sizes or min(sizes) < 1:
        raise typer.BadParameter("give positive GPU counts", param_hint="--sweep-gpus")
    return sizes


def _sweep(
    work: Workload,
    sizes: list[int],
    names: list[str],
    gpu_cost: float | None,
    json_out: Path | None,
) -> None:
    from aifactory.sim.sweep import sweep

    with console.status(f"replaying on {len(sizes)} facility sizes"):
        rows = sweep(work, sizes, names, gpu_cost)
    table(
        f"{work.name}: {len(work.jobs)} jobs on facilities of several sizes",
        ["GPUs", "policy", "avg wait h", "p99 wait h", "utilisation", "unfinished", "capital EUR"],
        [
            [
                r["gpus"],
                r["policy"],
                f"{r['avg_wait_h']:.2f}",
                f"{r['p99_wait_h']:.2f}",
                f"{r['utilisation']:.3f}",
                r["unfinished"],
                f"{r['capital_eur']:,.0f}" if r["capital_eur"] is not None else "-",
            ]
            for r in rows
        ],
    )
    if json_out is not None:
        json_out.write_text(json.dumps({"trace": work.name, "sweep": rows}, indent=2) + "\n")
        console.print(f"wrote {json_out}")


def _print(result: dict[str, Any], baseline: str) -> None:
    base = result["policies"].get(baseline)
    rows = []
    for name, figures in result["policies"].items():
        rows.append([name, *(_cell(k, figures[k], base[k] if base else None) for k in SHOWN)])
    title = (
        f"{result['trace']}: {result['jobs']} jobs on {result['gpus']} GPUs "
        f"(waits and JCT in hours; ratio to {baseline} in brackets)"
    )
    table(title, ["policy", *SHOWN.values()], rows)


def _cell(key: str, value: float, base: float | None) -> str:
    shown = value / 3600 if key in HOURS else value
    text = f"{shown:.3g}" if abs(shown) < 1000 else f"{shown:.0f}"
    if base:
        text += f" ({value / base:.2f})"
    return text
