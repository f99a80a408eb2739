"""The contract's words: message states, reason codes, and the kinds of outgoing mail.

These are what operators grep for, scripts match (`messages list --json`, `outbox list
--json`) and the documentation lists (docs/reference.md), so they are types: mypy catches
a misspelt one, and tests/contract/test_codes.py ties each set to the documentation and
to the code that produces it. Never change a value's meaning; add a new one instead.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    """Where a message stands (docs/reference.md "Message states and reason codes")."""

    RECEIVED = "received"  # stored, not yet processed
    ACCEPTED = "accepted"  # authenticated, every report valid and stored
    REJECTED = "rejected"  # authenticated, but a report is invalid; nothing of it stored
    DUPLICATE = "duplicate"  # authenticated, identical to an accepted message
    QUARANTINED = "quarantined"  # not authenticated, not decryptable, or malformed


FINAL_STATES = frozenset(State) - {State.RECEIVED}


class Reason(StrEnum):
    """Why a message ended as it did; explained for admins in `contract/reasons.py`."""

    NOT_ENCRYPTED = "not-encrypted"
    NOT_SIGNED = "not-signed"
    BAD_SIGNATURE = "bad-signature"
    UNKNOWN_KEY = "unknown-key"
    KEY_REVOKED = "key-revoked"
    KEY_EXPIRED = "key-expired"
    TEAM_NOT_ALLOWED = "team-not-allowed"
    PARTIALLY_SIGNED = "partially-signed"
    MULTIPLE_SIGNATURES = "multiple-signatures"
    STALE_SIGNATURE = "stale-signature"
    SENDER_MISMATCH = "sender-mismatch"
    WRONG_RECIPIENT = "wrong-recipient"
    DECRYPT_FAILED = "decrypt-failed"
    MALFORMED_MIME = "malformed-mime"
    TOO_LARGE = "too-large"
    PARSE_ERROR = "parse-error"
    INVALID_REPORT = "invalid-report"
    UNKNOWN_COMMAND = "unknown-command"
    PROCESSING_FAILED = "processing-failed"
    TOO_MANY_PACKETS = "too-many-packets"
    GPG_TIMEOUT = "gpg-timeout"


class MailKind(StrEnum):
    """What an outgoing mail is (the outbox's `kind`); its subject and body template are
    named with it in `reports/mail.py`'s table of letters."""

    RECEIPT = "receipt"
    REJECTION = "rejection"
    DUPLICATE = "duplicate"
    QUARANTINE = "quarantine"
    COMMAND = "command"
    COMMAND_ERROR = "command-error"
    MONTHLY = "monthly"
    REMINDER = "reminder"
    KEY_EXPIRY = "key-expiry"
    WELCOME = "welcome"
