"""The principal cache never outlives its TTL nor the token's own expiry."""

from __future__ import annotations

from aifactory.domain.tenancy import FacilityRole
from aifactory.faces.principal_cache import PrincipalCache
from aifactory.services.principal import Principal

ALICE = Principal(user_id=1, name="alice", facility_role=FacilityRole.USER)


def test_an_entry_lives_ttl_seconds() -> None:
    cache = PrincipalCache(ttl_s=2.0)
    cache.put("h", ALICE, token_expires_at=None, now=100.0)
    assert cache.get("h", now=101.9) == ALICE
    assert cache.get("h", now=102.0) is None


def test_an_entry_never_outlives_its_token() -> None:
    cache = PrincipalCache(ttl_s=2.0)
    cache.put("h", ALICE, token_expires_at=100.5, now=100.0)
    assert cache.get("h", now=100.4) == ALICE
    assert cache.get("h", now=100.5) is None


def test_clear_forgets_everyone_and_zero_ttl_caches_nothing() -> None:
    cache = PrincipalCache(ttl_s=2.0)
    cache.put("h", ALICE, token_expires_at=None, now=0.0)
    cache.clear()
    assert cache.get("h", now=0.0) is None
    off = PrincipalCache(ttl_s=0.0)
    off.put("h", ALICE, token_expires_at=None, now=0.0)
    assert off.get("h", now=0.0) is None


def test_a_full_cache_starts_over_rather_than_growing() -> None:
    cache = PrincipalCache(ttl_s=10.0, max_entries=2)
    for i in range(3):
        cache.put(f"h{i}", ALICE, token_expires_at=None, now=0.0)
    assert cache.get("h2", now=0.0) == ALICE
    assert cache.get("h0", now=0.0) is None
