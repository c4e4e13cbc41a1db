"""The lock file pins what pyproject.toml asks for, and CI's lock check says so when it does not."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent
LOCK = REPO / "requirements.lock.txt"
CHECK = REPO / ".ci" / "check_lock.py"


def declared() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["test"]]
    return [Requirement(text) for text in wanted]


def pins() -> dict[str, str]:
    pinned = {}
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            name, version = text.split("==")
            pinned[canonicalize_name(name)] = version.strip()
    return pinned


def run_check(lock: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHECK), str(lock)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_every_declared_dependency_is_pinned_within_its_range() -> None:
    pinned = pins()

    for requirement in declared():
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{name} is declared in pyproject.toml but not locked"
        assert requirement.specifier.contains(pinned[name], prereleases=True), name


def test_lock_check_fails_loudly_on_a_dependency_the_lock_lacks(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.lock.txt"
    lines = LOCK.read_text(encoding="utf-8").splitlines()
    lock.write_text("\n".join(line for line in lines if not line.startswith("ftfy==")) + "\n")

    finished = run_check(lock)

    assert finished.returncode == 1
    assert "ftfy" in finished.stderr and "not in" in finished.stderr
    assert "disagree" in finished.stderr


def test_lock_check_fails_loudly_on_a_version_other_than_the_pinned_one(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.lock.txt"
    text = LOCK.read_text(encoding="utf-8")
    lock.write_text(text.replace(f"ftfy=={pins()['ftfy']}", "ftfy==6.0.0"))

    finished = run_check(lock)

    assert finished.returncode == 1
    assert "ftfy is installed at" in finished.stderr


def test_lock_check_fails_loudly_on_a_package_nothing_needs(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.lock.txt"
    lock.write_text(LOCK.read_text(encoding="utf-8") + "left-pad-for-python==1.0.0\n")

    finished = run_check(lock)

    assert finished.returncode == 1
    assert "left-pad-for-python==1.0.0 is in" in finished.stderr
