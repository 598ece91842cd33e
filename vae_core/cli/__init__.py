"""python -m vae_core <command>: the terminal front end."""
