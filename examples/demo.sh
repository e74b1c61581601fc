#!/usr/bin/env bash
# One command: set up .venv, then run the daemon and the SMA bot on real EUR/USD bars.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup
exec .venv/bin/python -m examples.demo "$@"
