"""Named students: a signed-in person's identity is derived from the provider's issuer and subject with the server's
key (never the subject or the email themselves), their name is checked as a typed one is, and the app, headless
(AppTest, whose st.user a test seeds as Streamlit's own sign-in fills it), treats a signed-in person as that login:
their runs, the board's name, the Sign out button; where the host requires sign-in, nothing else draws.
The sign-in itself, against a real provider in Chromium, is tests/e2e/test_signin_browser.py."""
from __future__ import annotations

import stat
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.helpers import save_owned_run
from ui.cookie import valid
from vae_core.runs.logins import KEY_FILE, login_name, login_secret, sign_in_key
from vae_core.runs.names import owner_key, read_names

ROOT = Path(__file__).resolve().parents[1]
ISSUER, SUBJECT, EMAIL = "https://id.school.example", "248289761001", "ada.lovelace@school.example"
AUTH = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32, "client_id": "vae-lab",
        "client_secret": "s", "server_metadata_url": f"{ISSUER}/.well-known/openid-configuration"}
ADA = {"is_logged_in": True, "iss": ISSUER, "sub": SUBJECT, "name": "Ada Lovelace", "email": EMAIL}


def test_a_login_secret_is_stable_per_person_and_hides_who_it_is(tmp_path):
    key = sign_in_key(tmp_path)
    secret = login_secret(key, ISSUER, SUBJECT)
    assert secret == login_secret(sign_in_key(tmp_path), ISSUER, SUBJECT)  # the key is read back, not remade
    assert valid(secret)  # the shape of a browser's cookie secret: everything downstream takes it alike
    others = {login_secret(key, ISSUER, "248289761002"), login_secret(key, "https://other.example", SUBJECT),
              login_secret(bytes(32), ISSUER, SUBJECT)}
    assert secret not in others and len(others) == 3
    assert SUBJECT not in secret and "ada" not in secret.lower()
    path = tmp_path / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and SUBJECT not in path.read_text()


def test_a_damaged_key_file_is_refused_saying_what_to_do(tmp_path):
    (tmp_path / KEY_FILE).write_text("abcd")
    with pytest.raises(ValueError, match="32-byte key: delete it"):
        sign_in_key(tmp_path)


@pytest.mark.parametrize("name, email, shown", [("Ada Lovelace", EMAIL, "Ada Lovelace"),
                                                ("José Müller-Ortega", None, "José Müller-Ortega"),
                                                ("A" * 40, EMAIL, "ada.lovelace"),  # too long: the email's part
                                                ("<b>Ada</b>", "ada@x.org", "ada"),
                                                (None, "grace@school.example", "grace"),
                                                ("anonymous brisk otter", None, None),  # the board's own words
                                                (None, "not an email!", None), (None, None, None)])
def test_a_login_name_is_checked_like_a_typed_one(name, email, shown):
    assert login_name(name, email) == shown


def open_app(user: dict, sign_in: str | None, monkeypatch, page: str | None = None) -> AppTest:
    if sign_in:
        monkeypatch.setenv("VAE_LAB_SIGN_IN", sign_in)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.secrets["auth"] = AUTH
    at.user = user
    at.session_state["client_token"] = "browser-a-secret-0123456789"  # ui.session.TOKEN_KEY: the browser's own
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def buttons(at: AppTest) -> set[str]:
    return {b.label for b in at.sidebar.button}


def test_signed_in_the_person_is_their_login_and_the_board_shows_their_name(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    monkeypatch.setenv("VAE_LAB_RUNS", str(runs))
    secret = login_secret(sign_in_key(runs), ISSUER, SUBJECT)
    save_owned_run(runs, "20250101-120000-sprites-unit-sigmoid-bernoulli-adas", secret, steps=500)
    at = open_app(ADA, None, monkeypatch, "app_pages/board.py")
    assert "Sign out" in buttons(at) and "Sign in" not in buttons(at)
    assert any("Signed in as **Ada Lovelace**" in m.value for m in at.sidebar.markdown)
    assert any(label.startswith("you ") for label in at.sidebar.selectbox(key="model_choice").options)
    assert read_names(runs) == {owner_key(secret): "Ada Lovelace"}
    assert not any(t.key == "board_name" for t in at.text_input)  # no typed name beside the provider's
    assert any("the name you signed in with" in c.value for c in at.main.caption)
    assert EMAIL not in (runs / ".names.json").read_text() and SUBJECT not in (runs / ".names.json").read_text()


def test_signed_out_a_sign_in_button_and_the_browser_s_own_identity(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_LAB_RUNS", str(tmp_path / "runs"))
    at = open_app({"is_logged_in": False}, None, monkeypatch)
    assert "Sign in" in buttons(at) and "Sign out" not in buttons(at)
    assert at.session_state["client_token"] == "browser-a-secret-0123456789"


def test_off_or_without_a_provider_nothing_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_LAB_RUNS", str(tmp_path / "runs"))
    at = open_app(ADA, "off", monkeypatch)
    assert not {"Sign in", "Sign out"} & buttons(at)
    assert at.session_state["client_token"] == "browser-a-secret-0123456789"  # the login is ignored


@pytest.mark.parametrize("auth, words", [(True, "sign in to train"), (False, "no `[auth]` section")])
def test_required_sign_in_shows_nothing_else_until_then(auth, words, tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_LAB_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("VAE_LAB_SIGN_IN", "required")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    if auth:
        at.secrets["auth"] = AUTH
    at.user = {"is_logged_in": False} if auth else {}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    said = " ".join(e.value for e in [*at.info, *at.error])
    assert words in said
    assert [b.label for b in at.button] == (["Sign in"] if auth else [])
    assert not at.sidebar.selectbox and not at.main.markdown  # no picker, no page
