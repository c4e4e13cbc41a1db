"""The shipped deployment files (Dockerfile, compose.yaml) describe a newsbot that starts: every
process gets settings newsbot accepts, the processes share the shards exactly once, and the
paths the image mounts are the ones its configuration reads. Both files pass their linters:
hadolint for the Dockerfile, the Compose specification's JSON schema for compose.yaml (.ci/run
runs the same two commands).

No Docker daemon is needed: the files are read as data and the settings through bot.config.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot import config

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
# Compose's "${NAME:?message}" and "${NAME}": the value comes from .env or the environment.
VARIABLE = re.compile(r"\$\{(\w+)(?::?[?-][^}]*)?\}")
GIVEN = {"DISCORD_TOKEN": "token-from-env", "POSTGRES_PASSWORD": "secret"}


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def newsbot_services() -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose()["services"].items()
        if service.get("build") or service.get("image") == "newsbot"
    }


def environment(service: dict[str, Any]) -> dict[str, str]:
    return {
        name: VARIABLE.sub(lambda match: GIVEN[match.group(1)], str(value))
        for name, value in service["environment"].items()
    }


def settings_of(service: dict[str, Any]) -> config.Settings:
    return config.load(ROOT / "config" / "newsbot.yaml", environment(service))


def workdir() -> Path:
    found = re.findall(r"^WORKDIR\s+(\S+)", DOCKERFILE.read_text(), flags=re.MULTILINE)
    return Path(found[-1])


def tool(name: str) -> str:
    """The linter installed with the test extras (next to this Python, or on PATH). Under CI a
    missing one fails the test: CI cannot pass without linting."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed: CI lints the deployment files with it")
        pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return found


def lint(command: list[str]) -> str:
    """What a linter objects to, or "" when it accepts the file."""
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
    return "" if done.returncode == 0 else (done.stdout + done.stderr).strip() or "refused"


def hadolint(dockerfile: Path) -> str:
    return lint([tool("hadolint"), "--no-color", str(dockerfile)])


def compose_schema(compose_file: Path) -> str:
    # The schema ships inside check-jsonschema: nothing is fetched at check time.
    return lint(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(compose_file)]
    )


def test_hadolint_accepts_the_dockerfile() -> None:
    assert hadolint(DOCKERFILE) == ""


def test_hadolint_refuses_a_dockerfile_that_runs_as_a_user_name(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text(DOCKERFILE.read_text().replace("USER 10001", "USER newsbot"))

    assert "DL3066" in hadolint(bad)


def test_the_compose_file_follows_the_compose_specification() -> None:
    assert compose_schema(COMPOSE) == ""


def test_the_compose_schema_refuses_a_misspelt_service_key(tmp_path: Path) -> None:
    bad = tmp_path / "compose.yaml"
    bad.write_text(COMPOSE.read_text().replace("depends_on:", "depend_on:", 1))

    assert "depend_on" in compose_schema(bad)


def test_every_newsbot_process_gets_settings_newsbot_accepts() -> None:
    services = newsbot_services()
    assert len(services) >= 2
    for service in services.values():
        settings = settings_of(service)
        assert settings.discord_token is not None
        assert settings.database.url is not None
        assert "@postgres:" in settings.database.url


def test_the_processes_run_every_shard_exactly_once() -> None:
    shards = [settings_of(service).discord.shards for service in newsbot_services().values()]
    counts = {shard.count for shard in shards}
    assert len(counts) == 1, f"processes disagree on the shard count: {counts}"
    (count,) = counts
    assert count is not None
    runs = Counter(shard_id for shard in shards for shard_id in shard.ids or ())
    assert sorted(runs) == list(range(count)), "some shard is run by no process"
    assert set(runs.values()) == {1}, "some shard is run by two processes"


def test_the_database_user_and_name_match_the_postgres_service() -> None:
    postgres = compose()["services"]["postgres"]["environment"]
    for service in newsbot_services().values():
        url = settings_of(service).database.url
        assert url is not None
        assert url.startswith(f"postgresql://{postgres['POSTGRES_USER']}:")
        assert url.endswith(f"/{postgres['POSTGRES_DB']}")


def test_the_image_mounts_the_folders_its_configuration_reads() -> None:
    settings = config.load(ROOT / "config" / "newsbot.yaml", {})
    # The image is the repository laid out in WORKDIR: the same relative paths hold there.
    in_image = workdir()
    seeds = in_image / settings.seeds.folder.resolve().relative_to(ROOT)
    data = in_image / settings.database.path.resolve().parent.relative_to(ROOT)
    for service in newsbot_services().values():
        targets = [volume.split(":")[1] for volume in service["volumes"]]
        assert str(seeds) in targets
    assert f'VOLUME ["{data}", "{seeds}"]' in DOCKERFILE.read_text()


@pytest.mark.parametrize(
    "line",
    [
        pytest.param("pip install -c requirements.lock.txt", id="installs-from-the-lock"),
    ],
)
def test_the_image_is_built_the_way_the_readme_promises(line: str) -> None:
    assert line in DOCKERFILE.read_text()


def test_the_image_health_check_asks_the_listener_the_image_turns_on() -> None:
    text = DOCKERFILE.read_text()
    [listen] = re.findall(r"^ENV NEWSBOT_METRICS_LISTEN=(\S+)$", text, flags=re.MULTILINE)
    settings = config.load(ROOT / "config" / "newsbot.yaml", {"NEWSBOT_METRICS_LISTEN": listen})
    assert settings.metrics.address is not None
    _, port = settings.metrics.address
    [check] = re.findall(r"^HEALTHCHECK .*\\\n\s+CMD (.+)$", text, flags=re.MULTILINE)
    assert f"'http://127.0.0.1:{port}/healthz'" in check
    assert "urllib.request" in check  # slim images have no curl
    assert f"EXPOSE {port}" in text


def test_the_image_runs_as_the_unprivileged_user_it_creates() -> None:
    text = DOCKERFILE.read_text()
    (uid,) = re.findall(r"useradd .*--uid (\d+)", text)
    # Numeric, so that a runtime (Kubernetes' runAsNonRoot) can tell it is not root.
    assert re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE) == [uid]
    assert int(uid) != 0
