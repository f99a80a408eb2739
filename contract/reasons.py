"""Every reason code a message can end with: what it means and what to do about it.

The codes are a stable, machine-readable contract (SPEC.md "Message states and reason
codes"): never change a code's meaning; add new codes instead.
"""

from __future__ import annotations

REASONS: dict[str, tuple[str, str]] = {
    "not-encrypted": (
        "The message was not encrypted to the gateway key.",
        "Ask the team to encrypt to the key printed by `clearinghouse gateway-key`.",
    ),
    "not-signed": (
        "The content carried no signature.",
        "Ask the team to sign and encrypt (PGP/MIME), not only encrypt.",
    ),
    "bad-signature": (
        "The signature did not verify: the content was altered or GnuPG reported a problem.",
        "Ask the team to send the report again.",
    ),
    "unknown-key": (
        "The signing key is not bound to any team in the registry.",
        "If the team has a new key: `clearinghouse keys import HANDLE FILE`, "
        "then `messages reprocess ID`.",
    ),
    "key-revoked": (
        "The signing key (or its subkey) is revoked.",
        "The team must sign with a new key; import it with `keys import`.",
    ),
    "key-expired": (
        "The signing key had expired when the message was signed.",
        "The team must extend the expiry and send the updated key.",
    ),
    "team-not-allowed": (
        "The team's status does not allow submissions.",
        "Check `teams show HANDLE`; change it with `teams set-status`.",
    ),
    "partially-signed": (
        "Part of the content was outside the signature.",
        "Ask the team to send the report as the whole signed content.",
    ),
    "multiple-signatures": (
        "The content carried more than one signature.",
        "Ask the team to sign once, with their registered key only.",
    ),
    "stale-signature": (
        "The signature time is outside the freshness window (too old, or in the future).",
        "Ask the team to sign anew; a replayed old message ends here.",
    ),
    "sender-mismatch": (
        "The From address does not match the team's registered address "
        "as the sender-binding policy requires.",
        "Check the team's email in `teams show`; the sender may be spoofed.",
    ),
    "wrong-recipient": (
        "The signed content was addressed (protected To) to another recipient.",
        "A report signed for someone else was forwarded; ignore.",
    ),
    "decrypt-failed": (
        "The message could not be decrypted with the gateway key.",
        "Ask the team to encrypt to the current gateway key.",
    ),
    "malformed-mime": (
        "The MIME structure is broken or too deep.",
        "Ask the team to send from a standard mail client or `compose`.",
    ),
    "too-large": (
        "The message, or what it decrypts to, exceeds the size limits.",
        "Ask the team for a smaller message; see [smtp] and [limits].",
    ),
    "parse-error": (
        "The signed content held no report at all.",
        "The team was told; they must send a report block (Report: type1 ...).",
    ),
    "invalid-report": (
        "A report was invalid; the error reply named each problem.",
        "Nothing to do: the team corrects and resends.",
    ),
    "unknown-command": (
        "The signed content was a `Command:` the gateway does not know.",
        "Nothing to do: the team was told which commands exist.",
    ),
    "processing-failed": (
        "Processing raised an error repeatedly (a bug or broken infrastructure).",
        "See the logs, fix the cause, then reprocess.",
    ),
}


def explain(reason: str | None) -> tuple[str, str]:
    if reason is None:
        return ("", "")
    return REASONS.get(reason, ("Unknown reason code.", "See the logs."))
