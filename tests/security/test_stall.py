"""Decryption stall: no sender can hold gpg, or another team's report, for long.

The attack of issue 18: one 10 MB message of random PKESK packets addressed to the
gateway's encryption subkey cost gpg-agent one X25519 operation each (about 76,000),
and every authenticated message waited behind any older one in flight. Now the packet
headers are counted before gpg runs (keys/packets.py), every gpg process has a time
limit (keys/gpg_process.py), and arrival order is kept per sending domain only
(store/leases.py). Bounds are measured against a control run in the same test.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from hostile import binary_envelope, encryption_key_id, gpg, nested_layer, pkesk_flood
from pipeline_support import process, running_gateway, send, state_of, wait_final
from support import TYPE1, TYPE2, TeamClient, gpg_processes, with_changes

from gateway.app import App
from store.db import open_session
from store.spool import get_message

ATTACKER = "mallory@evil.example"
FLOOD_BYTES = 7_400_000  # binary: about 10 MB once base64-encoded in its MIME envelope
SLOWER_THAN_ANY_REPORT = 20  # the bound on a report's delay, in control runs


def junk_for_gateway(team: TeamClient) -> bytes:
    """A real (unsigned) message to the gateway: what follows the flood's key packets."""
    return gpg(team.gpg.home, "--recipient", team.gateway_fingerprint, "--encrypt", data=b"x")


def test_a_pkesk_flood_holds_no_other_teams_report(
    app: App, make_team: Callable[..., TeamClient]
) -> None:
    bravo = make_team("bravo")
    flood = binary_envelope(
        ATTACKER, pkesk_flood(encryption_key_id(app), FLOOD_BYTES, junk_for_gateway(bravo))
    )
    assert len(flood) > 9_900_000
    with running_gateway(app) as port:
        controls = []  # the slower of two, so that one lucky run sets no bound
        for report in (TYPE1, TYPE1.replace("1204", "1205")):
            start = time.monotonic()
            control_id = send(port, bravo.email, bravo.submit(report))
            controls.append(wait_final(app, control_id, since=start, within=300))
            assert state_of(app, control_id) == ("accepted", None)
        control = max(c for c in controls if c is not None)

        floods = [send(port, ATTACKER, flood) for _ in range(2)]
        start = time.monotonic()
        report_id = send(port, bravo.email, bravo.submit(TYPE2))
        delay = wait_final(app, report_id, since=start, within=SLOWER_THAN_ANY_REPORT * control)
        assert delay is not None, f"not accepted within {SLOWER_THAN_ANY_REPORT} x {control:.2f} s"
        assert state_of(app, report_id) == ("accepted", None)
        for flood_id in floods:
            assert wait_final(app, flood_id, since=time.monotonic(), within=60) is not None
            assert state_of(app, flood_id) == ("quarantined", "too-many-packets")


def test_arrival_order_is_kept_per_sending_domain_only(
    app: App, make_team: Callable[..., TeamClient]
) -> None:
    """With the packet limit lifted, a slow message of alpha's domain holds alpha's next
    report (order within the team) but not bravo's."""
    alpha, bravo = make_team("alpha"), make_team("bravo")
    slow_app = App(
        with_changes(app.config, limits={"max_key_packets": 10**6, "gpg_timeout_seconds": 6})
    )
    # 37,000 failed X25519 attempts before the key packet that works (in gpg's order): more
    # than a minute of gpg-agent's time with GnuPG 2.2, about 17 s with 2.4 (faster at
    # it), cut at the 6 s limit.
    slow = binary_envelope(
        alpha.email, pkesk_flood(encryption_key_id(app), FLOOD_BYTES, junk_for_gateway(alpha))
    )
    try:
        with running_gateway(slow_app) as port:
            slow_id = send(port, alpha.email, slow)
            alpha_id = send(port, alpha.email, alpha.submit(TYPE1))
            start = time.monotonic()
            bravo_id = send(port, bravo.email, bravo.submit(TYPE2))
            assert wait_final(slow_app, bravo_id, since=start, within=60) is not None
            assert state_of(slow_app, bravo_id) == ("accepted", None)
            assert state_of(slow_app, slow_id)[0] == "received", "bravo waited for alpha's"
            assert wait_final(slow_app, alpha_id, since=time.monotonic(), within=120)
        assert state_of(slow_app, slow_id) == ("quarantined", "gpg-timeout")
        assert state_of(slow_app, alpha_id) == ("accepted", None)
        with open_session(slow_app.engine) as s:
            slow_row, alpha_row = (get_message(s, i, raw=False) for i in (slow_id, alpha_id))
            assert slow_row is not None and alpha_row is not None
            assert slow_row.processed_at and alpha_row.processed_at
            assert slow_row.processed_at <= alpha_row.processed_at  # alpha's order kept
    finally:
        slow_app.engine.dispose()


def test_a_flood_inside_the_encryption_is_stopped_as_gpg_meets_it(
    app: App, team: TeamClient
) -> None:
    """Key packets inside the first layer cannot be counted without decrypting it: gpg
    meets them itself, reports each one, and is stopped past `max_key_packets`; with
    that limit lifted, `gpg_timeout_seconds` stops it."""
    inner = pkesk_flood(encryption_key_id(app), 2_000_000, junk_for_gateway(team))
    raw = binary_envelope(team.email, nested_layer(team, inner))
    assert process(app, raw) == ("quarantined", "too-many-packets")
    lifted = {"max_key_packets": 10**6, "gpg_timeout_seconds": 2}
    quick = App(with_changes(app.config, limits=lifted))
    try:
        assert process(quick, raw) == ("quarantined", "gpg-timeout")
    finally:
        quick.engine.dispose()
    assert gpg_processes(app.config.gnupg_home, "--decrypt") == []
