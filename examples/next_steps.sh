#!/usr/bin/env bash
# What to try after the demo: writes the demo's HTML report, then prints the commands to
# run next, each ready to paste (the daemon is stopped: they read the file read-only).
#   bash examples/next_steps.sh DEMO_DIR [TRADELOG_COMMAND]
set -euo pipefail
dir=$(cd "$1" && pwd)
tl=${2:-.venv/bin/tradelog}
db=$dir/tradelog.db
q() { printf '%q' "$1"; }
echo
echo "== what to try next (the demo's database stays in $db)"
if "$tl" report --db "$db" --html "$dir/report.html" >/dev/null 2>&1; then
  echo "  xdg-open $(q "$dir/report.html")   # the performance report: equity, drawdown, monthly P&L"
fi
echo "  $tl report --db $(q "$db")   # the same figures as tables (--json for JSON)"
echo "  $tl show trades --db $(q "$db") --limit 10   # the last closed round trips"
echo "  $tl show balances --db $(q "$db") --format json"
echo "  sqlite3 -readonly $(q "$db") 'SELECT date, realized_pnl, trades_closed FROM daily ORDER BY date DESC LIMIT 5'"
echo "  $tl serve --db $(q "$db") --http 127.0.0.1:8787   # the live dashboard at http://127.0.0.1:8787/ (docs/HTTP.md)"
echo "  $tl serve --db $(q "$db")   # the daemon again, for a bot of your own (examples/sma_bot.py)"
echo "  $tl --help   # every command; docs/CLI.md has every option and exit code"
