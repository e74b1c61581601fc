"""``python -m bench.faults SCRIPT [ARGS]``: run one fault script (killloop, diskfull, fuzz,
hostile, pg_failover)."""

from __future__ import annotations

import sys

from bench.faults import diskfull, fuzz, hostile, killloop, pg_failover

SCRIPTS = {"killloop": killloop.main, "diskfull": diskfull.main, "fuzz": fuzz.main,
           "hostile": hostile.main, "pg_failover": pg_failover.main}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] not in SCRIPTS:
        print(f"usage: python -m bench.faults {{{','.join(SCRIPTS)}}} [ARGS]; --help on each",
              file=sys.stderr)
        return 2
    return SCRIPTS[args[0]](args[1:])


if __name__ == "__main__":
    sys.exit(main())
