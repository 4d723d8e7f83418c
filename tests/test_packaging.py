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
    import tomllib

    text = (ROOT / "Dockerfile").read_text()
    shipped = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"]
    for top in sorted({p.split(".")[0] for p in shipped}):  # `pip install .` needs them all
        assert f"COPY {top} ./{top}" in text, f"the image does not get {top}/"
    assert 'ENTRYPOINT ["pushinbox"]' in text


def test_the_wheel_carries_every_lua_script(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                    "-q", "-w", str(tmp_path), str(ROOT)], check=True)
    wheel = next(tmp_path.glob("pushinbox-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for script in scripts.names():
        assert f"scripts/lua/{script}.lua" in names
    for include in (scripts._lua_dir() / "includes").iterdir():
        if include.name.endswith(".lua"):
            assert f"scripts/lua/includes/{include.name}" in names
    assert "dispatcher/py.typed" in names
    assert "httpapi/app.py" in names
    assert "httpapi/routes/advisor.py" in names
    assert "httpapi/static/console.js" in names


def test_the_package_without_extras_runs_the_stack(tmp_path: Path) -> None:
    """`pip install .` as the Dockerfile does (no test kit, no pytest), then `pushinbox up`."""
    import os
    import signal
    import time
    import urllib.request

    from dispatcher.servers import free_port

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
           "--disable-pip-version-check"]
    subprocess.run([*pip, str(ROOT)], check=True, cwd=tmp_path)
    assert subprocess.run([str(venv / "bin" / "python"), "-c", "import pytest"],
                          capture_output=True).returncode != 0  # really without the test kit
    port, http = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "RQ_REDIS_URL")}
    up = subprocess.Popen([str(venv / "bin" / "pushinbox"), "up", "--port", str(port),
                           "--http-port", str(http), "--data-dir", str(tmp_path / "data")],
                          cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{http}/healthz", timeout=1):
                    break
            except OSError:
                assert up.poll() is None, up.communicate()[0].decode()[-3000:]
                assert time.monotonic() < deadline
                time.sleep(0.2)
    finally:
        os.killpg(up.pid, signal.SIGINT)
        try:
            out = up.communicate(timeout=30)[0].decode()
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
            out = up.communicate()[0].decode()
    assert "No module named" not in out, out[-3000:]


def test_the_readme_names_every_command() -> None:
    import re

    readme = (ROOT / "README.md").read_text()
    listed = set(re.findall(r"`([a-z-]+)(?: [a-z|]+)?`", readme))
    missing = {name for name, cmd in cli.commands.items()  # type: ignore[attr-defined]
               if name not in listed and not cmd.hidden}
    assert not missing, missing


def test_building_the_package_warns_about_nothing(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w",
                           str(tmp_path), str(ROOT)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stdout + done.stderr, (done.stdout + done.stderr)[-3000:]


def test_every_module_of_the_core_service_and_workers_declares_its_public_names() -> None:
    import importlib
    import pkgutil

    import dispatcher
    import httpapi
    import workers

    for package in (dispatcher, httpapi, workers):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if info.name.endswith((".static", ".testing", ".demo", ".defaults")):
                continue
            module = importlib.import_module(info.name)
            names = getattr(module, "__all__", None)
            assert names is not None, f"{info.name} has no __all__"
            for name in names:
                assert hasattr(module, name), f"{info.name}.__all__ names {name}, undefined"


def test_what_the_readme_documents_is_exported_by_the_package() -> None:
    import dispatcher

    for name in ("Dispatcher", "AsyncDispatcher", "FakeClock", "PushinboxError", "Message"):
        assert name in dispatcher.__all__ and hasattr(dispatcher, name)
