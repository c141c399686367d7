"""Organisation, project, member, user and token commands, and login/whoami."""

from __future__ import annotations

from typing import Annotated

import typer

from aifactory.cli.config import facility_url, resolve, save
from aifactory.cli.context import client
from aifactory.cli.formats import print_json, table, when
from aifactory.cli.units import JsonFlag
from aifactory.client import Client

org_app = typer.Typer(help="Organisations (universities, institutes, startups...).")
project_app = typer.Typer(help="Projects: the tenants that own jobs and allocations.")
member_app = typer.Typer(help="Members of a project and their roles.")
user_app = typer.Typer(help="Users of the facility (admins).")
token_app = typer.Typer(help="Your API tokens.")


def register(app: typer.Typer) -> None:
    app.command()(login)
    app.command()(logout)
    app.command()(whoami)
    app.add_typer(org_app, name="org")
    app.add_typer(project_app, name="project")
    app.add_typer(member_app, name="member")
    app.add_typer(user_app, name="user")
    app.add_typer(token_app, name="token")


def login(
    ctx: typer.Context,
    url: Annotated[str | None, typer.Option(help="the facility's address")] = None,
    token: Annotated[str | None, typer.Option(help="an API token (afy_...)")] = None,
    sso: Annotated[
        bool, typer.Option("--sso", help="sign in with your institution's account, in a browser")
    ] = False,
    provider: Annotated[
        str | None, typer.Option(help="with --sso: which of the facility's providers")
    ] = None,
) -> None:
    """Sign in: with your institution (--sso), or check a token; saved for later commands."""
    obj = ctx.find_root().obj or {}
    if sso:
        from aifactory.cli.sso_login import sign_in  # the CLI starts fast without it

        sign_in(facility_url(url or obj.get("url")), provider)
        return
    token = token or typer.prompt("Token", hide_input=True)
    target = resolve(url or obj.get("url"), token)
    with Client(target.url, target.token) as api:
        me = api.me()
    path = save(target.url, target.token or "")
    typer.echo(f"logged in to {target.url} as {me['name']} (saved in {path})")


def logout() -> None:
    """Revoke the saved token (and, after --sso, the provider's refresh token) and forget it."""
    from aifactory.cli.sso_login import sign_out

    sign_out()


