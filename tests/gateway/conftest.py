"""Fixtures for the gateway tests: a real Dovecot for the IMAP door.

`dovecot` starts Debian's Dovecot (package `dovecot-imapd`) as a throwaway instance:
IMAP (plain, with STARTTLS) and IMAPS on free loopback ports, one passwd-file user with
a plain password, maildir storage, and a self-signed certificate for 127.0.0.1 made with
`cryptography`; configuration (in Dovecot 2.3's syntax, Debian 12, or 2.4's, Debian 13),
runtime directory, state and log live in a temporary directory removed afterwards. Run
as root (CI), the login processes drop to `dovenull` and the mail processes to `nobody`;
run as anyone else, everything runs as that user.
A missing Dovecot fails the test, saying how to install it: CI installs it.
"""

from __future__ import annotations

import datetime
import grp
import ipaddress
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from imapclient import IMAPClient
from waiting import wait_until

HOST = "127.0.0.1"


class Dovecot:
    """One Dovecot instance and the facts a test needs to talk to it."""

    host = HOST
    user = "intake"
    password = "intake-secret"

    def __init__(self, binary: str, root: Path) -> None:
        self.binary = binary
        self.root = root
        self.imap_port = _free_port()
        self.imaps_port = _free_port()
        self.cert = root / "cert.pem"
        self.password_file = root / "password"
        self.log = root / "dovecot.log"
        self.conf = root / "dovecot.conf"
        self.process: subprocess.Popen[bytes] | None = None
        _write_certificate(self.cert, root / "key.pem")
        self.password_file.write_text(self.password + "\n")
        self._write_config()

    def _write_config(self) -> None:
        root = self.root
        if os.geteuid() == 0:
            login = "dovenull" if _user_exists("dovenull") else "nobody"
            internal = "dovecot" if _user_exists("dovecot") else "nobody"
            mail = pwd.getpwnam("nobody")
        else:  # Dovecot's "rootless" setup: every process is this user
            login = internal = pwd.getpwuid(os.getuid()).pw_name
            mail = pwd.getpwuid(os.getuid())
        internal_group = grp.getgrgid(pwd.getpwnam(internal).pw_gid).gr_name
        home = root / "home" / self.user
        home.mkdir(parents=True)
        os.chown(home, mail.pw_uid, mail.pw_gid)
        os.chmod(root, 0o755)  # noqa: S103 - mkdtemp makes it 0700; Dovecot must get in
        (root / "passwd").write_text(f"{self.user}:{{PLAIN}}{self.password}::::::\n")
        self.conf.write_text(
            _config_template(self.binary).format(
                root=root,
                imap_port=self.imap_port,
                imaps_port=self.imaps_port,
                login=login,
                internal=internal,
                internal_group=internal_group,
                uid=mail.pw_uid,
                gid=mail.pw_gid,
                first_uid=min(mail.pw_uid, 500),
            )
        )

    def start(self) -> None:
        assert self.process is None, "already running"
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [self.binary, "-F", "-c", str(self.conf)],
                stdout=out,
                stderr=out,
                start_new_session=True,  # its own process group: stop() ends all of it
            )
        process = self.process

        def listening() -> bool:
            assert process.poll() is None, f"Dovecot exited with status {process.returncode}"
            return _answers(self.imap_port) and _answers(self.imaps_port)

        try:
            wait_until(listening, "Dovecot to answer on its IMAP and IMAPS ports", seconds=15)
        except AssertionError as problem:
            self.stop()
            pytest.fail(
                f"{problem}; Dovecot did not start:\n{self.log.read_text(errors='replace')}"
            )

    def stop(self) -> None:
        """Stop every Dovecot process, sessions included, as a service manager would.

        Signalling the master alone is not enough: its imap processes outlive it and
        keep serving the sessions they have.
        """
        if self.process is None:
            return
        group = self.process.pid
        _signal_group(group, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _signal_group(group, signal.SIGKILL)
            self.process.wait()
        self.process = None
        deadline = time.monotonic() + 10
        while _signal_group(group, 0) and time.monotonic() < deadline:
            time.sleep(0.05)
        _signal_group(group, signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self) -> IMAPClient:
        """A logged-in plain-text connection, for appending and looking (loopback only)."""
        client = IMAPClient(self.host, port=self.imap_port, ssl=False, timeout=10)
        client.login(self.user, self.password)
        return client

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        client = self.client()
        try:
            client.append(folder, raw)
        finally:
            client.logout()

    def messages(self, folder: str) -> list[tuple[bytes, tuple[bytes, ...]]]:
        """(raw bytes, flags) of each message in `folder`, oldest first; [] if no folder."""
        client = self.client()
        try:
            if not client.folder_exists(folder):
                return []
            client.select_folder(folder, readonly=True)
            uids = sorted(client.search(["UNDELETED"]))
            data: dict[int, dict[bytes, Any]] = client.fetch(uids, [b"BODY.PEEK[]", b"FLAGS"])
            return [(data[uid][b"BODY[]"], tuple(data[uid][b"FLAGS"])) for uid in uids]
        finally:
            client.logout()


_CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_login_user = {login}
default_internal_user = {internal}
default_internal_group = {internal_group}
first_valid_uid = {first_uid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/passwd
  default_fields = uid={uid} gid={gid} home={root}/home/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
"""


# Dovecot 2.4 (Debian 13) reads no 2.3 configuration (Debian 12): the same instance, in
# its syntax (dovecot_config_version first; ssl_server_*_file, auth_allow_cleartext, named
# passdb/userdb blocks with `fields`, mail_driver/mail_path, %{user}).
_CONFIG_2_4 = """\
dovecot_config_version = 2.4.0
dovecot_storage_version = 2.4.0
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
ssl = yes
ssl_server_cert_file = {root}/cert.pem
ssl_server_key_file = {root}/key.pem
auth_allow_cleartext = yes
auth_mechanisms = plain login
auth_failure_delay = 0
default_login_user = {login}
default_internal_user = {internal}
default_internal_group = {internal_group}
first_valid_uid = {first_uid}
passdb passwd-file {{
  passwd_file_path = {root}/passwd
}}
userdb passwd-file {{
  passwd_file_path = {root}/passwd
  fields {{
    uid:default = {uid}
    gid:default = {gid}
    home:default = {root}/home/%{{user}}
  }}
}}
mail_driver = maildir
mail_path = %{{home}}/Maildir
service imap-login {{
  chroot =
  inet_listener imap {{
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = {imaps_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
"""


def _config_template(binary: str) -> str:
    """The configuration template for the installed Dovecot's major version."""
    shown = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True)
    version = tuple(int(part) for part in shown.stdout.split()[0].split(".")[:2])
    return _CONFIG_2_4 if version >= (2, 4) else _CONFIG


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def _signal_group(group: int, signum: int) -> bool:
    """Send `signum` to a process group; False if it has no processes left."""
    try:
        os.killpg(group, signum)
    except ProcessLookupError:
        return False
    return True


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _write_certificate(cert_path: Path, key_path: Path) -> None:
    """A self-signed certificate for 127.0.0.1 and localhost, valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Throwaway Dovecot")])
    now = datetime.datetime.now(datetime.UTC)
    san = [x509.IPAddress(ipaddress.ip_address(HOST)), x509.DNSName("localhost")]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _dovecot_binary() -> str:
    found = shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        pytest.fail(
            "Dovecot is not installed, and the IMAP door is tested against a real one: "
            "apt-get install dovecot-imapd (`make deps` does it as root)"
        )
    return found


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    # Not tmp_path: Dovecot's sockets need a short path, and its unprivileged processes
    # a directory they can enter (pytest's base directory is private to its user).
    root = Path(tempfile.mkdtemp(prefix="dovecot-"))
    server = Dovecot(_dovecot_binary(), root)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
