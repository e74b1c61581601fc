"""The demo: the daemon plus the SMA bot on real EUR/USD bars, end to end.

1. start ``tradelog serve`` on a fresh database under ``.demo/``;
2. run the bot over the bars (progress bar), through the socket;
3. print what the account, the instrument and the strategy are, the open positions, the
   last closed trades (with what the bot put in their ``attrs``), the balance and the
   daily stats;
4. stop the daemon with SIGTERM, start it again, print the same state, and check that
   nothing changed across the restart;
5. run ``tradelog verify`` on the file, and stop the daemon.

    python -m examples.demo [--bars N] [--dir PATH]

``$DEMO_BARS`` also limits the bars (CI runs a shortened file).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from daemon.client import Client
from daemon.process import ServeProcess
from examples.common import show as show_view
from examples.sma_bot import ACCOUNT, DATA, read_bars, run

console = Console()


def start_daemon(directory: Path) -> ServeProcess:
    """Start ``tradelog serve`` on ``directory`` and wait for its READY=1."""
    daemon = ServeProcess(directory / "tradelog.db", directory / "tradelog.sock",
                          directory / "daemon.log")
    try:
        daemon.start()
    except (RuntimeError, TimeoutError) as exc:
        raise SystemExit(f"the daemon did not start: {exc}") from None
    return daemon


def stop_daemon(daemon: ServeProcess) -> int:
    return daemon.stop(signal.SIGTERM)


def snapshot(sock: Path) -> dict[str, Any]:
    """The state a trader looks at: what the account, instrument and strategy are,
    positions, last trades, balance, daily stats."""
    with Client(sock) as client:
        return {
            "accounts": client.query("accounts", account=ACCOUNT),
            "instruments": client.query("instruments", account=ACCOUNT),
            "strategies": client.query("strategies", account=ACCOUNT),
            "positions": client.query("positions", account=ACCOUNT),
            "trades": client.query("trades", account=ACCOUNT, limit=5),
            "balances": client.query("balances", account=ACCOUNT),
            "daily": client.query("daily", account=ACCOUNT, limit=5),
            "all_trades": client.query("trades", account=ACCOUNT, limit=1)["total"],
            "health": client.health()["last_seq"],
        }


COLUMNS = {
    "accounts": ["account", "kind", "currency", "name", "events"],
    "instruments": ["symbol", "asset_class", "venue", "currency", "tick_size", "lot_size",
                    "attrs"],
    "strategies": ["strategy", "signals", "parameters", "attrs"],
    "positions": ["symbol", "side", "quantity", "avg_price", "mark_price", "unrealized_pnl",
                  "realized_pnl", "opened_at"],
    "trades": ["side", "entry_price", "exit_price", "opened_at", "closed_at", "net_pnl",
               "exit_reason"],
    "trades_attrs": ["closed_at", "strategy", "asset_class", "attrs"],
    "balances": ["cash", "realized_pnl", "balance", "unrealized_pnl", "equity",
                 "open_positions"],
    "daily": ["date", "realized_pnl", "trades_closed", "wins", "losses", "fees", "loss_used",
              "daily_loss_limit", "limit_hit"],
}


def show(state: dict[str, Any], title: str) -> None:
    console.rule(title)
    for view, columns in COLUMNS.items():
        title = "what the bot put in the last trades' attrs" if view == "trades_attrs" \
            else view
        show_view(console, title, state[view.removesuffix("_attrs")], columns)
    console.print(f"closed round trips: {state['all_trades']}; events in the log: "
                  f"{state['health']}")


def main() -> int:
    parser = argparse.ArgumentParser(description="tradelog demo: daemon + SMA bot")
    parser.add_argument("--bars", type=int, default=int(os.environ.get("DEMO_BARS", "0")) or None)
    parser.add_argument("--dir", type=Path, default=Path(".demo"))
    args = parser.parse_args()
    directory: Path = args.dir.absolute()
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    sock = directory / "tradelog.sock"
    bars = read_bars(DATA, args.bars)

    console.print(f"[bold]1.[/] starting the daemon on {directory / 'tradelog.db'}")
    proc = start_daemon(directory)
    try:
        console.print(f"[bold]2.[/] running the SMA bot over {len(bars)} EUR/USD hourly bars "
                      f"({bars[0].time:%Y-%m-%d} to {bars[-1].time:%Y-%m-%d})")
        started = time.perf_counter()
        with Progress(TextColumn("bars"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console) as progress:
            task = progress.add_task("bars", total=len(bars))
            sent = run(sock, bars, lambda n: progress.update(task, completed=n))
        elapsed = time.perf_counter() - started
        console.print(f"   {sent} events sent in {elapsed:.1f} s")
        console.print("[bold]3.[/] the state, from the daemon's views")
        before = snapshot(sock)
        show(before, "state before restart")
        console.print("[bold]4.[/] stopping the daemon with SIGTERM, starting it again")
        code = stop_daemon(proc)
        console.print(f"   daemon exited with {code}")
        proc = start_daemon(directory)
        after = snapshot(sock)
        show(after, "state after restart")
        same = before == after
        console.print(f"   state after restart {'identical' if same else 'DIFFERENT'}: "
                      f"{'nothing lost' if same else 'something changed'}")
        console.print("[bold]5.[/] verifying the event log's hash chain")
        verified = subprocess.run(
            [sys.executable, "-m", "daemon.cli", "verify", "--db", str(directory / "tradelog.db")],
            check=False)
    finally:
        code = stop_daemon(proc)
        console.print(f"   daemon stopped (exit {code})")
    return 0 if same and verified.returncode == 0 and code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
