"""`aifactory login --sso` and `aifactory logout`: sign in with one's institution from a
terminal (client.sso), and the quiet renewal of that sign-in when its token ends."""

from __future__ import annotations

from typing import Any

import typer

from aifactory.cli.config import ending, forget, load, load_sso, renewing, save
from aifactory.client import sso
from aifactory.client.sso import Provider, SignedIn, SignInFailed


def sign_in(url: str, provider_name: str | None) -> None:
    provider = _choose(sso.providers(url), provider_name)
    login = sso.start(provider)
    where = login.verification_uri_complete or login.verification_uri
    typer.echo(f"To sign in with {provider.label}, open this address in a browser:\n\n  {where}\n")
    typer.echo(f"and check that it shows the code  {login.user_code}\n")
    typer.echo("Waiting for you to sign in there (Ctrl-C to stop)...")
    signed = sso.exchange(url, provider, sso.wait(login))
    path = save(url, signed.token, _saved(provider, signed))
    typer.echo(f"logged in to {url} as {signed.user} through {provider.label} (saved in {path})")


def renew_saved(url: str) -> str:
    """A fresh facility token from the saved provider refresh token (resolve calls this); one
    process renews, others then read what it saved."""
    with renewing():
        saved = load_sso()
        if saved is None:
            raise SignInFailed("you are logged out: run `aifactory login --sso`")
        if not ending(saved):  # another command renewed it while this one waited
            return load().get("token", "")
        provider = _provider_of(saved)
        refresh = saved.get("refresh_token")
        if not isinstance(refresh, str) or not refresh:
            raise SignInFailed("your sign-in has ended: run `aifactory login --sso` again")
        signed = sso.renew(url, provider, refresh)
        save(url, signed.token, _saved(provider, signed))
        return signed.token


def sign_out() -> None:
    """Forget the tokens here first, whatever happens after; then revoke them where they were
    issued (a facility or provider out of reach leaves them to expire: said so)."""
    saved, url, token = load_sso(), load().get("url"), load().get("token", "")
    path = forget()
    typer.echo(f"logged out (token removed from {path})")
    if saved is None or url is None or not token or not saved.get("token_id"):
        return
    signed = SignedIn(
        token=token,
        token_id=int(saved["token_id"]),
        expires_at=str(saved.get("expires_at", "")),
        user=str(saved.get("user", "")),
        provider=str(saved.get("provider", "")),
        refresh_token=saved.get("refresh_token"),
    )
    sso.sign_out(url, signed, _provider_of(saved))


def _choose(found: list[Provider], name: str | None) -> Provider:
    if not found:
        raise SignInFailed("this facility offers no sign-in with an institution's account")
    if name is None:
        if len(found) > 1:
            names = ", ".join(p.name for p in found)
            raise SignInFailed(f"choose a provider with --provider: {names}")
        return found[0]
    for provider in found:
        if provider.name == name:
            return provider
    raise SignInFailed(f"no provider named {name!r}; there are: {', '.join(p.name for p in found)}")


def _saved(provider: Provider, signed: SignedIn) -> dict[str, Any]:
    return {
        "provider": provider.name,
        "label": provider.label,
        "issuer": provider.issuer,
        "client_id": provider.client_id,
        "scopes": list(provider.scopes),
        "refresh_token": signed.refresh_token,
        "token_id": signed.token_id,
        "expires_at": signed.expires_at,
        "user": signed.user,
    }


def _provider_of(saved: dict[str, Any]) -> Provider:
    return Provider(
        name=str(saved.get("provider", "")),
        label=str(saved.get("label", "the provider")),
        issuer=str(saved.get("issuer", "")),
        client_id=str(saved.get("client_id", "")),
        scopes=tuple(saved.get("scopes") or ("openid",)),
    )
