"""`clearinghouse demo`: the whole intake path, run for a newcomer to watch.

In a temporary directory: make a gateway with its key, register three teams with their
own keyrings, send their reports over real SMTP on loopback (one in each accepted
PGP/MIME or inline form; one team's type 2 in RSIT 1.3 as IntelMQ writes it), plus one
invalid report and one from a stranger, and each team's reports for the months before
(one message each); process them; then decrypt one receipt with its team's key, the way
the team's mail client would; run the monthly statistics for each earlier month (files
and site only), then for the period (files, site and mail), so that the public site has
a history and its trends show a line. The directory is deleted afterwards unless
`--keep` is given.
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

import click

from gateway.app import App
from gateway.config import default_config
from gateway.delivery import MaildirTransport
from gateway.intake.smtp import make_controller
from gateway.jobs.monthly import run_monthly
from gateway.worker import Worker
from keys.compose import compose, open_sealed
from keys.gpg import GnuPG
from keys.identity import create_identity
from reports.periods import shift
from store.db import open_session
from store.monitoring import list_outbox
from store.spool import list_messages
from store.submission_rows import list_submissions

Echo = Callable[[str], None]

TEAMS = (
    ("cert-north", "CERT North", "incidents@cert-north.example", "combined"),
    ("csirt-east", "CSIRT East", "team@csirt-east.example", "signed-then-encrypted"),
    ("ncsc-west", "NCSC West", "stats@ncsc-west.example", "inline"),
)


def _previous_month(today: date) -> str:
    year, month = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    return f"{year:04d}-{month:02d}"


HISTORY = 5  # earlier months each team reports, so that the site's trends have a history


def _report(period: str, seed: int, age: int = 0) -> str:
    """Both reports of one team (`seed`) for `period`, `age` months before the demo's.

    The figures drift from month to month so that the trends show a line. The third
    team writes type 2 in RSIT 1.3, with the slugs IntelMQ puts in its events.
    """
    wave = (age * 7 + seed * 3) % 5  # a small ripple on top of a slow rise
    workload = 1200 + seed * 37 - age * 45 + wave * 12
    spam, logins, intrusions = 120 + seed - age * 6 + wave * 3, 43 + seed + wave, 3 + seed
    type2 = (
        f"Abusive Content / Spam: {spam}\nIntrusion Attempts / Login attempts: {logins}\n"
        f"Intrusions: {intrusions}\nMalicious Code / Virus: {12 - seed + age}\nOther: 1\n"
    )
    if seed == 2:
        type2 = (
            f"Taxonomy: rsit-1.3\nabusive-content/spam: {spam}\n"
            f"intrusion-attempts/brute-force: {logins}\nintrusions: {intrusions}\n"
            f"malicious-code/infected-system: {12 - seed + age}\nother/other: 1\n"
        )
    return (
        f"Report: type1\nPeriod: {period}\nRequests: {workload}\n"
        f"Incidents-Opened: {300 + seed * 11 - age * 4}\nIncidents-Closed: {290 + seed * 9}\n"
        f"Inbound-Communication: {1650 - seed * 20}\nOutbound-Communication: {1400 + seed}\n"
        f"Organisations-Involved: {180 + seed}\nHours-Spent: {940.5 + seed * 10 - age * 8}\n\n"
        f"Report: type2\nPeriod: {period}\n{type2}"
    )


def _history(period: str, seed: int) -> str:
    """A team's reports for the HISTORY months before `period`, in one message."""
    return "\n".join(_report(shift(period, -age), seed, age) for age in range(HISTORY, 0, -1))


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
        _run(app, root, echo, keep)
    finally:
        # Its pooled SQLite connections close here, not whenever the garbage collector
        # finds them (Python 3.13 reports such a connection with a ResourceWarning).
        app.engine.dispose()
        if keep:
            echo(f"\nkept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def _run(app: App, root: Path, echo: Echo, keep: bool) -> None:
    app.initialise()
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

    def mail(gpg: GnuPG, fpr: str, address: str, text: str, form: str = "combined") -> bytes:
        return compose(
            gpg, text, signer=fpr, recipients=[identity.fingerprint], sender=address, to=intake,
            form=form,
        )  # fmt: skip

    mails = [
        (f"{handle}, {form}", address, mail(gpg, fpr, address, _report(period, seed), form))
        for handle, (gpg, fpr, address, form, seed) in clients.items()
    ]
    gpg, fpr, address, _, _ = clients["cert-north"]
    bad = _report(period, 0).replace("Requests: 1200", "Requests: -5")
    mails.append(("cert-north, invalid report", address, mail(gpg, fpr, address, bad)))
    stranger = mail(outsider, outsider_fpr, address, _report(period, 1))
    mails.append(("stranger claiming to be cert-north", address, stranger))
    for handle, (gpg, fpr, address, _, seed) in clients.items():
        earlier = mail(gpg, fpr, address, _history(period, seed))
        mails.append((f"{handle}, its reports for the {HISTORY} months before", address, earlier))

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
    shown = ", ".join(f"{n} {state}" for state, n in counts.items())
    echo(f"4. processed: {shown}; receipts delivered to the maildir: {flushed.sent}")
    _summary(app, period, echo)
    _show_receipt(app, clients["cert-north"][0], "incidents@cert-north.example", echo)
    team = (clients["csirt-east"][0], "team@csirt-east.example")
    _monthly(app, period, worker, team, echo, keep)


def _summary(app: App, period: str, echo: Echo) -> None:
    with open_session(app.engine) as s:
        echo("\n   id  state        reason           channel")
        for m in list_messages(s):
            echo(f"   {m.id:<3} {m.state:<12} {m.reason or '-':<16} {m.channel}")
        stored = list_submissions(s)
        echo(f"\n   stored submissions for {period}:")
        for r in stored:
            if r.period == period:
                echo(f"   #{r.id} {r.team:<11} {r.type} {r.period} revision {r.revision}")
        earlier = sorted({r.period for r in stored if r.period != period})
        if earlier:
            count = sum(r.period != period for r in stored)
            echo(f"   and {count} for the months before, {earlier[0]} to {earlier[-1]}")


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
    app: App, period: str, worker: Worker, team: tuple[GnuPG, str], echo: Echo, keep: bool
) -> None:
    """The monthly step: each earlier month first (files and site only, as if those runs
    had happened), then the period's statistics, written, published and mailed."""
    for age in range(HISTORY, 0, -1):
        run_monthly(app, shift(period, -age), send=False)
    echo(f"\n6. monthly statistics for the {HISTORY} months before {period} (files and site)")
    result = run_monthly(app, period, send=True)
    flushed = worker.flush()
    echo(f"   and for {period}, in {result.directory}:")
    for name in sorted(result.files):
        echo(f"   {name:<26} {len(result.files[name]):>7} bytes")
    echo(f"   {flushed.sent} statistics mail(s) delivered, each encrypted to its recipient")
    team_gpg, address = team
    with open_session(app.engine) as s:
        entry = next(e for e in list_outbox(s) if e.recipient == address and e.kind == "monthly")
    inner = email.message_from_bytes(open_sealed(team_gpg, entry.raw).data)
    attached = [str(p.get_filename()) for p in inner.walk() if p.get_filename()]
    echo(f"   {address} received: {inner['Subject']} with {', '.join(attached)}")
    months = HISTORY + 1
    site = app.config.publication.site_dir / "index.html"
    echo(f"\n7. the public site, {months} months with their trends: {site}")
    if not keep:
        echo(
            "   (the demo deletes these files, the PDFs above too, when it ends: "
            "`clearinghouse demo --keep` or `make demo KEEP=1` keeps them)"
        )


@click.command()
@click.option("--keep", is_flag=True, help="Keep the temporary directory afterwards.")
def demo(keep: bool) -> None:
    """A complete run in a temporary directory: gateway, three teams, SMTP, receipts,
    monthly statistics and the public site (deleted afterwards unless --keep)."""
    run_demo(echo=click.echo, keep=keep)
