"""OAuth state: forged, tampered and expired states are refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.engine.oauth_state import STATE_TTL, StateError, StateSigner

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)


def test_round_trip_binds_team_and_user() -> None:
    signer = StateSigner(b"secret")
    state, claims = signer.issue("T1", "U1", NOW)
    verified = signer.verify(state, NOW + timedelta(minutes=1))
    assert (verified.team_id, verified.slack_user_id, verified.nonce) == ("T1", "U1", claims.nonce)


def test_other_key_or_tampering_is_rejected() -> None:
    state, _ = StateSigner(b"secret").issue("T1", "U1", NOW)
    with pytest.raises(StateError, match="not valid"):
        StateSigner(b"other").verify(state, NOW)
    body, _, signature = state.partition(".")
    with pytest.raises(StateError, match="not valid"):
        StateSigner(b"secret").verify(body[:-2] + "xx." + signature, NOW)
    with pytest.raises(StateError, match="not valid"):
        StateSigner(b"secret").verify("garbage", NOW)


def test_expired_state_is_rejected() -> None:
    signer = StateSigner(b"secret")
    state, _ = signer.issue("T1", "U1", NOW)
    with pytest.raises(StateError, match="expired"):
        signer.verify(state, NOW + STATE_TTL + timedelta(seconds=1))


def test_bind_keeps_the_claims_and_adds_a_fresh_browser_nonce() -> None:
    signer = StateSigner(b"secret")
    state, claims = signer.issue("T1", "U1", NOW)
    assert signer.verify(state, NOW).browser is None
    bound, browser = signer.bind(claims)
    again, other_browser = signer.bind(claims)
    verified = signer.verify(bound, NOW)
    assert (verified.nonce, verified.team_id, verified.slack_user_id) == (claims.nonce, "T1", "U1")
    assert verified.browser == browser and browser != other_browser
    assert signer.verify(again, NOW).browser == other_browser
    with pytest.raises(StateError, match="not valid"):
        StateSigner(b"other").verify(bound, NOW)
