"""Certificates of erasure and of project closure: A4 PDFs drawn from a stored report.

A certificate states the facts a data subject, a controller or an auditor asks for — what was
removed, when, why, by which trigger, the checksum of the data — and names its full report by
the report's SHA-256 (domain.erasure.report_digest), so the stored report can be checked
against the certificate. The same report always gives the same bytes (reportlab invariant
mode, built-in Helvetica, no clock read here).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from reportlab.platypus.flowables import Flowable

FACILITY = "aifactory"
REMOVED_FROM_ROOT = "The files were removed from the data root."
STYLES = getSampleStyleSheet()
# A SHA-256 in hex (64 characters) fits the value column on one line in 8-point Courier.
DIGEST = ParagraphStyle("digest", parent=STYLES["Code"], fontSize=8, leading=10, leftIndent=0)


def erasure_certificate(report: dict[str, Any], digest: str) -> bytes:
    """The certificate of one erasure (`report` as governance.erasure builds it)."""
    erasure, dataset, version = report["erasure"], report["dataset"], report["version"]
    facts = [
        ("Facility", report["facility"]),
        ("Dataset", dataset["name"]),
        ("Version", str(version["version"])),
        ("Owner project", dataset["owner_project"] or "the facility"),
        ("Controller", dataset["controller"]),
        ("Classification", version["classification"]),
        ("SHA-256 of the erased data", version["sha256"]),
        ("Removed", _removed(report["removed"])),
        ("Trigger", _trigger_text(erasure["trigger"])),
        ("Reason", erasure["reason"]),
        ("Requested by", f"{erasure['requested_by']} at {erasure['requested_at']}"),
        ("Erased at", str(erasure["completed_at"])),
        ("Jobs that used it", _job_list(report["jobs"])),
        ("SHA-256 of the report", digest),
    ]
    statement = (
        f"This certifies that version {version['version']} of dataset {dataset['name']} "
        f"was erased at {erasure['completed_at']} (UTC). {REMOVED_FROM_ROOT} From the moment "
        "the erasure began, the version could no longer be read or used by any job."
    )
    return _pdf(f"Certificate of erasure {erasure['id']}", statement, facts)


def closure_certificate(report: dict[str, Any], digest: str) -> bytes:
    """The certificate of a project's closure (`report` as governance.closure builds it)."""
    project = report["project"]
    erased = report["erasures"]
    facts = [
        ("Facility", report["facility"]),
        ("Project", project["name"]),
        ("Organisation", project["organisation"]),
        ("Reason", report["reason"]),
        ("Requested by", f"{report['requested_by']} at {report['requested_at']}"),
        ("Closed at", str(report["completed_at"])),
        ("Grants revoked", str(len(report["grants"]))),
        ("Dataset versions erased", _erased_list(erased)),
        ("Job directories removed", f"those of its {len(report['jobs'])} jobs"),
        ("SHA-256 of the report", digest),
    ]
    statement = (
        f"This certifies that project {project['name']} was closed at {report['completed_at']} "
        "(UTC): every grant given to it or by it was revoked, every version of its datasets "
        f"was erased, and its jobs' directories were removed. {REMOVED_FROM_ROOT}"
    )
    return _pdf(f"Certificate of closure: project {project['name']}", statement, facts)


def _trigger_text(trigger: str) -> str:
    return {
        "request": "request for erasure (GDPR Art. 17)",
        "retention": "end of the retention period",
        "closure": "closure of the owning project",
    }.get(trigger, trigger)


def _removed(removed: Sequence[dict[str, Any]]) -> str:
    return "; ".join(f"{r['path']} ({r['files']} files, {r['size_bytes']} bytes)" for r in removed)


def _job_list(jobs: Sequence[dict[str, Any]]) -> str:
    if not jobs:
        return "none"
    return ", ".join(f"job {j['id']} ({j['project']})" for j in jobs)


def _erased_list(erasures: Sequence[dict[str, Any]]) -> str:
    if not erasures:
        return "none"
    return "; ".join(f"{e['dataset']} v{e['version']} (SHA-256 {e['sha256']})" for e in erasures)


def _pdf(title: str, statement: str, facts: Sequence[tuple[str, str]]) -> bytes:
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        invariant=1,
        title=title,
        author=FACILITY,
        creator=FACILITY,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
    )
    document.build(_story(title, statement, facts))
    return buffer.getvalue()


def _story(title: str, statement: str, facts: Sequence[tuple[str, str]]) -> list[Flowable]:
    body = STYLES["BodyText"]
    rows = [
        [
            Paragraph(escape(label), STYLES["Heading5"]),
            Paragraph(escape(value), DIGEST if label.startswith("SHA-256") else body),
        ]
        for label, value in facts
    ]
    table = Table(rows, colWidths=[48 * mm, 126 * mm], hAlign="LEFT")
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
    return [
        Paragraph(escape(title), STYLES["Title"]),
        Paragraph(escape(statement), body),
        Spacer(1, 6 * mm),
        table,
    ]
