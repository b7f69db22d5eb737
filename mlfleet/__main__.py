"""``python -m mlfleet``: the ``mlfleet`` command (what MLproject's entry points run)."""

from mlfleet.cli import main

if __name__ == "__main__":
    main()
