"""The project's one exception tree: what may be raised, and the exit status it means.

Expected outcomes are not exceptions: a message that fails authentication or a report
that fails validation becomes a verdict with a stable reason code. Exceptions are for
broken configuration, broken infrastructure and bugs. The CLI turns a
`ClearinghouseError` into its `exit_code` and a one-line message; anything else is a bug
and gets a traceback.

    Exception
     └── ClearinghouseError      exit 1: something failed
          ├── ConfigError        exit 2: usage error, a bad configuration file or value
          │    └── TaxonomyError  a taxonomy file (shipped or `[taxonomy] extra_file`)
          │                       or the canonical taxonomy named is not usable
          ├── StorageError       exit 75 (EX_TEMPFAIL): could not store; `ingest` exits
          │                      with it so that the MTA keeps the message and retries
          ├── GnuPGError         exit 1: the gpg binary, agent or home directory is broken
          ├── RegistryError      exit 1: a registry change was refused (unknown team,
          │                      key bound to another team, secret key offered, ...)
          ├── ImapError          exit 1: the IMAP mailbox cannot be used (unreachable,
          │                      login refused, TLS certificate not trusted)
          └── DeliveryError      exit 1: an outbound transport failed; transient unless
                                 `permanent` says the relay refused it for good

Messages are meant for the operator's terminal and logs. They never carry secrets
(passwords, passphrases, key material) and are never shown to a mail sender.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "ClearinghouseError",
    "ConfigError",
    "DeliveryError",
    "GnuPGError",
    "ImapError",
    "RegistryError",
    "StorageError",
    "TaxonomyError",
]


class ClearinghouseError(Exception):
    """Base of every error the project raises on purpose."""

    exit_code: ClassVar[int] = 1


class ConfigError(ClearinghouseError):
    """The configuration file or a command-line value is unusable."""

    # 2, like click's usage errors, so one exit status means "fix how you called it".
    exit_code: ClassVar[int] = 2


class TaxonomyError(ConfigError):
    """A taxonomy file or the canonical taxonomy named is not usable; the message says where."""


class StorageError(ClearinghouseError):
    """A message or record could not be stored durably; nothing was acknowledged."""

    exit_code: ClassVar[int] = 75  # os.EX_TEMPFAIL, spelled out: os lacks it on Windows


class GnuPGError(ClearinghouseError):
    """GnuPG itself failed (binary missing, agent dead, home unusable), not a signature."""


class RegistryError(ClearinghouseError):
    """An admin's registry or keyring change was refused; the message says what to do."""


class ImapError(ClearinghouseError):
    """The IMAP door cannot use its mailbox: connection, login or TLS verification failed."""


class DeliveryError(ClearinghouseError):
    """An outgoing message could not be handed over; the outbox retries it later.

    `permanent` is set when the relay answered with a 5xx for this message or
    recipient, so that retrying cannot help.
    """

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent
