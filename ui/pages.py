"""The app's pages, one table: the navigation draws it, and every link or switch to a page reads its entry.

The pages live in app_pages/, not pages/: Streamlit treats a folder named pages/ as old-style pages until
st.navigation runs, so a fresh server's first request for a page URL would bypass app.py.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageInfo:
    path: str  # the page script, from the repository root
    title: str
    icon: str  # drawn with the font Streamlit serves itself: offline

    @property
    def url_path(self) -> str:
        """"train" for app_pages/train.py: what st.navigation names it in the address."""
        return self.path.rsplit("/", 1)[-1].removesuffix(".py")


RECONSTRUCTIONS = PageInfo("app_pages/reconstructions.py", "Reconstructions", ":material/compare:")
LATENT = PageInfo("app_pages/latent.py", "Latent space", ":material/explore:")
DIAGNOSTICS = PageInfo("app_pages/diagnostics.py", "Diagnostics", ":material/troubleshoot:")
COMPARE = PageInfo("app_pages/compare.py", "Compare", ":material/view_column:")
IMAGES = PageInfo("app_pages/images.py", "Your data", ":material/upload_file:")  # the URL stays /images
TRAIN = PageInfo("app_pages/train.py", "Train", ":material/model_training:")
LABS = PageInfo("app_pages/labs.py", "Labs", ":material/science:")
BOARD = PageInfo("app_pages/board.py", "Class board", ":material/leaderboard:")
PAGES = (RECONSTRUCTIONS, LATENT, DIAGNOSTICS, COMPARE, IMAGES, TRAIN, LABS, BOARD)  # in the sidebar's order; the first opens
