"""Signing in with the host's OpenID Connect provider, through Streamlit's own st.login (the `[auth]` section of
secrets.toml names the provider; VAE_LAB_SIGN_IN in vae_core/host.py says whether it is optional or required).

Signed in, the person's identity is a secret derived from the provider's issuer and subject
(vae_core/runs/logins.py), which ui/session.py's client_token() returns instead of the browser's cookie: their
runs, private space and job follow them to any browser, and the board shows the name the provider gave. Signed
out, or with no provider, each browser is its own anonymous person, as before.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from streamlit.errors import StreamlitAuthError

from vae_core.host import HostSettings, SignIn
from vae_core.runs.folders import default_runs_dir
from vae_core.runs.logins import login_name, login_secret, sign_in_key
from vae_core.runs.names import anonymous_name, owner_key, read_names, save_name

SIGN_IN_KEY, SIGN_OUT_KEY, GATE_KEY = "sign_in", "sign_out", "sign_in_gate"  # widget keys
NAME_SAVED_KEY = "sign_in_name_saved"  # session: the login whose name this session already put on the board
NO_PROVIDER = ("This server requires signing in (VAE_LAB_SIGN_IN=required), but Streamlit has no `[auth]` "
               "section in its secrets.toml, so there is no provider to sign in with. The host must add one (README, "
               "*Hosting a class*) or set VAE_LAB_SIGN_IN=optional.")
PLEASE_SIGN_IN = "This class's VAE Lab knows each person by name: sign in to train, compare and see the class board."


@dataclass(frozen=True)
class Login:
    """The person signed in to this session."""
    secret: str  # their identity (client_token), derived: never the provider's subject or email
    name: str | None  # what the board shows (checked like a typed name); None: their anonymous animal


def auth_configured() -> bool:
    """Whether Streamlit's secrets hold an `[auth]` section: a provider to sign in with."""
    return bool(st.secrets.load_if_toml_exists()) and "auth" in st.secrets


def sign_in_mode() -> SignIn:
    """The host's VAE_LAB_SIGN_IN, and "off" where no provider is configured."""
    mode = HostSettings.from_env().sign_in
    return mode if mode != "off" and auth_configured() else "off"


@st.cache_resource(show_spinner=False)
def load_sign_in_key(runs_dir: str) -> bytes:
    """Cached because it is the server's one key, the same for every session (never shown, never per person)."""
    return sign_in_key(Path(runs_dir))


def current_login() -> Login | None:
    """This session's signed-in person; None when signed out, when sign-in is off, or in AppTest."""
    user = st.user
    issuer, subject = user.get("iss"), user.get("sub")
    if not user.get("is_logged_in") or not (isinstance(issuer, str) and isinstance(subject, str) and subject):
        return None
    if sign_in_mode() == "off":
        return None
    secret = login_secret(load_sign_in_key(str(default_runs_dir())), issuer, subject)
    return Login(secret, login_name(user.get("name"), user.get("email")))


def shown_name(login: Login) -> str:
    """What the board and the sidebar call this person."""
    return login.name or anonymous_name(owner_key(login.secret))


def _remember_name(login: Login) -> None:
    """Once a session: the board shows the provider's name for this login (kept as typed names are)."""
    if login.name is None or st.session_state.get(NAME_SAVED_KEY) == login.secret:
        return
    runs_dir, key = default_runs_dir(), owner_key(login.secret)
    if read_names(runs_dir).get(key) != login.name:
        save_name(runs_dir, key, login.name)
    st.session_state[NAME_SAVED_KEY] = login.secret


def _login_button(key: str, kind: str = "secondary") -> None:
    if st.button("Sign in", key=key, icon=":material/login:", type=kind,
                 help="With your school account: your runs are labelled with your name and follow you to any "
                      "browser."):
        try:
            st.login()
        except StreamlitAuthError as exc:
            st.error(f"Signing in is misconfigured on this server: {exc} The host must fix the `[auth]` section "
                     "of secrets.toml.")


def sign_in_ui() -> None:
    """The sidebar's Sign in button, or who is signed in and a Sign out button; nothing where sign-in is off."""
    if sign_in_mode() == "off":
        return
    login = current_login()
    with st.sidebar:
        if login is None:
            _login_button(SIGN_IN_KEY)
            return
        _remember_name(login)
        st.markdown(f"Signed in as **{shown_name(login).replace('_', chr(92) + '_')}**")
        if st.button("Sign out", key=SIGN_OUT_KEY, icon=":material/logout:",
                     help="Back to this browser's anonymous identity; your runs stay yours for when you sign in."):
            st.logout()


def sign_in_gate_ui() -> None:
    """Where the host requires sign-in: a signed-out browser sees a Sign in button and nothing else."""
    if HostSettings.from_env().sign_in != "required" or current_login() is not None:
        return
    if not auth_configured():
        st.error(NO_PROVIDER, icon=":material/error:")
    else:
        st.info(PLEASE_SIGN_IN, icon=":material/login:")
        _login_button(GATE_KEY, "primary")
    st.stop()
