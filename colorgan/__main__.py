"""`python -m colorgan COMMAND ...`: the same as the installed `colorgan` command (see colorgan/commands)."""
from .commands import main

if __name__ == "__main__":
    raise SystemExit(main())
