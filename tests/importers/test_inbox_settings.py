"""Per-folder inbox settings (``.tradelog.toml``), through the real daemon's inbox."""

from __future__ import annotations

import os
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from daemon.client import Client
from daemon.importers.folder_settings import SettingsError, read_settings
from tests.importers.test_inbox import wait_for
from tests.support import DaemonProcess

DATA = Path(__file__).parents[1] / "data"
SETTLE = {"TRADELOG_INBOX_SETTLE_S": "0.3"}  # no inbox_quantity: folders say it


def test_folder_settings_give_quantity_mapping_and_refusals(tmp_path: Path) -> None:
    """With no inbox_quantity: a folder whose .tradelog.toml gives quantity imports the
    trades CSV (realized 936); one with a [map] imports the bot's trades_data.json; one
    with a mapping but no quantity, one with a mistake in its settings and one whose
    settings file is a link each send their file to failed/ with the reason; a renamed
    copy of an imported file stores nothing more."""
    inbox = tmp_path / "inbox"
    for name in ("csv", "ict", "noqty", "typo", "linked"):
        (inbox / name).mkdir(parents=True)
    (inbox / "csv" / ".tradelog.toml").write_text('quantity = "100000"\n')
    mapping = (DATA / "trades_data.map.toml").read_text()
    (inbox / "ict" / ".tradelog.toml").write_text(mapping.replace("[fields]", "[map.fields]")
                                                  .replace("[sides]", "[map.sides]")
                                                  .replace("[exit_reasons]",
                                                           "[map.exit_reasons]")
                                                  .replace("name =", "[map]\nname =", 1))
    no_quantity = mapping.replace('quantity = "positionSize"\n', "")
    (inbox / "noqty" / ".tradelog.toml").write_text(
        "[map]\n" + no_quantity.replace("[fields]", "[map.fields]")
        .replace("[sides]", "[map.sides]").replace("[exit_reasons]", "[map.exit_reasons]"))
    (inbox / "typo" / ".tradelog.toml").write_text('quantty = "1"\ntimezone = "Mars/Base"\n')
    os.symlink(inbox / "csv" / ".tradelog.toml", inbox / "linked" / ".tradelog.toml")
    with DaemonProcess(tmp_path, ["--inbox", str(inbox)], env=SETTLE) as daemon:
        shutil.copy(DATA / "trades.csv", inbox / "csv" / "trades.csv")
        shutil.copy(DATA / "trades_data.json", inbox / "ict" / "trades_data.json")
        for name in ("noqty", "typo", "linked"):
            shutil.copy(DATA / "trades_data.json", inbox / name / "trades_data.json")
        wait_for(lambda: len(list((inbox / "done").rglob("*.json*"))) == 1
                 and len(list((inbox / "done").rglob("*.csv"))) == 1
                 and len(list((inbox / "failed").rglob("*.error.txt"))) == 3)
        shutil.copy(DATA / "trades.csv", inbox / "csv" / "renamed.csv")
        wait_for((inbox / "done" / "csv" / "renamed.csv").exists)
        with Client(daemon.socket) as client:
            csv_balance = client.query("balances", account="csv")["rows"][0]
            ict_balance = client.query("balances", account="ict")["rows"][0]
            last_seq = client.health()["last_seq"]
            for name in ("noqty", "typo", "linked"):
                assert [] == client.query("balances", account=name)["rows"]
    assert Decimal(936) == Decimal(csv_balance["realized_pnl"])
    assert Decimal(936) == Decimal(ict_balance["realized_pnl"])
    assert 789 + 525 == last_seq  # the renamed copy stored nothing

    def note(name: str) -> str:
        return (inbox / "failed" / name / "trades_data.json.error.txt").read_text()

    assert "the mapping gives no quantity: map a field to quantity" in note("noqty")
    assert "quantty: Extra inputs are not permitted" in note("typo")
    assert "timezone: 'Mars/Base' is not an IANA time zone name" in note("typo")
    assert "the folder's .tradelog.toml is a symbolic link" in note("linked")


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another uid needs root")
def test_settings_of_another_user_are_not_taken(tmp_path: Path) -> None:
    """A .tradelog.toml owned by neither the daemon's user nor the file's owner is
    refused, naming its owner; owned by the file's owner it is taken."""
    settings = tmp_path / ".tradelog.toml"
    settings.write_text('quantity = "5"\n')
    os.chown(settings, 4242, 4242)
    folder = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(SettingsError, match="is owned by uid 4242, neither the daemon's"):
            read_settings(folder, file_owner=1000)
        os.chown(settings, 1000, 1000)
        assert Decimal(5) == read_settings(folder, file_owner=1000).quantity
    finally:
        os.close(folder)
