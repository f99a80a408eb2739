"""Team-side commands: `compose` a ready-to-send submission, print a blank `template`.

These run on a team's own machine (from cron, say), never on the gateway: no gateway
configuration, no data directory. `compose` reads a report file, checks it with the
gateway's own parser, signs it with the team's key from the team's GnuPG home, encrypts
it to the gateway key (imported from `--gateway-key FILE`, or found in that keyring by
the intake address), and writes the message out or hands it to an SMTP server.

In: the report text, fingerprints and addresses from the command line, the team's
keyring. Out: RFC 5322 bytes in one of the forms the gateway accepts (`keys/compose.py`
builds them), on stdout, in `--output`, or sent with `--send smtp[s]://...`.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from email.utils import getaddresses
from pathlib import Path

import click
from click.core import ParameterSource

from contract.errors import ClearinghouseError, UsageError
from gateway.addresses import is_address, parse_relay_url
from gateway.app import App
from gateway.config import load_config
from gateway.delivery import SmtpRelayTransport
from keys.compose import FORMS, compose
from keys.gpg import GnuPG
from keys.key_details import KeyDetails
from parsers.taxonomy import VOCABULARIES, Taxonomy, load_taxonomy
from parsers.template import TYPES, blank_report
from parsers.text import parse_text
from reports.periods import parse_period, previous_period


def _default_gnupghome() -> Path:
    return Path.home() / ".gnupg"


def _address(_ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not is_address(value):
        raise click.BadParameter(f"expected a bare address user@domain, found {value!r}")
    return value


def _relay(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        try:
            parse_relay_url(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


@click.command("compose")
@click.option(
    "--report",
    "report_file",
    type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path),
    required=True,
    help="The report (text format; - for stdin).",
)
@click.option("--key-id", required=True, metavar="FPR", help="Fingerprint of the team's key.")
@click.option("--to", required=True, callback=_address, help="The clearinghouse intake address.")
@click.option(
    "--from",
    "sender",
    default=None,
    callback=_address,
    help="From: address (default: the address on the team's key).",
)
@click.option(
    "--gateway-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The gateway's public key; imported into the keyring (default: look up --to).",
)
@click.option(
    "--gnupghome",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="GNUPGHOME",
    default=_default_gnupghome,
    show_default="$GNUPGHOME or ~/.gnupg",
    help="The team's GnuPG home.",
)
@click.option("--form", type=click.Choice(FORMS), default="combined", show_default=True)
@click.option("--subject", default="Monthly statistics", show_default=True)
@click.option(
    "--passphrase-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Unlocks the team's key when no gpg-agent holds its passphrase.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the message here (default: stdout, unless --send).",
)
@click.option(
    "--send",
    "relay",
    default=None,
    callback=_relay,
    metavar="SMTP-URL",
    help="Send it: smtp://host[:port] (STARTTLS when offered) or smtps://, user:pass@ allowed.",
)
@click.option(
    "--check/--no-check",
    default=True,
    show_default=True,
    help="Parse the report first and refuse it if the gateway would.",
)
def compose_command(
    report_file: Path,
    key_id: str,
    to: str,
    sender: str | None,
    gateway_key: Path | None,
    gnupghome: Path,
    form: str,
    subject: str,
    passphrase_file: Path | None,
    output: Path | None,
    relay: str | None,
    check: bool,
) -> None:
    """Build a signed and encrypted submission from a report file (team side)."""
    # Paths, not click.File: a file click opened stays open when a later option is bad.
    report = sys.stdin.read() if str(report_file) == "-" else report_file.read_text("utf-8")
    if check:
        _check_report(report)
    gpg = GnuPG(gnupghome)
    signer = _signing_key(gpg, key_id)
    recipient = _gateway_key(gpg, to, gateway_key.read_bytes() if gateway_key else None)
    sender = sender or _key_address(signer)
    passphrase = passphrase_file.read_text().rstrip("\r\n") if passphrase_file else None
    raw = compose(
        gpg,
        report,
        signer=signer.fingerprint,
        recipients=[recipient],
        sender=sender,
        to=to,
        subject=subject,
        form=form,
        passphrase=passphrase,
    )
    if output is not None:
        output.write_bytes(raw)
    if relay is not None:
        SmtpRelayTransport(relay, sender).deliver(to, raw, key="compose")
        click.echo(f"sent to {to} from {sender}, encrypted to {recipient}", err=True)
    elif output is None:
        sys.stdout.buffer.write(raw)
        sys.stdout.buffer.flush()


def _check_report(report: str) -> None:
    """Refuse a report the gateway would reject, naming each problem with its line."""
    outcome = parse_text(report, "report", datetime.now(UTC).date(), _taxonomy())
    if not outcome.ok:
        problems = [str(e) for e in outcome.errors] or ["no report found"]
        raise ClearinghouseError(
            "the gateway would reject this report (--no-check sends it anyway):\n  "
            + "\n  ".join(problems)
        )


def _signing_key(gpg: GnuPG, key_id: str) -> KeyDetails:
    fingerprint = "".join(key_id.split()).upper()
    key = gpg.details(fingerprint, secret=True)
    if key is None:
        raise UsageError(
            f"no secret key with fingerprint {fingerprint} in {gpg.home} "
            "(give the full fingerprint: gpg --list-secret-keys --with-colons)"
        )
    return key


def _gateway_key(gpg: GnuPG, to: str, key_file: bytes | None) -> str:
    """The fingerprint to encrypt to: from `key_file` (imported), else found by `to`."""
    if key_file is not None:
        if gpg.contains_secret(key_file):
            raise UsageError("--gateway-key holds a secret key; give the public key only")
        imported = gpg.import_keys(key_file)
        if not imported:
            raise UsageError("--gateway-key holds no OpenPGP public key")
        keys = [k for k in (gpg.details(f) for f in imported) if k is not None]
        if len(keys) > 1:
            keys = [k for k in keys if _has_address(k, to)]
    else:
        keys = [k for k in gpg.keys_for_address(to) if not k.revoked]
    if len(keys) != 1:
        found = ", ".join(k.fingerprint for k in keys) or "none"
        raise UsageError(
            f"need exactly one gateway key for {to} in {gpg.home}, found {found}; "
            "give the one the clearinghouse published with --gateway-key FILE"
        )
    return keys[0].fingerprint


def _has_address(key: KeyDetails, address: str) -> bool:
    return any(a.lower() == address.lower() for _, a in getaddresses(list(key.user_ids)))


def _key_address(key: KeyDetails) -> str:
    for _, address in getaddresses(list(key.user_ids)):
        if is_address(address):
            return address
    raise UsageError(f"key {key.fingerprint} has no user ID with an address; give --from")


@click.command("template")
@click.argument("report_type", type=click.Choice(TYPES))
@click.option(
    "--period",
    default=None,
    metavar="YYYY-MM",
    help="The month to fill in (default: the previous month).",
)
@click.option(
    "--taxonomy",
    "vocabulary",
    type=click.Choice(VOCABULARIES),
    default=None,
    help="type2: the vocabulary to name classes and types in (default: the canonical one).",
)
def template_command(report_type: str, period: str | None, vocabulary: str | None) -> None:
    """Print a blank report: fill in the numbers, then `compose` it."""
    if period is not None:
        try:
            parse_period(period)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="'--period'") from None
    if vocabulary is not None and report_type != "type2":
        raise click.BadParameter(
            "a type 1 report has no taxonomy; give --taxonomy with type2 only",
            param_hint="'--taxonomy'",
        )
    month = period or previous_period(datetime.now(UTC).date())
    click.echo(blank_report(report_type, _taxonomy(), month, vocabulary=vocabulary), nl=False)


def _taxonomy() -> Taxonomy:
    """The gateway's taxonomy (canonical vocabulary, extra file) when `--config` is given
    on the command line, else the shipped one. CLEARINGHOUSE_CONFIG is not read: these
    commands run on a team's machine, where it would be a gateway's left-over."""
    root = click.get_current_context().find_root()
    if root.get_parameter_source("config_path") is not ParameterSource.COMMANDLINE:
        return load_taxonomy()
    return App(load_config(root.params["config_path"])).taxonomy
