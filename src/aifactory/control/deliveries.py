"""The two ways a notification leaves the facility: an e-mail over SMTP (stdlib smtplib) and a
signed webhook (httpx). I/O only; what to send and whether it may go are decided elsewhere
(domain.notifications, control.notifier).

Each message carries its delivery key: the e-mail's Message-ID and the webhook's
`X-Aifactory-Delivery`, the same on every try, so a receiver can drop a repeat (the one a crash
between sending and recording makes: docs/notifications.md, "Delivery guarantees").
"""

from __future__ import annotations

import json
import smtplib
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any, Literal

import httpx

from aifactory.domain.notifications import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    signature,
)


class Undeliverable(Exception):
    """A try failed. `permanent`: trying again cannot help (e.g. no address)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class ServerUnreachable(Undeliverable):
    """The server itself could not be reached: the other deliveries to it wait this round."""


@dataclass(frozen=True, slots=True)
class Delivery:
    key: str
    event: str
    address: str  # an e-mail address or a webhook URL
    subject: str
    text: str
    facts: dict[str, Any]
    created_at: float
    secret: str | None = None  # a webhook's


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int
    tls: Literal["none", "starttls", "tls"]
    sender: str
    username: str | None = None
    password: str | None = None
    timeout_s: float = 30.0


def message_of(delivery: Delivery, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = delivery.address
    message["Subject"] = delivery.subject
    message["Date"] = formatdate(delivery.created_at)
    message["Message-ID"] = message_id(delivery.key, sender)
    message[EVENT_HEADER] = delivery.event
    message.set_content(delivery.text)
    return message


def message_id(key: str, sender: str) -> str:
    """The same for every try of one delivery (RFC 5322 id-left: no ':' or '/')."""
    domain = sender.rpartition("@")[2] or "aifactory"
    return f"<{key.replace(':', '.').replace('/', '.')}@{domain}>"


def send_email(config: SmtpConfig, delivery: Delivery) -> None:
    message = message_of(delivery, config.sender)
    try:
        smtp = _connect(config)
    except (OSError, smtplib.SMTPException) as error:
        raise ServerUnreachable(f"SMTP server {config.host}:{config.port}: {error}") from error
    try:
        with smtp:
            if config.username:
                smtp.login(config.username, config.password or "")
            refused = smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused as error:
        raise Undeliverable(f"recipient refused: {error.recipients}", permanent=True) from error
    except (OSError, smtplib.SMTPException) as error:
        raise Undeliverable(f"SMTP: {error}") from error
    if refused:
        raise Undeliverable(f"recipient refused: {refused}", permanent=True)


def _connect(config: SmtpConfig) -> smtplib.SMTP:
    context = ssl.create_default_context()
    if config.tls == "tls":
        return smtplib.SMTP_SSL(config.host, config.port, timeout=config.timeout_s, context=context)
    smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout_s)
    if config.tls == "starttls":
        try:
            smtp.starttls(context=context)
        except BaseException:
            smtp.close()
            raise
    return smtp


def webhook_body(delivery: Delivery) -> bytes:
    document = {
        "id": delivery.key,
        "event": delivery.event,
        "created_at": delivery.created_at,
        "subject": delivery.subject,
        "data": delivery.facts,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def send_webhook(client: httpx.Client, delivery: Delivery) -> None:
    body = webhook_body(delivery)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "aifactory-webhooks",
        DELIVERY_HEADER: delivery.key,
        EVENT_HEADER: delivery.event,
        SIGNATURE_HEADER: signature(delivery.secret or "", int(time.time()), body),
    }
    try:
        answer = client.post(delivery.address, content=body, headers=headers)
    except httpx.HTTPError as error:
        raise Undeliverable(f"webhook: {type(error).__name__}: {error}") from error
    if not answer.is_success:
        raise Undeliverable(f"webhook answered {answer.status_code}")
