"""Sites: where the facility's nodes stand. A site's country decides which datasets its nodes
may process (data residency); jobs on data restricted to other countries never land there."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from aifactory.domain.permissions import Action
from aifactory.governance import audit
from aifactory.services.principal import Principal
from aifactory.services.records_of import SiteRecord, copy_of
from aifactory.store.models import Node, Site
from aifactory.store.sites import upsert_site


def list_sites(session: Session) -> list[tuple[SiteRecord, int]]:
    """Every site with its number of nodes (anyone signed in may see where work can run)."""
    nodes = select(Node.site, func.count().label("n")).group_by(Node.site).subquery()
    rows = session.execute(
        select(Site, func.coalesce(nodes.c.n, 0))
        .outerjoin(nodes, nodes.c.site == Site.name)
        .order_by(Site.name)
    )
    return [(copy_of(SiteRecord, site), int(count)) for site, count in rows]


def set_site(
    session: Session,
    principal: Principal,
    name: str,
    *,
    country: str,
    description: str | None,
    now: float,
) -> SiteRecord:
    """Define a site or correct its country; placement follows on the next tick."""
    principal.authorize(Action.SITE_MANAGE)
    before = session.get(Site, name)
    old_country = before.country if before is not None else None
    site = upsert_site(session, name, country, now=now, description=description)
    audit.record(
        session,
        actor=principal.name,
        action="site.set",
        object=f"site:{name}",
        at=now,
        source=principal.source,
        detail={"country": country, "was": old_country},
    )
    return copy_of(SiteRecord, site)
