#!/usr/bin/env bash
# One command: set up .venv, then run the daemon and the SMA bot on real EUR/USD bars,
# and print what to try next (examples/next_steps.sh). From a terminal it then serves
# the dashboard on the demo's data until Ctrl-C ($DEMO_HTTP sets the address, default
# 127.0.0.1:8787); without one it exits.
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
if [ "$status" != 0 ] || [ ! -f "$dir/tradelog.db" ]; then
  exit "$status"
fi
bash examples/next_steps.sh "$dir" .venv/bin/tradelog
if [ ! -t 1 ]; then
  exit 0
fi
listen=${DEMO_HTTP:-127.0.0.1:8787}
log="${dir}/daemon-http.log"
.venv/bin/python -m daemon.cli serve --db "${dir}/tradelog.db" \
  --socket "${dir}/tradelog.sock" --http "${listen}" >>"${log}" 2>&1 &
pid=$!
trap 'kill -TERM "${pid}" 2>/dev/null || true' INT TERM
until .venv/bin/python -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
    "http://${listen}/api/v1/ping" 2>/dev/null; do
  if ! kill -0 "${pid}" 2>/dev/null; then
    echo "the dashboard's daemon did not start:" >&2
    tail -5 "${log}" >&2
    exit 1
  fi
  sleep 0.2
done
echo
echo "Dashboard: http://${listen}/   (the demo's data, live; Ctrl-C to stop)"
echo "API:       http://${listen}/api/v1/openapi.json   (daemon log: ${log})"
code=0
wait "${pid}" || code=$?
if [ "${code}" -gt 128 ]; then  # interrupted by Ctrl-C: the daemon is draining
  code=0
  wait "${pid}" || code=$?
fi
echo "dashboard stopped (daemon exit ${code})"
exit "${code}"
