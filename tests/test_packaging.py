"""What a deployment relies on: the compose file, the image and the wheel."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import yaml
from click.testing import CliRunner

from cli.main import cli
from dispatcher import scripts

ROOT = Path(__file__).resolve().parent.parent


def test_docker_compose_runs_redis_with_the_append_only_file_and_real_cli_commands() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    redis_cmd = compose["services"]["redis"]["command"]
    assert redis_cmd[redis_cmd.index("--appendonly") + 1] == "yes"
    assert redis_cmd[redis_cmd.index("--maxmemory-policy") + 1] == "noeviction"
    for name, service in compose["services"].items():
        if service.get("build"):
            args = [a for a in service["command"] if not a.startswith("--")]
            r = CliRunner().invoke(cli, [*args, "--help"])
            assert r.exit_code == 0, f"service {name} runs an unknown command {args}"
            assert service["environment"]["REDIS_URL"].startswith("redis://redis:")


def test_the_dockerfile_installs_the_package_and_runs_the_cli() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "COPY scripts ./scripts" in text
    assert 'ENTRYPOINT ["pushinbox"]' in text


def test_the_wheel_carries_every_lua_script(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                    "-q", "-w", str(tmp_path), str(ROOT)], check=True)
    wheel = next(tmp_path.glob("pushinbox-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for script in scripts.names():
        assert f"scripts/lua/{script}.lua" in names
    assert "scripts/lua/includes/core.lua" in names
    assert "dispatcher/py.typed" in names
    assert "dispatcher/service/app.py" in names
    assert "dispatcher/service/static/console.js" in names
