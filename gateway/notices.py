"""Whether a refusal or notice is sent to a team: once per identical content, and at
most `[policy] max_notices_per_team_per_hour` of them an hour.

In: the processing transaction's session, the policy, the message and the team, the
kind of reply and the hash of the signed content. Out: None (send it) or a note for the
admin saying why it was withheld (it lands in the message's detail).

Why: a team's public clearsigned text, rebuilt as multipart/signed and encrypted to the
gateway by anyone, is that team's signed content; each copy got a signed rejection
mailed to the team, and each replay of a ciphertext a duplicate notice. Receipts are
never withheld: a stored report is always confirmed.
"""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session

from contract.codes import MailKind
from gateway.config import PolicyConfig
from store.models import Team, utcnow
from store.notices import answered_before, notices_since
from store.registry import TeamRow

LIMITED = frozenset(
    {
        MailKind.REJECTION,
        MailKind.DUPLICATE,
        MailKind.QUARANTINE,
        MailKind.COMMAND,
        MailKind.COMMAND_ERROR,
    }
)


def withheld(
    s: Session,
    policy: PolicyConfig,
    message_id: int,
    team: Team | TeamRow,
    kind: MailKind,
    content_sha256: str | None,
) -> str | None:
    """Why the `kind` reply to `team` for this message is not sent; None: send it."""
    if kind not in LIMITED:
        return None
    if content_sha256 is not None:
        earlier = answered_before(s, team.id or 0, content_sha256, kind, message_id)
        if earlier is not None:
            return f"no {kind} sent: the same signed content was answered for message {earlier}"
    limit = policy.max_notices_per_team_per_hour
    if limit:
        sent = notices_since(s, team.email, LIMITED, utcnow() - timedelta(hours=1))
        if sent >= limit:
            return (
                f"no {kind} sent: {sent} notices to {team.handle} in the last hour "
                "([policy] max_notices_per_team_per_hour)"
            )
    return None
