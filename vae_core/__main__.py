import sys

from vae_core.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
