"""Every reason code explained for the admin: what it means and what to do about it.

`messages show` prints these; the codes themselves are `contract.codes.Reason`.
"""

from __future__ import annotations

from contract.codes import Reason

REASONS: dict[Reason, tuple[str, str]] = {
    Reason.NOT_ENCRYPTED: (
        "The message was not encrypted to the gateway key.",
        "Ask the team to encrypt to the key printed by `clearinghouse gateway-key`.",
    ),
    Reason.NOT_SIGNED: (
        "The content carried no signature.",
        "Ask the team to sign and encrypt (PGP/MIME), not only encrypt.",
    ),
    Reason.BAD_SIGNATURE: (
        "The signature did not verify: the content was altered or GnuPG reported a problem.",
        "Ask the team to send the report again.",
    ),
    Reason.UNKNOWN_KEY: (
        "The signing key is not bound to any team in the registry.",
        "If the team has a new key: `clearinghouse keys import HANDLE FILE`, "
        "then `messages reprocess ID`.",
    ),
    Reason.KEY_REVOKED: (
        "The signing key (or its subkey) is revoked.",
        "The team must sign with a new key; import it with `keys import`.",
    ),
    Reason.KEY_EXPIRED: (
        "The signing key had expired when the message was signed.",
        "The team must extend the expiry and send the updated key.",
    ),
    Reason.TEAM_NOT_ALLOWED: (
        "The team's status does not allow submissions.",
        "Check `teams show HANDLE`; change it with `teams set-status`.",
    ),
    Reason.PARTIALLY_SIGNED: (
        "Part of the content was outside the signature.",
        "Ask the team to send the report as the whole signed content.",
    ),
    Reason.MULTIPLE_SIGNATURES: (
        "The content carried more than one signature.",
        "Ask the team to sign once, with their registered key only.",
    ),
    Reason.STALE_SIGNATURE: (
        "The signature time is outside the freshness window (too old, or in the future).",
        "Ask the team to sign anew; a replayed old message ends here.",
    ),
    Reason.SENDER_MISMATCH: (
        "The From address does not match the team's registered address "
        "as the sender-binding policy requires.",
        "Check the team's email in `teams show`; the sender may be spoofed.",
    ),
    Reason.WRONG_RECIPIENT: (
        "The signed content was addressed (protected To) to another recipient.",
        "A report signed for someone else was forwarded; ignore.",
    ),
    Reason.DECRYPT_FAILED: (
        "The message could not be decrypted with the gateway key.",
        "Ask the team to encrypt to the current gateway key.",
    ),
    Reason.MALFORMED_MIME: (
        "The MIME structure is broken or too deep.",
        "Ask the team to send from a standard mail client or `compose`.",
    ),
    Reason.TOO_LARGE: (
        "The message, or what it decrypts to, exceeds the size limits.",
        "Ask the team for a smaller message; see [smtp] and [limits].",
    ),
    Reason.PARSE_ERROR: (
        "The signed content held no report at all.",
        "The team was told; they must send a report block (Report: type1 ...).",
    ),
    Reason.INVALID_REPORT: (
        "A report was invalid; the error reply named each problem.",
        "Nothing to do: the team corrects and resends.",
    ),
    Reason.UNKNOWN_COMMAND: (
        "The signed content was a `Command:` the gateway does not know.",
        "Nothing to do: the team was told which commands exist.",
    ),
    Reason.TOO_MANY_PACKETS: (
        "The encrypted message carried more key packets (PKESK/SKESK) or more encryption "
        "layers than [limits] allows; it was refused from its packet headers, before gpg ran.",
        "Nothing, unless it is a team's message: a team's client writes one key packet per "
        "recipient. Raise [limits] max_key_packets only for such a team, then reprocess.",
    ),
    Reason.GPG_TIMEOUT: (
        "GnuPG did not finish within [limits] gpg_timeout_seconds and was stopped (a "
        "message built to cost gpg more than any team's does, or an overloaded machine).",
        "If the message is a team's, reprocess it when the machine is quiet; else nothing.",
    ),
    Reason.PROCESSING_FAILED: (
        "Processing raised an error repeatedly (a bug or broken infrastructure).",
        "See the logs, fix the cause, then reprocess.",
    ),
}


def explain(reason: str | None) -> tuple[str, str]:
    """What a stored reason means, and what to do; a code this version does not know (a
    newer instance's, on a shared database) says so."""
    if reason is None:
        return ("", "")
    try:
        return REASONS[Reason(reason)]
    except ValueError:
        return ("Unknown reason code.", "See the logs.")
