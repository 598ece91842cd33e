"""VAE Lab: streamlit run app.py

This file has two roles. `streamlit run app.py` finds the `app = st.App(...)` assignment below (Streamlit
reads this file's syntax tree, streamlit/web/server/app_discovery.py), imports this file as a module
(`__name__ != "__main__"`) and serves that app with uvicorn (streamlit/web/bootstrap.py, run_asgi_app): the
app carries our middleware, which gives every browser its identity cookie (ui/cookie.py). Each browser
session then runs this same file as its script, with `__name__ == "__main__"` (so does AppTest): that run
draws the app (ui/main.py).
"""
import streamlit as st

if __name__ == "__main__":
    from ui.main import main

    main()
else:
    from ui.cookie import identity_middleware

    app = st.App(__file__, middleware=identity_middleware())
