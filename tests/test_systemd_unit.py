"""The shipped systemd unit (newsbot.service): systemd accepts it, and it restarts newsbot
when a restart can help and only then, with nothing writable but the database folder."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from bot import config
from bot.cli.common import EXIT_USAGE

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "newsbot.service"
INSTALLED_AT = "/opt/newsbot"


def service() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys keep their case
    parser.read_string(UNIT.read_text())
    return parser["Service"]


def test_systemd_verifies_the_unit_without_a_warning(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze is not installed: CI verifies the unit with it")
        pytest.skip("systemd-analyze is not installed")
    # The unit as installed, moved into tmp_path: verify checks that ExecStart exists.
    installed = tmp_path / "opt"
    executable = installed / ".venv" / "bin" / "newsbot"
    executable.parent.mkdir(parents=True)
    executable.write_text("#!/bin/sh\n")
    executable.chmod(0o755)
    (installed / "data").mkdir()
    unit = tmp_path / "units" / "newsbot.service"
    unit.parent.mkdir()
    unit.write_text(UNIT.read_text().replace(INSTALLED_AT, str(installed)))

    verified = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, check=False
    )

    # systemd ignores a setting it cannot parse with only a warning: none is allowed.
    assert (verified.returncode, verified.stdout + verified.stderr) == (0, "")


def test_a_wrong_configuration_is_not_restarted_and_anything_else_is() -> None:
    unit = service()
    assert unit["Restart"] == "on-failure"
    assert unit["RestartPreventExitStatus"].split() == [str(EXIT_USAGE)]


def test_only_the_database_folder_the_shipped_configuration_uses_is_writable() -> None:
    unit = service()
    assert unit["ProtectSystem"] == "strict"
    # Started in WorkingDirectory, newsbot reads config/newsbot.yaml, whose paths are relative
    # to its own folder.
    assert unit["WorkingDirectory"] == INSTALLED_AT
    assert unit["ExecStart"] == f"{INSTALLED_AT}/.venv/bin/newsbot run"
    settings = config.load(ROOT / "config" / "newsbot.yaml", environ={})
    database_folder = settings.database.path.parent.resolve().relative_to(ROOT)
    assert unit["ReadWritePaths"].split() == [f"{INSTALLED_AT}/{database_folder}"]


def test_systemctl_reload_sends_newsbot_sighup_which_reloads_its_settings() -> None:
    assert service()["ExecReload"] == "/bin/kill -HUP $MAINPID"
