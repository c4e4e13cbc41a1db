"""newsbot installed the way its image installs it starts, as a user who is not root.

No Docker daemon is needed: the Dockerfile's WORKDIR, COPY and RUN steps are replayed into a
temporary folder (a virtual environment stands in for the image's Python), the install is the
image's own non-editable `pip install -c requirements.lock.txt .`, and the entry point runs as
an unprivileged user from the WORKDIR with the configuration and seeds the image copies. A step
this replay does not understand fails the test, so the Dockerfile cannot drift away from it.

One pip install per run (module fixture); pip's cache keeps it to some 20-40 s.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
# What the image needs from the repository, and what this test therefore copies; a COPY of
# anything else (or a missing one) fails test_the_image_copies_what_this_test_mirrors.
IMAGE_SOURCES = {"pyproject.toml", "requirements.lock.txt", "README.md", "bot", "config", "seeds"}
PIP_INSTALL = "pip install -c requirements.lock.txt ."
UNPRIVILEGED = "nobody"
SYSTEM_PYTHONS = ("/usr/local/bin/python3", "/usr/bin/python3")


@dataclass(frozen=True)
class Step:
    instruction: str
    arguments: str


def steps(dockerfile: str) -> list[Step]:
    """The Dockerfile's instructions, continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", dockerfile)
    found = []
    for line in joined.splitlines():
        text = line.strip()
        if text and not text.startswith("#"):
            instruction, _, arguments = text.partition(" ")
            found.append(Step(instruction.upper(), " ".join(arguments.split())))
    return found


def sources_and_destination(copy: Step) -> tuple[list[str], str]:
    *sources, destination = shlex.split(copy.arguments)
    return sources, destination


def readable_by_all(root: Path) -> None:
    """Everything under root readable (and what is executable, executable) by every user."""
    for folder, _, files in os.walk(root):
        for path in [Path(folder), *(Path(folder, name) for name in files)]:
            mode = path.stat().st_mode
            path.chmod(mode | 0o444 | (mode & 0o100) >> 3 | (mode & 0o100) >> 6)


class Image:
    """A folder laid out as the image's file system: `/app` is `root/app`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.venv = root / "venv"
        self.workdir = root

    def path(self, inside: str) -> Path:
        target = Path(inside)
        return (
            self.root / target.relative_to("/") if target.is_absolute() else self.workdir / target
        )

    def copy(self, sources: list[str], destination: str) -> None:
        target = self.path(destination)
        for source in sources:
            origin = ROOT / source
            into = target / source if destination.endswith("/") else target
            if origin.is_dir():
                shutil.copytree(origin, into, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                into.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, into)

    def run(self, command: str) -> None:
        """A RUN step, one `&&` part at a time; a part the replay does not know fails."""
        for part in (piece.strip() for piece in command.split("&&")):
            if part.startswith(PIP_INSTALL):
                # This test's pip, installing into the image's environment (`--python`): the
                # same install, without seeding the environment with a pip of its own first.
                pip = [sys.executable, "-m", "pip", "--python", str(self.venv / "bin" / "python")]
                pip += ["--disable-pip-version-check", "-q"]
                installed = subprocess.run(
                    [*pip, *shlex.split(part)[1:]],
                    cwd=self.workdir,
                    capture_output=True,
                    text=True,
                    timeout=600,
                    check=False,
                )
                assert installed.returncode == 0, f"{part}: {installed.stderr}"
            elif part.startswith("mkdir -p "):
                for folder in shlex.split(part)[2:]:
                    self.path(folder).mkdir(parents=True, exist_ok=True)
            elif part.startswith("useradd "):
                pass  # the image's user: this test runs the bot as UNPRIVILEGED instead
            elif part.startswith("chown "):
                for path in shlex.split(part)[2:]:
                    give_to_unprivileged(self.path(path))
            else:
                pytest.fail(f"the Dockerfile runs {part!r}, which this test does not mirror")

    def build(self, dockerfile: str) -> None:
        venv = [image_python(), "-m", "venv", "--without-pip", str(self.venv)]
        subprocess.run(venv, check=True, timeout=120)
        for step in steps(dockerfile):
            if step.instruction == "WORKDIR":
                self.workdir = self.path(step.arguments)
                self.workdir.mkdir(parents=True, exist_ok=True)
            elif step.instruction == "COPY":
                self.copy(*sources_and_destination(step))
            elif step.instruction == "RUN":
                self.run(step.arguments)


def give_to_unprivileged(path: Path) -> None:
    """What the image's `chown newsbot` does, for the user this test runs newsbot as."""
    if os.geteuid() == 0:
        user = pwd.getpwnam(UNPRIVILEGED)
        os.chown(path, user.pw_uid, user.pw_gid)


