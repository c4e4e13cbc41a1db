"""Fail loudly when the lock file and pyproject.toml disagree.

`.ci/run` installs newsbot with its test extras, constrained by the lock. pip itself fails when
pyproject.toml asks for a range the lock's version is outside of; this check catches the rest:
a dependency pyproject.toml gained that the lock lacks (pip would quietly take its newest
release) and a locked package nothing needs any more. Every installed distribution but newsbot
and the virtual environment's own tools must be locked, at exactly the installed version.
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

# Installed by `python -m venv` itself, not by newsbot's dependencies.
BOOTSTRAP = {"pip", "setuptools", "wheel"}
REFRESH = "refresh it as the README says (Installs and the lock file)"


def locked(path: Path) -> dict[str, str]:
    """name -> version for every line of the lock that applies to this machine."""
    pins: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        specifiers = list(requirement.specifier)
        if len(specifiers) != 1 or specifiers[0].operator != "==":
            sys.exit(f"{path}:{number}: not an exact pin: {line}")
        if requirement.marker is None or requirement.marker.evaluate():
            pins[canonicalize_name(requirement.name)] = specifiers[0].version
    return pins


def installed() -> dict[str, str]:
    found = {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()}
    return {name: version for name, version in found.items() if name not in BOOTSTRAP}


def main() -> int:
    lock = Path(sys.argv[1] if len(sys.argv) > 1 else "requirements.lock.txt")
    pins = locked(lock)
    present = installed()
    present.pop("newsbot", None)
    problems = [
        f"{name} {version} is installed but not in {lock}"
        if name not in pins
        else f"{name} is installed at {version} but {lock} pins {pins[name]}"
        for name, version in sorted(present.items())
        if pins.get(name) != version
    ]
    problems += [
        f"{name}=={version} is in {lock} but nothing installs it"
        for name, version in sorted(pins.items())
        if name not in present
    ]
    for problem in problems:
        print(f"lock check: {problem}", file=sys.stderr)
    if problems:
        print(f"lock check: {lock} and pyproject.toml disagree: {REFRESH}", file=sys.stderr)
        return 1
    print(f"lock check: {len(pins)} packages installed exactly as {lock} pins them")
    return 0


if __name__ == "__main__":
    sys.exit(main())
