"""Each page's parts, named as its page in app_pages/ (the plumbing they share is in ui/ itself)."""
