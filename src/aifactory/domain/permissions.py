"""The permission matrix: which role may do which action — the one table every check reads.

Eight roles: five facility roles that hold everywhere (admin, operator, reviewer, finance,
auditor) and three project roles that hold in one project (owner, member, viewer). A user's
roles for a request are their facility role plus their role in the project the object belongs
to, if any; an action is allowed when any of those roles is in the action's row. Roles do not
rank: an owner may do what a member may only because both are in the row.

Facility-wide actions (no project) are decided by the facility role alone. Listing actions
("read") scope their answer: a project role lets its holder read that project's part, a facility
role in the row lets its holder read everything (a reviewer: what is assigned to them). Rules
that are not roles (assignment, conflict of interest, one's own tokens, a project's last owner)
are checked by the services on top of the matrix; each row's `why` names them. The check itself
is `services.principal.Principal.authorize`. docs/permissions.md is written from this table
(`aifactory permissions --markdown`), and tests/api/test_permission_matrix.py exercises every
cell through the API.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from aifactory.domain.tenancy import FacilityRole, ProjectRole


class Role(enum.StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    REVIEWER = "reviewer"
    FINANCE = "finance"
    AUDITOR = "auditor"
    OWNER = "owner"
    MEMBER = "member"
    VIEWER = "viewer"

    @property
    def in_project(self) -> bool:
        return self in PROJECT_ROLES

    @classmethod
    def of_facility(cls, role: FacilityRole) -> Role | None:
        return None if role is FacilityRole.USER else cls(role.value)

    @classmethod
    def of_project(cls, role: ProjectRole) -> Role:
        return cls(role.value)


PROJECT_ROLES = frozenset({Role.OWNER, Role.MEMBER, Role.VIEWER})
FACILITY_ROLES = frozenset(Role) - PROJECT_ROLES


class Action(enum.StrEnum):
    # facility
    FACILITY_PAUSE = "facility.pause"
    SCHEDULER_WHATIF = "scheduler.whatif"
    SITE_MANAGE = "site.manage"
    NODE_DRAIN = "node.drain"
    USER_CREATE = "user.create"
    USER_LIST = "user.list"
    TOKEN_MANAGE = "token.manage"  # noqa: S105 - an action name, not a secret
    ORGANISATION_CREATE = "organisation.create"
    PROJECT_CREATE = "project.create"
    PROJECT_READ = "project.read"
    MEMBER_MANAGE = "member.manage"
    # jobs
    JOB_SUBMIT = "job.submit"
    JOB_READ = "job.read"
    JOB_CANCEL = "job.cancel"
    JOB_PRIORITISE = "job.prioritise"
    # programmes, calls, proposals
    PROGRAMME_EDIT = "programme.edit"
    CALL_CREATE = "call.create"
    PROPOSAL_SUBMIT = "proposal.submit"
    PROPOSAL_READ = "proposal.read"
    PROPOSAL_ASSIGN = "proposal.assign"
    PROPOSAL_REVIEW = "proposal.review"
    PROPOSAL_DECIDE = "proposal.decide"
    PROPOSAL_WITHDRAW = "proposal.withdraw"
    # money
    ALLOCATION_READ = "allocation.read"
    ALLOCATION_CREATE = "allocation.create"
    ALLOCATION_ADJUST = "allocation.adjust"
    USAGE_READ = "usage.read"
    INVOICE_READ = "invoice.read"
    INVOICE_ISSUE = "invoice.issue"
    REPORT_EXPORT = "report.export"
    FEDERATION_IMPORT = "federation.import"
    FEDERATION_EXPORT = "federation.export"
    # audit
    AUDIT_READ = "audit.read"
    AUDIT_VERIFY = "audit.verify"
    # data governance
    DATASET_READ = "dataset.read"
    DATASET_REGISTER = "dataset.register"
    DATASET_GRANT = "dataset.grant"
    ERASURE_REQUEST = "erasure.request"
    ERASURE_READ = "erasure.read"
    PROCESSING_RECORDS_EXPORT = "processing_records.export"
    PROJECT_EXPORT = "project.export"
    PROJECT_CLOSE = "project.close"
    # software
    SOFTWARE_READ = "software.read"
    ENVIRONMENT_CREATE = "environment.create"
    IMAGE_IMPORT = "image.import"
    # inference
    ENDPOINT_READ = "endpoint.read"
    ENDPOINT_MANAGE = "endpoint.manage"
    SESSION_USE = "session.use"
    INFERENCE_KEY_MANAGE = "inference_key.manage"


@dataclass(frozen=True, slots=True)
class Rule:
    roles: frozenset[Role]
    why: str  # what the action is, after "may": docs/permissions.md and every refusal say it


def _rule(why: str, *roles: Role) -> Rule:
    return Rule(frozenset(roles), why)


ADM, OPS, REV, FIN, AUD = Role.ADMIN, Role.OPERATOR, Role.REVIEWER, Role.FINANCE, Role.AUDITOR
OWN, MEM, VIEW = Role.OWNER, Role.MEMBER, Role.VIEWER

MATRIX: dict[Action, Rule] = {
    Action.FACILITY_PAUSE: _rule("pause or resume admission of new jobs", ADM, OPS),
    Action.SCHEDULER_WHATIF: _rule(
        "replay a trace or the facility's job history under other scheduler settings", ADM, OPS
    ),
    Action.SITE_MANAGE: _rule("define sites and their countries, place nodes in them", ADM, OPS),
    Action.NODE_DRAIN: _rule(
        "drain a node (running work finishes, nothing new starts there) and resume it", ADM, OPS
    ),
    Action.USER_CREATE: _rule("create users and set facility roles", ADM),
    Action.USER_LIST: _rule("list every user", ADM, OPS),
    Action.TOKEN_MANAGE: _rule(
        "list, issue and revoke other users' API tokens (everyone manages their own)", ADM
    ),
    Action.ORGANISATION_CREATE: _rule("create organisations", ADM),
    Action.PROJECT_CREATE: _rule("create projects", ADM),
    Action.PROJECT_READ: _rule("see a project and its members", ADM, OPS, OWN, MEM, VIEW),
    Action.MEMBER_MANAGE: _rule(
        "add, change or remove a project's members (a project keeps at least one owner)", ADM, OWN
    ),
    Action.JOB_SUBMIT: _rule("submit jobs charged to the project", ADM, OWN, MEM),
    Action.JOB_READ: _rule("see the project's jobs and their logs", ADM, OPS, OWN, MEM, VIEW),
    Action.JOB_CANCEL: _rule(
        "cancel the project's jobs, and hold, release or update them while they wait",
        ADM,
        OPS,
        OWN,
        MEM,
    ),
    Action.JOB_PRIORITISE: _rule(
        "raise a job's priority above 0, or set any waiting job's with `aifactory priority` "
        "(others may set their jobs' only at 0 or below: at submission, or with `aifactory "
        "update`)",
        ADM,
        OPS,
    ),
    Action.PROGRAMME_EDIT: _rule("create and edit programmes and tariffs", ADM),
    Action.CALL_CREATE: _rule("open calls for proposals", ADM),
    Action.PROPOSAL_SUBMIT: _rule("apply for compute for the project", ADM, OWN, MEM),
    Action.PROPOSAL_READ: _rule(
        "see proposals and finished reviews (reviewers: those assigned to them)",
        ADM,
        REV,
        OWN,
        MEM,
        VIEW,
    ),
    Action.PROPOSAL_ASSIGN: _rule("assign reviewers to a proposal and see who reviews", ADM),
    Action.PROPOSAL_REVIEW: _rule(
        "score a proposal assigned to them, free of conflicts of interest", ADM, REV
    ),
    Action.PROPOSAL_DECIDE: _rule("award or reject a proposal", ADM),
    Action.PROPOSAL_WITHDRAW: _rule(
        "withdraw the project's proposal before it is decided", ADM, OWN
    ),
    Action.ALLOCATION_READ: _rule(
        "see allocations and their ledgers", ADM, OPS, FIN, OWN, MEM, VIEW
    ),
    Action.ALLOCATION_CREATE: _rule("create allocations by hand", ADM),
    Action.ALLOCATION_ADJUST: _rule("top up or correct an allocation", ADM, FIN),
    Action.USAGE_READ: _rule("see metered usage and cost", ADM, OPS, FIN, OWN, MEM, VIEW),
    Action.INVOICE_READ: _rule("see and download invoices", ADM, FIN, OWN, MEM, VIEW),
    Action.INVOICE_ISSUE: _rule("issue a closed month's invoice, never redone", ADM, FIN),
    Action.REPORT_EXPORT: _rule("export funder reports", ADM, OPS, FIN),
    Action.FEDERATION_IMPORT: _rule(
        "import awards from an upstream allocation portal (docs/federation.md)", ADM
    ),
    Action.FEDERATION_EXPORT: _rule(
        "export usage per upstream award and month for an upstream portal", ADM, FIN
    ),
    Action.AUDIT_READ: _rule(
        "read the audit log (project roles: their project's events)", ADM, AUD, OWN, MEM
    ),
    Action.AUDIT_VERIFY: _rule("verify the audit log's hash chain", ADM, AUD),
    Action.DATASET_READ: _rule("see datasets, versions and grants", ADM, OPS, AUD, OWN, MEM, VIEW),
    Action.DATASET_REGISTER: _rule("register a dataset or a new version of it", ADM, OWN),
    Action.DATASET_GRANT: _rule("grant or revoke a project's use of a dataset", ADM, OWN),
    Action.ERASURE_REQUEST: _rule("request erasure of a dataset version (GDPR Art. 17)", ADM, OWN),
    Action.ERASURE_READ: _rule("see erasures, reports and certificates", ADM, AUD, OWN),
    Action.PROCESSING_RECORDS_EXPORT: _rule("export records of processing (Art. 30)", ADM, AUD),
    Action.PROJECT_EXPORT: _rule("export all of a project's data", ADM, OWN),
    Action.PROJECT_CLOSE: _rule("close a project, erasing its data, with a certificate", ADM),
    Action.SOFTWARE_READ: _rule(
        "see the project's environments and images, their packages and the jobs that used them",
        ADM,
        OPS,
        AUD,
        OWN,
        MEM,
        VIEW,
    ),
    Action.ENVIRONMENT_CREATE: _rule(
        "build or remove the project's Python environments (the facility's: admins)",
        ADM,
        OWN,
        MEM,
    ),
    Action.IMAGE_IMPORT: _rule("import or remove container images", ADM),
    Action.ENDPOINT_READ: _rule(
        "see the project's inference endpoints, its keys (never their secrets) and their usage",
        ADM,
        OPS,
        FIN,
        OWN,
        MEM,
        VIEW,
    ),
    Action.ENDPOINT_MANAGE: _rule(
        "serve the project's models: create or remove its inference endpoints", ADM, OWN, MEM
    ),
    Action.SESSION_USE: _rule(
        "open a session's notebook or terminal (members: the sessions they started; owners: "
        "any of the project's)",
        OWN,
        MEM,
    ),
    Action.INFERENCE_KEY_MANAGE: _rule(
        "create or revoke the project's inference keys (a key is shown once)", ADM, OWN
    ),
}


def allowed(action: Action, roles: frozenset[Role]) -> bool:
    return bool(MATRIX[action].roles & roles)


def who_may(action: Action) -> str:
    """The roles in the action's row, for refusals: 'admin, finance or owner'."""
    names = [r.value for r in Role if r in MATRIX[action].roles]
    return " or ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)


def as_markdown() -> str:
    """The matrix as a Markdown table (docs/permissions.md)."""
    roles = list(Role)
    head = "| action | " + " | ".join(r.value for r in roles) + " | what it is |"
    rule = "|---" * (len(roles) + 2) + "|"
    rows = [
        f"| `{action.value}` | "
        + " | ".join("✓" if r in MATRIX[action].roles else "" for r in roles)
        + f" | {MATRIX[action].why} |"
        for action in Action
    ]
    return "\n".join([head, rule, *rows]) + "\n"
