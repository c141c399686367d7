"""The words of each notification (domain.notifications.Notice), from plain values. Pure.

Each notice's `key` names its event once for all time (a job ends once, an allocation crosses
80 % once), which is what makes a repeated notice a no-op in the outbox.
"""

from __future__ import annotations

from aifactory.domain.notifications import Event, Notice

FOOTER = (
    "\n\nYou receive this because of your notification preferences (aifactory notifications prefs)."
)


def job_ended(
    job_id: int, name: str, project: str, state: str, exit_code: int | None, reason: str | None
) -> Notice:
    code = "" if exit_code is None else f" (exit code {exit_code})"
    why = f"\nReason: {reason}" if reason else ""
    return Notice(
        Event.JOB_ENDED,
        f"job:{job_id}:ended",
        f"Job {job_id} ({name}) {state}{code}",
        f"Job {job_id} ({name}) of project {project} ended: {state}{code}.{why}{FOOTER}",
        {"job": job_id, "name": name, "project": project, "state": state, "exit_code": exit_code},
    )


def allocation_used(
    allocation_id: int, name: str, project: str, threshold: int, message: str
) -> Notice:
    return Notice(
        Event.ALLOCATION_USED,
        f"allocation:{allocation_id}:used:{threshold}",
        f"Allocation {name} has used {threshold} % of its GPU-hours",
        f"Project {project}: {message}.{FOOTER}",
        {"allocation": name, "project": project, "threshold_pct": threshold},
    )


def allocation_expired(allocation_id: int, name: str, project: str, valid_to: str) -> Notice:
    return Notice(
        Event.ALLOCATION_EXPIRED,
        f"allocation:{allocation_id}:expired",
        f"Allocation {name} has expired",
        f"Allocation {name} of project {project} expired at {valid_to}: its jobs can no "
        f"longer be paid from it.{FOOTER}",
        {"allocation": name, "project": project, "valid_to": valid_to},
    )


def proposal_decided(proposal_id: int, title: str, project: str, outcome: str, note: str) -> Notice:
    return Notice(
        Event.PROPOSAL_DECIDED,
        f"proposal:{proposal_id}:{outcome}",
        f"Proposal {proposal_id} ({title}): {outcome}",
        f"Proposal {proposal_id} ({title}) of project {project} was {outcome}.\n"
        f"Note: {note}{FOOTER}",
        {"proposal": proposal_id, "title": title, "project": project, "outcome": outcome},
    )


def erasure_completed(erasure_id: int, dataset: str, version: int, trigger: str) -> Notice:
    return Notice(
        Event.ERASURE_COMPLETED,
        f"erasure:{erasure_id}:done",
        f"Dataset {dataset} version {version} erased",
        f"Erasure {erasure_id} ({trigger}) of dataset {dataset} version {version} is complete; "
        f"its certificate can be downloaded (aifactory gdpr).{FOOTER}",
        {"erasure": erasure_id, "dataset": dataset, "version": version, "trigger": trigger},
    )


def session_culled(job_id: int, project: str, reason: str) -> Notice:
    return Notice(
        Event.SESSION_CULLED,
        f"session:{job_id}:culled",
        f"Session {job_id} was stopped",
        f"Your interactive session {job_id} of project {project} was stopped: {reason}.{FOOTER}",
        {"job": job_id, "project": project, "reason": reason},
    )


def maintenance(
    window_id: int, nodes: str, begins: str, ends: str, reason: str, *, cancelled: bool = False
) -> Notice:
    """`nodes`, `begins`, `ends`: as people read them ("all nodes", "2026-12-08 06:00 UTC")."""
    if cancelled:
        return Notice(
            Event.MAINTENANCE,
            f"maintenance:{window_id}:cancelled",
            f"Maintenance {window_id} is called off",
            f"The maintenance of {nodes} from {begins} to {ends} ({reason}) is called off: "
            f"work is scheduled there as usual.{FOOTER}",
            {"maintenance": window_id, "state": "cancelled", "nodes": nodes, "reason": reason},
        )
    return Notice(
        Event.MAINTENANCE,
        maintenance_key(window_id),
        f"Maintenance from {begins} to {ends}",  # the nodes in the text: a subject stays short
        f"{nodes[:1].upper()}{nodes[1:]} will be out of service from {begins} to {ends}: "
        f"{reason}.\n"
        "No job starts there that would run into it by its time limit: a shorter limit lets "
        "yours run before it; others start after it. Jobs already running are not "
        f"stopped by the scheduler.{FOOTER}",
        {
            "maintenance": window_id,
            "state": "announced",
            "nodes": nodes,
            "begins": begins,
            "ends": ends,
            "reason": reason,
        },
    )


def maintenance_key(window_id: int) -> str:
    """The announcement's key (a cancellation reaches whoever it reached)."""
    return f"maintenance:{window_id}:announced"
