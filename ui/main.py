"""The VAE Lab page script: every browser session runs main() (app.py calls it as the session's script)."""


def main() -> None:
    """One run of the app for one browser session: pages, navigation, sidebar."""
    # Imports here, not at the top: ui/preload.py imports every ui module, this one included, so a top-level
    # `import ui.preload` would close a circle through it.
    import streamlit as st

    # First, before any page code: imports everything pages use, once, under this module's import lock (a
    # lazy import raced between the sessions of a fresh server; see ui/preload.py).
    import ui.preload  # noqa: F401  (imported for its side effect)
    from ui.jobs import busy_spaces, job_sidebar_ui, scheduler_ui
    from ui.pages import LABS, PAGES, TRAIN
    from ui.present import link_view, present_switch_ui, view_style_ui
    from ui.session import identity_ui
    from ui.signin import sign_in_gate_ui, sign_in_ui
    from ui.sidebar import model_sidebar_ui, share_ui
    from ui.state import configure_torch, notices_ui
    from ui.space import keep_alive

    SIDEBAR_PX = 380  # wide enough for a run's label: whose, when, activation/normalization/likelihood

    # An emoji icon: the browser draws it locally. A ":material/...:" page icon is fetched from fonts.gstatic.com
    # (Streamlit's frontend builds the favicon URL from the icon's name), and VAE Lab must work offline.
    view = link_view()  # present= and hide=, put back where a page change dropped them
    st.set_page_config(page_title="VAE Lab", page_icon="🧪", layout="wide",
                       initial_sidebar_state="collapsed" if view.present else SIDEBAR_PX)
    view_style_ui(view)
    configure_torch()
    if not scheduler_ui():  # once per server (cached): clears what a crash left half-written before anyone trains
        st.stop()  # the host's Redis is unreachable: the message says what to check

    pages = [st.Page(p.path, title=p.title, icon=p.icon, default=p is PAGES[0]) for p in PAGES]
    WATCHING = (TRAIN.url_path, LABS.url_path)  # pages that poll this browser's job themselves
    page = st.navigation(pages)
    identity_ui()  # before anything asks who this browser is: drops an old link's u= (see ui/session.py)
    sign_in_gate_ui()  # where the host requires a name, nothing else draws until the person signs in
    sign_in_ui()
    # First: a job that just ended changes the loaded model (a sweep watched on Train opens in Compare).
    job_sidebar_ui(poll=page.url_path not in WATCHING, opens_compare=page.url_path == TRAIN.url_path)
    model_sidebar_ui()
    present_switch_ui(view)
    keep_alive(busy_spaces)  # this browser still uses its private space; spaces unused for the host's stated time go
    notices_ui()
    page.run()
    share_ui()
