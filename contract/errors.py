"""The project's one exception tree: what may be raised, and the exit status it means.

Expected outcomes are not exceptions: a message that fails authentication or a report
that fails validation becomes a verdict with a stable reason code. Exceptions are for
broken configuration, broken infrastructure and bugs. The CLI turns a
`ClearinghouseError` into its `exit_code` and a one-line message; anything else is a bug
and gets a traceback.

    Exception
     └── ClearinghouseError      exit 1: something failed
          ├── UsageError         exit 2: how a command was called: an option's value, a
          │    │                 file or key given to it that cannot be used as given
          │    └── ConfigError   exit 2: the configuration file or a value in it
          │         └── TaxonomyError  a taxonomy file (shipped or `[taxonomy]
          │                       extra_file`) or the canonical taxonomy is not usable
          ├── StorageError       exit 75 (EX_TEMPFAIL): could not store; `ingest` exits
          │                      with it so that the MTA keeps the message and retries
          ├── SetupError         exit 1: the gateway cannot run here yet: its data
          │                      directory or database is missing, unreachable, or at
          │                      another schema version (the message says which, and
          │                      what to do: `init`, `db upgrade`, the server's address)
          ├── GnuPGError         exit 1: the gpg binary, agent or home directory is broken
          ├── RegistryError      exit 1: a registry change was refused (unknown team,
          │                      key bound to another team, secret key offered, ...)
          │    └── DirectoryError  a Trusted Introducer directory file is unusable, or
          │                        a sync from it was refused (`teams sync`)
          ├── ImapError          exit 1: the IMAP mailbox cannot be used (unreachable,
          │                      login refused, TLS certificate not trusted)
          ├── DeliveryError      exit 1: an outbound transport failed; transient unless
          │                      `permanent` says the relay refused it for good
          └── LeaseLostError     exit 1: a worker finishing a message or an outbox entry
                                 no longer holds its lease (it expired; another worker
                                 took it over): its transaction is rolled back

Messages are meant for the operator's terminal and logs. They never carry secrets
(passwords, passphrases, key material) and are never shown to a mail sender.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "ClearinghouseError",
    "ConfigError",
    "DeliveryError",
    "DirectoryError",
    "GnuPGError",
    "ImapError",
    "LeaseLostError",
    "RegistryError",
    "SetupError",
    "StorageError",
    "TaxonomyError",
    "UsageError",
]


class ClearinghouseError(Exception):
    """Base of every error the project raises on purpose."""

    exit_code: ClassVar[int] = 1


class UsageError(ClearinghouseError):
    """A command was called with something it cannot use; the message says what to give."""

    # 2, like click's usage errors, so one exit status means "fix how you called it".
    exit_code: ClassVar[int] = 2


class ConfigError(UsageError):
    """The configuration file or a value in it is unusable."""


class TaxonomyError(ConfigError):
    """A taxonomy file or the canonical taxonomy named is not usable; the message says where."""


class StorageError(ClearinghouseError):
    """A message or record could not be stored durably; nothing was acknowledged."""

    exit_code: ClassVar[int] = 75  # os.EX_TEMPFAIL, spelled out: os lacks it on Windows


class SetupError(ClearinghouseError):
    """The data directory or the database is not ready for this command; nothing changed."""


class GnuPGError(ClearinghouseError):
    """GnuPG itself failed (binary missing, agent dead, home unusable), not a signature."""


class RegistryError(ClearinghouseError):
    """An admin's registry or keyring change was refused; the message says what to do."""


class DirectoryError(RegistryError):
    """The TI directory file (`teams sync --ti`) is unusable, or the sync was refused."""


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


class LeaseLostError(ClearinghouseError):
    """The worker finishing a message (or an outbox entry) no longer holds its lease."""
