"""``python -m socketwire``: the command line of ``socketwire.cli`` (layer 3)."""

from __future__ import annotations

from socketwire.cli import main

__all__: list[str] = []

if __name__ == "__main__":
    raise SystemExit(main())
