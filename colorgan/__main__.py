"""`python -m colorgan COMMAND ...`: the same as the installed `colorgan` command (see colorgan/commands)."""
from colorgan.commands import main

if __name__ == "__main__":
    raise SystemExit(main())