def as_unprivileged() -> dict[str, Any]:
    """subprocess arguments that run a command as a user who is not root: tests here often run
    as root, which would hide a file the image's user cannot read."""
    if os.geteuid() != 0:
        return {}
    try:
        user = pwd.getpwnam(UNPRIVILEGED)
    except KeyError:
        if os.environ.get("CI"):
            pytest.fail(f"no user {UNPRIVILEGED!r} to run the installed newsbot as")
        pytest.skip(f"no user {UNPRIVILEGED!r} to run the installed newsbot as")
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def image_python() -> str:
    """A Python for the image's virtual environment that the unprivileged user can run, as every
    user can run the image's /usr/local Python: this one if it can (a Python under root's home,
    as pyenv installs it, cannot), else the system's."""
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    minimum = tuple(int(part) for part in requires.removeprefix(">=").split("."))
    probe = f"import sys; sys.exit(sys.version_info < {minimum!r})"
    for candidate in (getattr(sys, "_base_executable", sys.executable), *SYSTEM_PYTHONS):
        if Path(candidate).exists():
            try:
                tried = subprocess.run(
                    [candidate, "-c", probe], capture_output=True, timeout=60, **as_unprivileged()
                )
            except PermissionError:
                continue
            if tried.returncode == 0:
                return candidate
    message = f"no Python {requires} that user {UNPRIVILEGED!r} can run"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def image() -> Iterator[Image]:
    # Not pytest's tmp_path: its parent folders are private to root, so `nobody` could not
    # reach the installed files.
    root = Path(tempfile.mkdtemp(prefix="newsbot-image-"))
    try:
        root.chmod(0o755)
        built = Image(root)
        built.build(DOCKERFILE.read_text())
        readable_by_all(root)
        yield built
    finally:
        shutil.rmtree(root, ignore_errors=True)


def newsbot(image: Image, *args: str) -> subprocess.CompletedProcess[str]:
    """The image's ENTRYPOINT with args, from its WORKDIR, as a user who is not root, with no
    newsbot setting from this machine's environment."""
    environment = {
        "PATH": f"{image.venv / 'bin'}:/usr/bin:/bin",
        "HOME": "/nonexistent",
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    return subprocess.run(
        [str(image.venv / "bin" / "newsbot"), *args],
        cwd=image.workdir,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        **as_unprivileged(),
    )


def test_the_image_copies_what_this_test_mirrors() -> None:
    dockerfile = DOCKERFILE.read_text()
    by_instruction: dict[str, list[str]] = {}
    for step in steps(dockerfile):
        by_instruction.setdefault(step.instruction, []).append(step.arguments)
    copied = {
        source
        for step in steps(dockerfile)
        if step.instruction == "COPY"
        for source in sources_and_destination(step)[0]
    }
    assert copied == IMAGE_SOURCES
    assert any(PIP_INSTALL in command for command in by_instruction["RUN"])
    # newsbot() below runs the console script, as the image's exec-form ENTRYPOINT does.
    assert [json.loads(entry) for entry in by_instruction["ENTRYPOINT"]] == [["newsbot"]]


def test_the_installed_newsbot_reports_its_version(image: Image) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    done = newsbot(image, "--version")

    assert (done.returncode, done.stdout.strip()) == (0, f"newsbot {project['version']}"), (
        done.stderr
    )


def test_the_installed_newsbot_checks_the_seeds_the_image_ships(image: Image) -> None:
    shipped = len(list((ROOT / "seeds").iterdir()))

    done = newsbot(image, "seeds", "check")

    assert done.returncode == 0, done.stdout + done.stderr
    summary = f"{shipped} files: {shipped} ok, 0 duplicate, 0 rejected"
    assert done.stdout.splitlines()[-1] == summary
