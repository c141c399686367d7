"""Proposal commands: submit to an open call, assign reviewers, review, award or reject.

The list shows each proposal's deadline under its call's service level as the Amsterdam day
its answer is due, marked LATE where the answer came — or, still open, is — past it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer

from aifactory.cli.context import client
from aifactory.cli.formats import print_json, table
from aifactory.cli.units import From, JsonFlag, To, day, hours, minute
from aifactory.domain.access_modes import due_day

ProposalId = Annotated[int, typer.Argument(metavar="ID")]
app = typer.Typer(help="Proposals: ask a call for GPU-hours; review; award or reject.")


@app.callback(invoke_without_command=True)
def proposals_list(
    ctx: typer.Context,
    call: Annotated[str | None, typer.Option(help="only this call's")] = None,
    project: Annotated[str | None, typer.Option(help="only this project's")] = None,
    state: Annotated[
        str | None, typer.Option(help="submitted, awarded, rejected or withdrawn")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """List the proposals you can see (with no subcommand)."""
    if ctx.invoked_subcommand is not None:
        return
    with client(ctx) as api:
        found = api.proposals(call=call, project=project, state=state)
    if as_json:
        print_json(found)
        return
    table(
        None,
        [
            "id",
            "call",
            "project",
            "asked\nGPU-h",
            "state",
            "submitted",
            "due",
            "reviews",
            "allocation",
            "title",
        ],
        [
            [
                p["id"],
                p["call"],
                p["project"],
                hours(p["requested_gpu_hours"]),
                p["state"],
                day(p["submitted_at"]),
                _due(p),
                _reviews_done(p["reviews"]),
                p["allocation"],
                p["title"],
            ]
            for p in found
        ],
        spare=("reviews", "submitted", "allocation"),
        last_wraps_to=24,
    )


def _due(proposal: dict[str, Any]) -> str:
    """The day the answer is due ("-": no service level), with LATE where it is late."""
    deadline = proposal.get("deadline")
    if not deadline:
        return "-"
    shown = due_day(datetime.fromisoformat(deadline).timestamp()).isoformat()
    return f"{shown} LATE" if proposal.get("late") else shown


def _reviews_done(reviews: list[dict[str, Any]]) -> str:
    done = sum(1 for r in reviews if r["reviewed_at"])
    return f"{done}/{len(reviews)}" if reviews else "-"


@app.command("show")
def proposal_show(ctx: typer.Context, proposal_id: ProposalId, as_json: JsonFlag = False) -> None:
    """A proposal in full: request, texts, decision and reviews."""
    with client(ctx) as api:
        p = api.proposal(proposal_id)
    if as_json:
        print_json(p)
        return
    typer.echo(f"proposal {p['id']}  {p['title']}  [{p['state']}]")
    typer.echo(f"  call     {p['call']} ({p['programme']}), project {p['project']}")
    typer.echo(
        f"  asks     {hours(p['requested_gpu_hours'])} GPU-h of {p['gpu_model'] or 'any GPU model'}"
    )
    typer.echo(f"  by       {p['submitted_by']} at {minute(p['submitted_at'])}")
    typer.echo(f"  mode     {p['access_mode'].replace('_', ' ')}, due {_due(p)}")
    if p["planned_datasets"]:
        typer.echo(f"  datasets {', '.join(p['planned_datasets'])}")
    if p["decided_at"]:
        typer.echo(f"  decided  {minute(p['decided_at'])}: {p['decision_note']}")
    if p["allocation"]:
        typer.echo(f"  awarded  as allocation {p['allocation']}")
    typer.echo(f"\nabstract\n  {p['abstract']}\n\njustification\n  {p['justification']}")
    table(
        "reviews",
        ["reviewer", "score", "assigned", "reviewed", "comment"],
        [
            [
                r["reviewer"],
                r["score"],
                minute(r["assigned_at"]),
                minute(r["reviewed_at"]),
                r["comment"],
            ]
            for r in p["reviews"]
        ],
        spare=("assigned",),
        last_wraps_to=30,
    )


@app.command("submit")
def proposal_submit(
    ctx: typer.Context,
    call: Annotated[str, typer.Option(help="an open call")],
    project: Annotated[str, typer.Option(help="the applicant project")],
    title: Annotated[str, typer.Option()],
    abstract: Annotated[str, typer.Option()],
    justification: Annotated[str, typer.Option(help="why it needs these GPU-hours")],
    gpu_hours: Annotated[float, typer.Option("--gpu-hours", help="GPU-hours asked for")],
    gpu_model: Annotated[str | None, typer.Option("--gpu-model", help="default: any model")] = None,
    datasets: Annotated[
        list[str] | None, typer.Option("--dataset", help="a dataset it will use (repeatable)")
    ] = None,
    days: Annotated[
        int | None, typer.Option("--days", help="how long, within the call's durations")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Ask a call for GPU-hours; a small first request, or one to a playground call within
    its ceiling, may be awarded at once."""
    with client(ctx) as api:
        p = api.submit_proposal(
            call=call,
            project=project,
            title=title,
            abstract=abstract,
            justification=justification,
            requested_gpu_hours=gpu_hours,
            gpu_model=gpu_model,
            planned_datasets=datasets or [],
            requested_days=days,
        )
    if as_json:
        print_json(p)
    elif p["allocation"]:
        typer.echo(f"proposal {p['id']} awarded at once as allocation {p['allocation']}")
    else:
        typer.echo(f"proposal {p['id']} submitted to call {p['call']}")


