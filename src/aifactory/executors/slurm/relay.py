"""A job's own Unix socket (a session's notebook server), published on its node for the
facility alone: on Slurm the control plane is on another host and cannot open a socket in a
node's directory, so the batch script runs a relay (socat, from the node's distribution) that
listens on a TCP port of the node and passes each connection to the socket.

The relay takes only the facility: mutual TLS with keys made for the one attempt. The
facility makes two self-signed certificates, the relay's and its own; the relay holds its key
(the identity's file, 0400) and trusts exactly the facility's certificate; the facility trusts
exactly the relay's. Another tenant on the node, or anyone on the cluster's network, neither
gets in nor reads the traffic, and a relay.json pointed elsewhere (the identity writes it)
reaches nothing that holds the attempt's key. The port is the first free one of the range
the operators opened from the control plane to the nodes (config: slurm_relay_ports); the
relay records it in relay.json.
"""

from __future__ import annotations

import datetime
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SERVER_KEY = "relay-server.pem"  # the relay's certificate and key: the identity's, 0400
SERVER_CERT = "relay-server.crt"  # what the facility trusts
CLIENT_KEY = "relay-client.pem"  # the facility's certificate and key: root's, 0400
CLIENT_CERT = "relay-client.crt"  # what the relay trusts
RECORD = "relay.json"  # the port it listens on, in the attempt's `job/` (the relay writes it)
MARGIN = datetime.timedelta(days=1)  # beyond the attempt's time limit (a late start, a clock)


def client_context(attempt_dir: Path) -> ssl.SSLContext:
    """The facility's side: trusts the attempt's relay alone and shows its own certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False  # the one certificate trusted is the attempt's own
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cafile=str(attempt_dir / SERVER_CERT))
    context.load_cert_chain(str(attempt_dir / CLIENT_KEY))
    return context


@dataclass(frozen=True, slots=True)
class KeyPair:
    certificate: bytes  # PEM
    key: bytes  # PEM, unencrypted

    @property
    def both(self) -> bytes:
        return self.certificate + self.key


def self_signed(name: str, valid_s: float = 86_400.0) -> KeyPair:
    """A P-256 key and a self-signed certificate for it, valid from a minute ago for
    `valid_s` and a day more (an attempt's keys: its time limit)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(seconds=valid_s) + MARGIN)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(
        certificate.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def port_of(record: dict[str, Any] | None, ports: tuple[int, int]) -> int | None:
    """The port relay.json names, if it is one of the relays' (the identity writes it: it
    makes the facility connect to no other port of the node)."""
    port = (record or {}).get("port")
    low, high = ports
    return port if isinstance(port, int) and low <= port <= high else None
