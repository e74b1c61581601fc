#!/usr/bin/env bash
# One command: set up .venv, then run the daemon and the SMA bot on real EUR/USD bars,
# and end with what to try next (examples/next_steps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup
dir=.demo
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case ${args[i]} in
    --dir) dir=${args[i + 1]:-$dir} ;;
    --dir=*) dir=${args[i]#--dir=} ;;
  esac
done
status=0
.venv/bin/python -m examples.demo "$@" || status=$?
if [ "$status" = 0 ] && [ -f "$dir/tradelog.db" ]; then
  bash examples/next_steps.sh "$dir" .venv/bin/tradelog
fi
exit "$status"
