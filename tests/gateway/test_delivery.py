"""Outbound transports: maildir layout and idempotency; SMTP relay against real aiosmtpd."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from contract.errors import ConfigError, DeliveryError
from gateway.config import OutboundConfig
from gateway.delivery import (
    MaildirTransport,
    SmtpRelayTransport,
    Transport,
    maildir_name,
    make_transport,
)

SENDER = "stats@clearinghouse.example"
RCPT = "contact@cert.example"
RAW = b"From: stats@clearinghouse.example\r\nTo: contact@cert.example\r\n\r\nbody\r\n"


# --- maildir ------------------------------------------------------------------------------


def _files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file())


def test_maildir_layout_and_content(tmp_path: Path) -> None:
    box = tmp_path / "outgoing"
    MaildirTransport(box).deliver(RCPT, RAW, "outbox-1")

    assert {p.name for p in box.iterdir()} == {"tmp", "new", "cur"}
    (written,) = _files(box)
    assert written.parent == box / "new"
    assert written.name == maildir_name("outbox-1")
    assert written.read_bytes() == b"Delivered-To: " + RCPT.encode() + b"\r\n" + RAW
    assert stat.S_IMODE(written.stat().st_mode) == 0o600


def test_maildir_keeps_lf_line_endings_of_the_message(tmp_path: Path) -> None:
    raw = b"Subject: x\n\nbody\n"
    MaildirTransport(tmp_path).deliver(RCPT, raw, "k")
    (written,) = _files(tmp_path)
    assert written.read_bytes() == b"Delivered-To: " + RCPT.encode() + b"\n" + raw


def test_maildir_same_key_twice_leaves_one_file(tmp_path: Path) -> None:
    transport = MaildirTransport(tmp_path)
    transport.deliver(RCPT, RAW, "outbox-7")
    transport.deliver(RCPT, RAW + b"changed\r\n", "outbox-7")
    (written,) = _files(tmp_path)
    assert written.read_bytes().endswith(RAW)


def test_maildir_different_keys_give_different_files(tmp_path: Path) -> None:
    transport = MaildirTransport(tmp_path)
    for key in ("outbox-1", "outbox-2", "outbox/1", "outbox:1"):
        transport.deliver(RCPT, RAW, key)
    assert len(_files(tmp_path / "new")) == 4
    assert not _files(tmp_path / "tmp")


def test_maildir_message_moved_to_cur_by_a_reader_is_not_redelivered(tmp_path: Path) -> None:
    transport = MaildirTransport(tmp_path)
    transport.deliver(RCPT, RAW, "outbox-3")
    name = maildir_name("outbox-3")
    (tmp_path / "new" / name).rename(tmp_path / "cur" / f"{name}:2,S")
    transport.deliver(RCPT, RAW, "outbox-3")
    assert [p.name for p in _files(tmp_path)] == [f"{name}:2,S"]


@pytest.mark.parametrize("key", ["", "../../etc/passwd", "a:b", "x" * 500, "ünïcode"])
def test_maildir_name_is_a_safe_file_name(key: str) -> None:
    name = maildir_name(key)
    assert "/" not in name and ":" not in name and not name.startswith(".")
    assert name.isascii() and len(name) < 100


def test_maildir_unusable_path_is_a_delivery_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(DeliveryError, match="maildir"):
        MaildirTransport(blocker / "box").deliver(RCPT, RAW, "k")


@pytest.mark.parametrize("recipient", ["a@b.example\r\nBcc: x@y.example", "no-at-sign", ""])
def test_bad_recipient_is_refused_before_writing(tmp_path: Path, recipient: str) -> None:
    with pytest.raises(DeliveryError) as caught:
        MaildirTransport(tmp_path).deliver(recipient, RAW, "k")
    assert caught.value.permanent
    assert not _files(tmp_path)


# --- SMTP relay: a real aiosmtpd server -----------------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    tls: bool
    login: bytes | None


@dataclass
class Recorder:
    """aiosmtpd handler: records every envelope; RCPT/DATA replies can be forced."""

    received: list[Received] = field(default_factory=list)
    rcpt_reply: str | None = None
    data_reply: str = "250 OK"
    logins: list[tuple[bytes, bytes]] = field(default_factory=list)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        login = session.auth_data.login if isinstance(session.auth_data, LoginPassword) else None
        content = envelope.original_content or b""
        # session.ssl is set after STARTTLS only; the transport knows about smtps too.
        tls = server.transport is not None and bool(server.transport.get_extra_info("ssl_object"))
        self.received.append(
            Received(str(envelope.mail_from), list(envelope.rcpt_tos), content, tls, login)
        )
        return self.data_reply

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login, data.password))
        ok = (data.login, data.password) == (b"relay-user", b"p@ss:w/rd")
        return AuthResult(success=ok, handled=False, auth_data=data)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def start_server(recorder: Recorder) -> Iterator[Any]:
    """start_server(host, **smtp_params) -> port; every server is stopped afterwards."""
    controllers: list[Controller] = []

    def start(host: str = "127.0.0.1", **params: Any) -> int:
        port = _free_port(host)
        controller = Controller(recorder, hostname=host, port=port, **params)
        controller.start()
        controllers.append(controller)
        return port

    yield start
    for controller in controllers:
        controller.stop()


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1, localhost and this host."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(common: str) -> Any:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    now = datetime.now(UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder(
            issuer_name=name("test CA"),
            subject_name=name("test CA"),
            public_key=ca_key.public_key(),
        )
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    hosts = [ipaddress.ip_address("127.0.0.1")]
    if (other := _non_loopback_address()) is not None:
        hosts.append(ipaddress.ip_address(other))
    san = [x509.DNSName("localhost"), *(x509.IPAddress(h) for h in hosts)]
    cert = (
        x509.CertificateBuilder(
            issuer_name=ca.subject, subject_name=name("relay"), public_key=key.public_key()
        )
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .sign(ca_key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("certs")
    paths = {"ca": folder / "ca.pem", "cert": folder / "cert.pem", "key": folder / "key.pem"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def _server_tls(certs: dict[str, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certs["cert"], certs["key"])
    return context


def _client_tls(certs: dict[str, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certs["ca"]))


def _non_loopback_address() -> str | None:
    """An IPv4 address of this machine that is not loopback, to test the non-local rules."""
    for probe in ("192.0.2.1", "10.255.255.255", "198.51.100.1"):
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                udp.connect((probe, 9))  # UDP connect sends nothing; it only picks a route
                address = str(udp.getsockname()[0])
        except OSError:
            continue
        if not (ip := ipaddress.ip_address(address)).is_loopback and not ip.is_unspecified:
            return address
    return None


@pytest.fixture
def remote_host() -> str:
    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    return address


def test_relay_delivers_sender_recipient_and_bytes(recorder: Recorder, start_server: Any) -> None:
    port = start_server()
    SmtpRelayTransport(f"smtp://127.0.0.1:{port}", SENDER).deliver(RCPT, RAW, "k")
    (got,) = recorder.received
    assert got.mail_from == SENDER
    assert got.rcpt_tos == [RCPT]
    assert got.content == RAW
    assert not got.tls


def test_relay_sends_crlf_line_endings(recorder: Recorder, start_server: Any) -> None:
    port = start_server()
    SmtpRelayTransport(f"smtp://127.0.0.1:{port}", SENDER).deliver(RCPT, b"A: b\n\nc\n", "k")
    assert recorder.received[0].content == b"A: b\r\n\r\nc\r\n"


def test_relay_connection_refused_is_transient() -> None:
    port = _free_port("127.0.0.1")
    with pytest.raises(DeliveryError, match="ConnectionRefusedError") as caught:
        SmtpRelayTransport(f"smtp://127.0.0.1:{port}", SENDER).deliver(RCPT, RAW, "k")
    assert not caught.value.permanent


def test_relay_silent_server_times_out() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        transport = SmtpRelayTransport(f"smtp://127.0.0.1:{port}", SENDER, timeout=0.3)
        with pytest.raises(DeliveryError, match="timed out"):
            transport.deliver(RCPT, RAW, "k")


def test_relay_5xx_on_recipient_is_permanent(recorder: Recorder, start_server: Any) -> None:
    recorder.rcpt_reply = "550 5.1.1 no such user"
    port = start_server()
    with pytest.raises(DeliveryError, match="550 5.1.1 no such user") as caught:
        SmtpRelayTransport(f"smtp://127.0.0.1:{port}", SENDER).deliver(RCPT, RAW, "k")
    assert caught.value.permanent


def test_relay_4xx_on_data_is_transient(recorder: Recorder, start_server: Any) -> None:
    recorder.data_reply = "451 4.3.0 try later"
    port = start_server()
    with pytest.raises(DeliveryError, match="451") as caught:
        SmtpRelayTransport(f"smtp://127.0.0.1:{port}", SENDER).deliver(RCPT, RAW, "k")
    assert not caught.value.permanent


def test_relay_login_from_url_on_loopback(recorder: Recorder, start_server: Any) -> None:
    port = start_server(
        authenticator=recorder.authenticate, auth_require_tls=False, auth_required=False
    )
    url = f"smtp://relay-user:p%40ss%3Aw%2Frd@127.0.0.1:{port}"
    SmtpRelayTransport(url, SENDER).deliver(RCPT, RAW, "k")
    assert recorder.logins == [(b"relay-user", b"p@ss:w/rd")]
    assert recorder.received[0].login == b"relay-user"


def test_relay_wrong_password_is_an_error_without_the_password(
    recorder: Recorder, start_server: Any
) -> None:
    port = start_server(authenticator=recorder.authenticate, auth_require_tls=False)
    url = f"smtp://relay-user:sekrit-value@127.0.0.1:{port}"
    with pytest.raises(DeliveryError, match="login refused") as caught:
        SmtpRelayTransport(url, SENDER).deliver(RCPT, RAW, "k")
    assert "sekrit-value" not in str(caught.value)
    assert not recorder.received


def test_relay_smtps_verifies_and_delivers(
    recorder: Recorder, start_server: Any, certs: dict[str, Path]
) -> None:
    port = start_server(ssl_context=_server_tls(certs))
    transport = SmtpRelayTransport(
        f"smtps://127.0.0.1:{port}", SENDER, ssl_context=_client_tls(certs)
    )
    transport.deliver(RCPT, RAW, "k")
    assert recorder.received[0].tls
    assert recorder.received[0].content == RAW


def test_relay_smtps_untrusted_certificate_is_refused(
    recorder: Recorder, start_server: Any, certs: dict[str, Path]
) -> None:
    port = start_server(ssl_context=_server_tls(certs))
    with pytest.raises(DeliveryError, match="certificate"):
        SmtpRelayTransport(f"smtps://127.0.0.1:{port}", SENDER).deliver(RCPT, RAW, "k")
    assert not recorder.received


def test_relay_starttls_and_login_on_a_remote_relay(
    recorder: Recorder, start_server: Any, certs: dict[str, Path], remote_host: str
) -> None:
    port = start_server(
        remote_host, tls_context=_server_tls(certs), authenticator=recorder.authenticate
    )
    url = f"smtp://relay-user:p%40ss%3Aw%2Frd@{remote_host}:{port}"
    SmtpRelayTransport(url, SENDER, ssl_context=_client_tls(certs)).deliver(RCPT, RAW, "k")
    (got,) = recorder.received
    assert got.tls and got.login == b"relay-user"


def test_relay_starttls_with_untrusted_certificate_is_refused(
    recorder: Recorder, start_server: Any, certs: dict[str, Path], remote_host: str
) -> None:
    port = start_server(remote_host, tls_context=_server_tls(certs))
    with pytest.raises(DeliveryError, match="certificate"):
        SmtpRelayTransport(f"smtp://{remote_host}:{port}", SENDER).deliver(RCPT, RAW, "k")
    assert not recorder.received


def test_relay_remote_password_in_clear_is_refused(
    recorder: Recorder, start_server: Any, remote_host: str
) -> None:
    port = start_server(remote_host, authenticator=recorder.authenticate, auth_require_tls=False)
    url = f"smtp://relay-user:p%40ss%3Aw%2Frd@{remote_host}:{port}"
    with pytest.raises(DeliveryError, match="in clear") as caught:
        SmtpRelayTransport(url, SENDER).deliver(RCPT, RAW, "k")
    assert "p@ss" not in str(caught.value) and "p%40ss" not in str(caught.value)
    assert recorder.logins == [] and recorder.received == []


def test_relay_remote_without_credentials_may_send_in_clear(
    recorder: Recorder, start_server: Any, remote_host: str
) -> None:
    port = start_server(remote_host)
    SmtpRelayTransport(f"smtp://{remote_host}:{port}", SENDER).deliver(RCPT, RAW, "k")
    assert recorder.received[0].rcpt_tos == [RCPT]


@pytest.mark.parametrize(
    "url", ["http://relay.example", "smtp://", "smtp://relay.example:99999", "smtp://u@h"]
)
def test_bad_relay_url_is_a_config_error_that_hides_the_url(url: str) -> None:
    with pytest.raises(ConfigError, match=r"\[outbound\] relay") as caught:
        SmtpRelayTransport(url, SENDER)
    assert url not in str(caught.value)


def test_make_transport_follows_the_configuration(tmp_path: Path) -> None:
    maildir: Transport = make_transport(OutboundConfig(maildir=tmp_path), SENDER)
    assert isinstance(maildir, MaildirTransport) and maildir.path == tmp_path
    relay = make_transport(OutboundConfig(transport="smtp", relay="smtp://h.example"), SENDER)
    assert isinstance(relay, SmtpRelayTransport)
