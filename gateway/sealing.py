"""Seal one outgoing mail as the gateway: From the gateway address, signed by its key.

Every reply, statistics mail and reminder goes through here, so that the sender, the
signing key, the protected headers and the recipient-by-fingerprint rule are decided in
one place. Queuing it is the caller's business (in its own transaction).
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.app import App
from keys.wrap import Attachment, Envelope, new_message_id, seal


def seal_from_gateway(
    app: App,
    recipient: str,
    key_fingerprint: str,
    subject: str,
    body: str,
    attachments: Sequence[Attachment] = (),
) -> bytes:
    """Signed by the gateway key, encrypted to `key_fingerprint`, addressed to `recipient`."""
    sender = app.config.clearinghouse.gateway_address
    env = Envelope(
        sender, recipient, subject, app.clock(), new_message_id(sender.rpartition("@")[2])
    )
    return seal(
        app.gpg,
        env,
        body,
        recipient_fingerprints=[key_fingerprint],
        signer=app.identity.fingerprint,
        passphrase=app.identity.passphrase,
        attachments=attachments,
    )
