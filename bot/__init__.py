"""newsbot: a Discord bot that delivers news."""

from importlib import metadata


def version() -> str:
    """The installed newsbot's version, as `newsbot --version` prints it."""
    try:
        return metadata.version("newsbot")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"
