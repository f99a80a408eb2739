"""`clearinghouse demo`: the whole intake path, run for a newcomer to watch.

In a temporary directory: make a gateway with its key, register three teams with their
own keyrings, send their reports over real SMTP on loopback (one in each accepted
PGP/MIME or inline form), plus one invalid report and one from a stranger; process them;
then decrypt one receipt with its team's key, the way the team's mail client would, and
compute, write and mail the monthly statistics for the period.
"""

from __future__ import annotations

import email
import shutil
import smtplib
import socket
import tempfile
from collections.abc import Callable
from datetime import date
from pathlib import Path

from gateway.app import App
from gateway.config import default_config
from gateway.delivery import MaildirTransport
from gateway.smtp import make_controller
from gateway.worker import Worker
from keys.compose import compose, open_sealed
from keys.gpg import GnuPG
from keys.identity import create_identity
from reports.monthly import run_monthly
from store.db import open_session
from store.outbox import list_outbox
from store.spool import list_messages
from store.submissions import list_submissions

Echo = Callable[[str], None]

TEAMS = (
    ("cert-north", "CERT North", "incidents@cert-north.example", "combined"),
    ("csirt-east", "CSIRT East", "team@csirt-east.example", "signed-then-encrypted"),
    ("ncsc-west", "NCSC West", "stats@ncsc-west.example", "inline"),
)


def _previous_month(today: date) -> str:
    year, month = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    return f"{year:04d}-{month:02d}"