def whoami(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Who the token belongs to, their role and projects."""
    with client(ctx) as api:
        me = api.me()
    if as_json:
        print_json(me)
        return
    typer.echo(
        f"{me['name']} ({me['facility_role']}); default project: {me['default_project'] or '-'}"
    )
    table(
        None,
        ["project", "organisation", "role"],
        [[p["name"], p["organisation"], p["role"]] for p in me["projects"]],
    )


@org_app.command("create")
def org_create(
    ctx: typer.Context,
    name: str,
    kind: Annotated[
        str, typer.Option(help="university, research_institute, government, startup, sme, company")
    ],
    as_json: JsonFlag = False,
) -> None:
    """Admins: register an organisation, which projects belong to.

    Its kind decides which programmes its projects may apply to (aifactory programmes).
    """
    with client(ctx) as api:
        org = api.create_organisation(name, kind)
    print_json(org) if as_json else typer.echo(f"organisation {org['name']} created")


@org_app.command("list")
def org_list(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """The organisations and their kinds."""
    with client(ctx) as api:
        orgs = api.organisations()
    if as_json:
        print_json(orgs)
        return
    table(None, ["id", "name", "kind"], [[o["id"], o["name"], o["kind"]] for o in orgs])


@project_app.command("create")
def project_create(
    ctx: typer.Context,
    name: str,
    org: Annotated[str, typer.Option(help="its organisation")],
    owner: Annotated[str | None, typer.Option(help="first owner")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Admins: create a project, the tenant that owns jobs, datasets and allocations.

    It belongs to the organisation --org; --owner makes a user its first owner, who then
    adds members (aifactory member add).
    """
    with client(ctx) as api:
        project = api.create_project(name, org, owner)
    print_json(project) if as_json else typer.echo(f"project {project['name']} created")


@project_app.command("list")
def project_list(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """The projects you may see, and your role in each."""
    with client(ctx) as api:
        projects = api.projects()
    if as_json:
        print_json(projects)
        return
    table(
        None,
        ["id", "name", "organisation", "your role"],
        [[p["id"], p["name"], p["organisation"], p["role"]] for p in projects],
    )


@project_app.command("use")
def project_use(ctx: typer.Context, name: str) -> None:
    """Make NAME your default project for submit."""
    with client(ctx) as api:
        api.use_project(name)
    typer.echo(f"default project: {name}")


@member_app.command("add")
def member_add(
    ctx: typer.Context,
    project: str,
    user: str,
    role: Annotated[str, typer.Option(help="owner, member or viewer")] = "member",
    as_json: JsonFlag = False,
) -> None:
    """Project owners, admins: give USER a role in PROJECT."""
    with client(ctx) as api:
        member = api.add_member(project, user, role)
    print_json(member) if as_json else typer.echo(f"{user} is {member['role']} of {project}")


@member_app.command("list")
def member_list(ctx: typer.Context, project: str, as_json: JsonFlag = False) -> None:
    """The members of PROJECT and their roles."""
    with client(ctx) as api:
        members = api.members(project)
    if as_json:
        print_json(members)
        return
    table(project, ["user", "role"], [[m["user"], m["role"]] for m in members])


@member_app.command("remove")
def member_remove(ctx: typer.Context, project: str, user: str) -> None:
    """Project owners, admins: take USER out of PROJECT."""
    with client(ctx) as api:
        api.remove_member(project, user)
    typer.echo(f"{user} removed from {project}")


@user_app.command("create")
def user_create(
    ctx: typer.Context,
    name: str,
    email: Annotated[str | None, typer.Option()] = None,
    role: Annotated[
        str, typer.Option(help="user, operator, reviewer, finance, auditor, admin")
    ] = "user",
    as_json: JsonFlag = False,
) -> None:
    """Create a user and print their first API token (shown once)."""
    with client(ctx) as api:
        user = api.create_user(name, email=email, facility_role=role)
    if as_json:
        print_json(user)
    else:
        typer.echo(f"user {user['name']} created\ntoken: {user['token']}")


@user_app.command("password")
def user_password(ctx: typer.Context, name: str, as_json: JsonFlag = False) -> None:
    """Admins: give a user a new portal password (printed once; their browsers sign in again)."""
    with client(ctx) as api:
        issued = api.reset_password(name)
    if as_json:
        print_json(issued)
    else:
        typer.echo(f"portal password for {issued['user']}: {issued['password']}")


@user_app.command("list")
def user_list(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """The facility's users and their facility roles."""
    with client(ctx) as api:
        users = api.users()
    if as_json:
        print_json(users)
        return
    table(
        None,
        ["id", "name", "email", "role"],
        [[u["id"], u["name"], u["email"], u["facility_role"]] for u in users],
    )


@user_app.command("requests")
def user_requests(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Admins: first sign-ins through an institution that wait for approval (and the decided)."""
    with client(ctx) as api:
        found = api.sign_in_requests()
    if as_json:
        print_json(found)
        return
    table(
        None,
        ["id", "provider", "name", "email", "institution", "asked", "decision"],
        [
            [
                r["id"],
                r["provider"],
                r["name"] or "-",
                r["email"] or "-",
                r["home_organisation"] or "-",
                when(r["requested_at"]),
                r["outcome"] or "waiting",
            ]
            for r in found
        ],
    )


@user_app.command("approve")
def user_approve(ctx: typer.Context, request: int, as_json: JsonFlag = False) -> None:
    """Admins: let a waiting person in (their account is made now; they sign in again)."""
    _decide(ctx, request, approve=True, as_json=as_json)


@user_app.command("reject")
def user_reject(ctx: typer.Context, request: int, as_json: JsonFlag = False) -> None:
    """Admins: turn a waiting first sign-in down (later sign-ins are refused)."""
    _decide(ctx, request, approve=False, as_json=as_json)


def _decide(ctx: typer.Context, request: int, *, approve: bool, as_json: bool) -> None:
    with client(ctx) as api:
        decided = api.decide_sign_in_request(request, approve=approve)
    if as_json:
        print_json(decided)
    else:
        typer.echo(f"sign-in request {decided['id']} {decided['outcome']}")


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="what it is for")] = "cli",
    ttl_days: Annotated[float | None, typer.Option("--ttl-days")] = None,
    user: Annotated[str | None, typer.Option(help="admins: for this user")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Issue a new API token (shown once)."""
    with client(ctx) as api:
        token = api.create_token(name, ttl_days=ttl_days, user=user)
    print_json(token) if as_json else typer.echo(f"token {token['id']}: {token['token']}")


@token_app.command("list")
def token_list(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option(help="admins: this user's")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Your API tokens (admins: a user's), without their secret part."""
    with client(ctx) as api:
        tokens = api.tokens(user)
    if as_json:
        print_json(tokens)
        return
    table(
        None,
        ["id", "name", "prefix", "created", "expires", "revoked"],
        [
            [
                t["id"],
                t["name"],
                t["prefix"] + "…",
                when(t["created_at"]),
                when(t["expires_at"]),
                when(t["revoked_at"]),
            ]
            for t in tokens
        ],
    )


@token_app.command("revoke")
def token_revoke(ctx: typer.Context, token_id: int, as_json: JsonFlag = False) -> None:
    """Revoke a token by its id (token list shows them): it stops working at once."""
    with client(ctx) as api:
        token = api.revoke_token(token_id)
    print_json(token) if as_json else typer.echo(f"token {token_id} revoked")
