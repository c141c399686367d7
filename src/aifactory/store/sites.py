"""Sites: where nodes stand and in which country (data residency reads it)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from aifactory.store.models import Site


def upsert_site(
    session: Session, name: str, country: str, *, now: float, description: str | None = None
) -> Site:
    site = session.get(Site, name)
    if site is None:
        site = Site(name=name, country=country, description=description or "", updated_at=now)
        session.add(site)
    elif site.country != country or (description is not None and site.description != description):
        site.country = country
        if description is not None:
            site.description = description
        site.updated_at = now
    return site


def site_countries(session: Session) -> dict[str, str]:
    return {name: country for name, country in session.execute(select(Site.name, Site.country))}


def known_site(session: Session, name: str, *, now: float) -> None:
    """A node's site not configured yet: a site named by a country code is in that country
    (how single-site facilities name theirs); any other stays unknown until configured, and
    its nodes then take only data free to go anywhere."""
    if session.get(Site, name) is None and len(name) == 2 and name.isalpha():
        upsert_site(session, name, name.upper(), now=now, description="from node inventory")