def _report(period: str, seed: int) -> str:
    return (
        f"Report: type1\nPeriod: {period}\nRequests: {1200 + seed * 37}\n"
        f"Incidents-Opened: {300 + seed * 11}\nIncidents-Closed: {290 + seed * 9}\n"
        f"Inbound-Communication: {1650 - seed * 20}\nOutbound-Communication: {1400 + seed}\n"
        f"Organisations-Involved: {180 + seed}\nHours-Spent: {940.5 + seed * 10}\n\n"
        f"Report: type2\nPeriod: {period}\nAbusive Content / Spam: {120 + seed}\n"
        f"Intrusion Attempts / Login attempts: {43 + seed}\nIntrusions: {3 + seed}\n"
        f"Malicious Code / Virus: {12 - seed}\nOther: 1\n"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _team(app: App, root: Path, handle: str, name: str, address: str) -> tuple[GnuPG, str]:
    """The team's own side: its keyring, its key, the gateway key; then registration."""
    gpg = GnuPG(root / f"team-{handle}")
    fpr = gpg.generate_key(name, address)
    gpg.import_keys(app.gpg.export_public(app.identity.fingerprint).encode())
    app.registry.add_team(handle, name=name, email=address)
    app.registry.import_keys(handle, gpg.export_public(fpr).encode())
    return gpg, fpr


def run_demo(echo: Echo = print, keep: bool = False) -> None:
    root = Path(tempfile.mkdtemp(prefix="clearinghouse-demo-"))
    app = App(default_config(root / "var"))
    try:
        _run(app, root, echo)
    finally:
        # Its pooled SQLite connections close here, not whenever the garbage collector
        # finds them (Python 3.13 reports such a connection with a ResourceWarning).
        app.engine.dispose()
        if keep:
            echo(f"\nkept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def _run(app: App, root: Path, echo: Echo) -> None:
    app.create_schema()
    identity = create_identity(app.gpg, "Demo Clearinghouse", app.config.core.gateway_address)
    echo(f"1. gateway in {root}/var, key {identity.fingerprint}")
    intake = app.config.core.intake_addresses[0]
    period = _previous_month(app.clock().date())
    clients = {}
    for seed, (handle, name, address, form) in enumerate(TEAMS):
        gpg, fpr = _team(app, root, handle, name, address)
        clients[handle] = (gpg, fpr, address, form, seed)
        echo(f"2. registered team {handle} <{address}> with key {fpr}")
    outsider = GnuPG(root / "outsider")
    outsider_fpr = outsider.generate_key("Mallory", "mallory@evil.example")
    outsider.import_keys(app.gpg.export_public(identity.fingerprint).encode())

    mails = []
    for handle, (gpg, fpr, address, form, seed) in clients.items():
        mails.append(
            (
                f"{handle}, {form}",
                address,
                compose(
                    gpg,
                    _report(period, seed),
                    signer=fpr,
                    recipients=[identity.fingerprint],
                    sender=address,
                    to=intake,
                    form=form,
                ),
            )
        )
    gpg, fpr, address, _, _ = clients["cert-north"]
    bad = _report(period, 0).replace("Requests: 1200", "Requests: -5")
    mails.append(
        (
            "cert-north, invalid report",
            address,
            compose(
                gpg, bad, signer=fpr, recipients=[identity.fingerprint], sender=address, to=intake
            ),
        )
    )
    mails.append(
        (
            "stranger claiming to be cert-north",
            address,
            compose(
                outsider,
                _report(period, 1),
                signer=outsider_fpr,
                recipients=[identity.fingerprint],
                sender=address,
                to=intake,
            ),
        )
    )

    port = _free_port()
    controller = make_controller(app, "127.0.0.1", port)
    controller.start()
    try:
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            for label, sender, raw in mails:
                smtp.sendmail(sender, [intake], raw)
                echo(f"3. sent over SMTP to 127.0.0.1:{port}: {label}")
    finally:
        controller.stop()

    worker = Worker(app, MaildirTransport(app.config.outbound.maildir))
    counts = worker.run_once()
    flushed = worker.flush()
    echo(f"4. processed: {counts}; receipts delivered to the maildir: {flushed.sent}")
    _summary(app, echo)
    _show_receipt(app, clients["cert-north"][0], "incidents@cert-north.example", echo)
    _monthly(app, period, worker, clients["csirt-east"][0], "team@csirt-east.example", echo)


def _summary(app: App, echo: Echo) -> None:
    with open_session(app.engine) as s:
        echo("\n   id  state        reason           channel")
        for m in list_messages(s):
            echo(f"   {m.id:<3} {m.state:<12} {m.reason or '-':<16} {m.channel}")
        echo("\n   stored submissions:")
        for r in list_submissions(s):
            echo(f"   #{r.id} {r.team:<11} {r.type} {r.period} revision {r.revision}")


def _show_receipt(app: App, team_gpg: GnuPG, address: str, echo: Echo) -> None:
    with open_session(app.engine) as s:
        entry = next(e for e in list_outbox(s) if e.recipient == address and e.kind == "receipt")
    outer = email.message_from_bytes(entry.raw)
    result = open_sealed(team_gpg, entry.raw)
    sig = result.signatures[0] if result.signatures else None
    signer = f"{sig.outcome} by {sig.primary_fingerprint}" if sig else "none"
    inner = email.message_from_bytes(result.data)
    body = inner.get_payload(decode=True)
    echo(f"\n5. the receipt to {address}, as its mail client shows it")
    echo(f"   outer Subject: {outer['Subject']}   (neutral; the real one is encrypted)")
    echo(f"   signature: {signer}")
    echo(f"   Subject: {inner['Subject']}\n")
    text = body.decode("utf-8") if isinstance(body, bytes) else ""
    echo("   | " + "\n   | ".join(text.replace("\r\n", "\n").rstrip().split("\n")))


def _monthly(
    app: App, period: str, worker: Worker, team_gpg: GnuPG, address: str, echo: Echo
) -> None:
    """The monthly step: statistics for the period, written and mailed encrypted."""
    result = run_monthly(app, period, send=True)
    flushed = worker.flush()
    echo(f"\n6. monthly statistics for {period} in {result.directory}:")
    for name in sorted(result.files):
        echo(f"   {name:<26} {len(result.files[name]):>7} bytes")
    echo(f"   {flushed.sent} statistics mail(s) delivered, each encrypted to its recipient")
    with open_session(app.engine) as s:
        entry = next(e for e in list_outbox(s) if e.recipient == address and e.kind == "monthly")
    inner = email.message_from_bytes(open_sealed(team_gpg, entry.raw).data)
    attached = [str(p.get_filename()) for p in inner.walk() if p.get_filename()]
    echo(f"   {address} received: {inner['Subject']} with {', '.join(attached)}")
