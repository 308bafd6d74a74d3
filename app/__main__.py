"""`python -m app <command>`: the commands live in app/cli/commands.py."""

import sys

from app.cli.commands import main

if __name__ == "__main__":
    sys.exit(main())
