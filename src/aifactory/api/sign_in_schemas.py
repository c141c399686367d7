"""Bodies of the federated sign-in's API: the providers, the CLI's token exchange, approvals."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from aifactory.api.schemas import TokenIssued


class ProviderOut(BaseModel):
    name: str
    label: str
    issuer: str
    cli_client_id: str | None = Field(
        description="the public client `aifactory login --sso` signs in as (device flow); "
        "none: this provider signs in to the portal only"
    )
    scopes: list[str]


class SsoExchange(BaseModel):
    provider: str = Field(max_length=32)
    id_token: str = Field(
        min_length=1, max_length=16384, description="an ID token the provider issued to the CLI"
    )


class SsoTokenIssued(TokenIssued):
    user: str


class SignInRequestOut(BaseModel):
    id: int
    provider: str
    subject: str
    name: str | None
    email: str | None
    home_organisation: str | None
    requested_at: datetime
    outcome: str | None
