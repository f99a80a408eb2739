"""SMTP test support: a real intake server on loopback and a throwaway certificate."""

from __future__ import annotations

import ipaddress
import smtplib
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.app import App
from store import spool
from store.db import open_session
from store.models import Message

Start = Callable[..., int]  # smtp_server(**smtp_changes) -> port of a running intake server
HOST = "127.0.0.1"
SENDER = "cert@alpha.example"
RAW = (
    b"From: cert@alpha.example\r\n"
    b"To: stats@clearinghouse.example\r\n"
    b"Subject: statistics\r\n"
    b"\r\n"
    b"not even encrypted; the door does not care\r\n"
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def spooled(app: App) -> list[Message]:
    with open_session(app.engine) as s:
        messages = spool.list_messages(s)
        for message in messages:
            _ = message.raw  # load the deferred column while the session is open
        return messages


def client(port: int) -> smtplib.SMTP:
    smtp = smtplib.SMTP(HOST, port, timeout=10)
    smtp.ehlo("client.example")
    return smtp


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1: (cert, key) PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "clearinghouse test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder(issuer_name=name, subject_name=name, public_key=key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file
