"""`confbot check` on the Canvas developer key: key, redirect URI and scopes, against the sandbox Canvas.

What an operator sees before any student meets the authorize page: whether Canvas knows the key, whether
its Redirect URIs include PUBLIC_BASE_URL/canvas/oauth/callback, which scopes it does not grant, and with
a test token (`--canvas-token`) one line per scope the bot needs, the token itself never printed.
"""

from __future__ import annotations

import pytest

from bot.canvas.scopes import SCOPE_NAMES
from bot.store.db import upgrade
from tests.integration.test_check import check, line
from tests.support import CanvasWorld

CLIENT_ID, SECRET = "10000000000077", "key-secret-for-check"
PUBLIC = "https://confbot.example.edu"
GROUP_CONFERENCES = "url:GET|/api/v1/groups/:group_id/conferences"


def key_env(env: dict[str, str]) -> dict[str, str]:
    return {**env, "CANVAS_CLIENT_ID": CLIENT_ID, "CANVAS_CLIENT_SECRET": SECRET, "PUBLIC_BASE_URL": PUBLIC}


def developer_key(
    canvas: CanvasWorld, scopes: list[str], redirect_uri: str = PUBLIC + "/canvas/oauth/callback"
) -> None:
    canvas.canvas.post(
        "/_sandbox/developer_keys",
        {
            "client_id": CLIENT_ID,
            "client_secret": SECRET,
            "redirect_uri": redirect_uri,
            "scopes": scopes,
            "require_scopes": True,
        },
    )


def scope_lines(lines: list[str]) -> list[str]:
    return [item for item in lines if item.split(":", 1)[0].split(None, 1)[-1] == "canvas scope"]


def test_a_key_with_every_scope_and_the_right_redirect_uri_is_ok(
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    canvas: CanvasWorld,
) -> None:
    upgrade(env["DATABASE_URL"])
    developer_key(canvas, list(SCOPE_NAMES))

    code, lines = check(monkeypatch, key_env(env))

    assert code == 0, "\n".join(lines)
    key_line = line(lines, "canvas key")
    assert key_line.startswith("ok") and PUBLIC + "/canvas/oauth/callback" in key_line
    assert "--canvas-token" in key_line  # the hint to prove each scope


@pytest.mark.parametrize(
    ("scopes", "redirect_uri", "client_id", "scopes_setting", "expected"),
    [
        (list(SCOPE_NAMES), "https://elsewhere.example.edu/cb", CLIENT_ID, "on",
         "Redirect URIs do not include https://confbot.example.edu/canvas/oauth/callback"),
        (list(SCOPE_NAMES), PUBLIC + "/canvas/oauth/callback", "10000000000099", "on",
         "Canvas does not know developer key 10000000000099"),
        ([s for s in SCOPE_NAMES if s != GROUP_CONFERENCES], PUBLIC + "/canvas/oauth/callback", CLIENT_ID,
         "on",
         f"does not grant {GROUP_CONFERENCES}; tick Canvas > Admin > Developer Keys"),
        (list(SCOPE_NAMES), PUBLIC + "/canvas/oauth/callback", CLIENT_ID, "off",
         "enforces scopes but CANVAS_SCOPES is off"),
    ],
    ids=["redirect-uri", "unknown-key", "missing-scope", "scopes-off"],
)  # fmt: skip
def test_a_wrong_key_is_named_with_its_fix(
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    canvas: CanvasWorld,
    scopes: list[str],
    redirect_uri: str,
    client_id: str,
    scopes_setting: str,
    expected: str,
) -> None:
    developer_key(canvas, scopes, redirect_uri)
    settings = {**key_env(env), "CANVAS_CLIENT_ID": client_id, "CANVAS_SCOPES": scopes_setting}

    code, lines = check(monkeypatch, settings)

    assert code == 1
    key_line = line(lines, "canvas key")
    assert key_line.startswith("FAIL") and expected in key_line, key_line


def test_a_test_token_proves_each_scope_and_names_the_missing_one(
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    canvas: CanvasWorld,
) -> None:
    upgrade(env["DATABASE_URL"])
    developer_key(canvas, list(SCOPE_NAMES))
    ada = canvas.user("Ada")
    full = canvas.canvas.post(
        "/_sandbox/tokens", {"user_id": ada["id"], "client_id": CLIENT_ID, "scopes": list(SCOPE_NAMES)}
    )["token"]
    short = [s for s in SCOPE_NAMES if s != GROUP_CONFERENCES]
    lacking = canvas.canvas.post(
        "/_sandbox/tokens", {"user_id": ada["id"], "client_id": CLIENT_ID, "scopes": short}
    )["token"]

    code, lines = check(monkeypatch, key_env(env), full)
    assert code == 0, "\n".join(lines)
    assert [item.split(": ", 1)[1] for item in scope_lines(lines)] == [f"{s} granted" for s in SCOPE_NAMES]

    code, lines = check(monkeypatch, key_env(env), lacking)
    assert code == 1
    failed = [item for item in scope_lines(lines) if item.startswith("FAIL")]
    assert len(scope_lines(lines)) == len(SCOPE_NAMES) and len(failed) == 1
    assert f"{GROUP_CONFERENCES} is missing; tick it at Canvas > Admin > Developer Keys" in failed[0]
    assert "Conferences > " + GROUP_CONFERENCES in failed[0]
    assert full not in "\n".join(lines) and lacking not in "\n".join(lines)


def test_a_refused_test_token_is_one_line(
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    canvas: CanvasWorld,
) -> None:
    code, lines = check(monkeypatch, env, "1~not-a-token-canvas-knows")

    assert code == 1
    assert line(lines, "canvas token").startswith("FAIL  canvas token: Canvas refused the test token (401)")
    assert scope_lines(lines) == []
    assert "not-a-token-canvas-knows" not in "\n".join(lines)