@app.command("assign")
def proposal_assign(
    ctx: typer.Context, proposal_id: ProposalId, reviewer: str, as_json: JsonFlag = False
) -> None:
    """Ask REVIEWER to review proposal ID (admins)."""
    with client(ctx) as api:
        p = api.assign_reviewer(proposal_id, reviewer)
    if as_json:
        print_json(p)
    else:
        typer.echo(f"{reviewer} will review proposal {proposal_id}")


@app.command("review")
def proposal_review(
    ctx: typer.Context,
    proposal_id: ProposalId,
    score: Annotated[int, typer.Option(help="1 (poor) to 5 (excellent)")],
    comment: Annotated[str, typer.Option()],
    as_json: JsonFlag = False,
) -> None:
    """Your review of a proposal you were assigned; sending again replaces it."""
    with client(ctx) as api:
        p = api.review_proposal(proposal_id, score=score, comment=comment)
    if as_json:
        print_json(p)
    else:
        typer.echo(f"review of proposal {proposal_id} saved: score {score}")


@app.command("award")
def proposal_award(
    ctx: typer.Context,
    proposal_id: ProposalId,
    gpu_hours: Annotated[float, typer.Option("--gpu-hours", help="GPU-hours awarded")],
    start: From,
    end: To,
    quota_gpus: Annotated[
        int | None, typer.Option("--quota-gpus", help="GPUs the project can always get back")
    ] = None,
    gpu_model: Annotated[str | None, typer.Option("--gpu-model", help="default: as asked")] = None,
    note: Annotated[str | None, typer.Option(help="the decision's note")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Award GPU-hours from the call's budget: the proposal becomes an allocation (admins)."""
    with client(ctx) as api:
        a = api.award_proposal(
            proposal_id,
            gpu_hours=gpu_hours,
            valid_from=start,
            valid_to=end,
            quota_gpus=quota_gpus,
            gpu_model=gpu_model,
            note=note,
        )
    if as_json:
        print_json(a)
    else:
        typer.echo(
            f"proposal {proposal_id} awarded: allocation {a['name']}, "
            f"{hours(a['award_gpu_hours'])} GPU-h, {day(a['valid_from'])} to {day(a['valid_to'])}"
        )


@app.command("reject")
def proposal_reject(
    ctx: typer.Context,
    proposal_id: ProposalId,
    note: Annotated[str, typer.Option(help="why, for the applicant")],
    as_json: JsonFlag = False,
) -> None:
    """Reject a proposal (admins)."""
    with client(ctx) as api:
        p = api.reject_proposal(proposal_id, note=note)
    print_json(p) if as_json else typer.echo(f"proposal {proposal_id} rejected")


@app.command("withdraw")
def proposal_withdraw(
    ctx: typer.Context, proposal_id: ProposalId, as_json: JsonFlag = False
) -> None:
    """Take back your project's proposal before it is decided (project owners)."""
    with client(ctx) as api:
        p = api.withdraw_proposal(proposal_id)
    print_json(p) if as_json else typer.echo(f"proposal {proposal_id} withdrawn")
