"""Team mode's config, credentials file and systemd units (console serve --install-unit)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from console.host.serve_config import ServeConfig, ServeConfigError, load_serve_config
from console.host.serve_setup import ServeSetupError, check_workflow_dirs, read_credentials

CONFIG = """
user = "root"
groups = ["root"]
workflows = ["/etc/console/workflows"]
"""


def console(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "console", *args], capture_output=True,
                          text=True, timeout=60, env={**os.environ, **(env or {})})


def test_a_typo_or_a_relative_path_in_the_config_is_named(tmp_path: Path) -> None:
    path = tmp_path / "serve.toml"
    path.write_text(CONFIG + 'audit = "audit.jsonl"\nsokcet = "/run/x.sock"\n')
    with pytest.raises(ServeConfigError) as caught:
        load_serve_config(path)
    assert str(path) in caught.value.message
    assert "audit: 'audit.jsonl' is not an absolute path" in caught.value.message
    assert "sokcet: unknown key" in caught.value.message


def test_credentials_others_could_read_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "credentials.env"
    path.write_text("# comment\nexport TOKEN='a b'\n\nOTHER=x=y\n")
    path.chmod(0o600)
    assert read_credentials(path, os.getuid()) == {"TOKEN": "a b", "OTHER": "x=y"}
    path.chmod(0o640)
    with pytest.raises(ServeSetupError, match="can be read by others"):
        read_credentials(path, os.getuid())


def test_a_workflow_directory_others_can_change_is_refused(tmp_path: Path) -> None:
    flows = tmp_path / "workflows"
    (flows / "scripts").mkdir(parents=True, mode=0o755)
    flows.chmod(0o755)
    (flows / "scripts" / "deploy.sh").write_text("true\n")
    config = ServeConfig(groups=["g"], workflows=[flows])
    check_workflow_dirs(config, os.getuid())
    (flows / "scripts" / "deploy.sh").chmod(0o664)
    with pytest.raises(ServeSetupError, match=r"scripts/deploy.sh \(mode 0664\) can be changed"):
        check_workflow_dirs(config, os.getuid())


def test_install_unit_prints_a_hardened_service_and_its_socket(tmp_path: Path) -> None:
    path = tmp_path / "serve.toml"
    path.write_text(CONFIG)
    done = console("serve", "--config", str(path), "--install-unit")
    assert done.returncode == 0, done.stderr
    assert "# console-serve.socket" in done.stdout and "# console-serve.service" in done.stdout
    for line in ("NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes",
                 "ReadWritePaths=-/var/lib/console -/var/log/console -/run/console/runs",
                 "KillMode=process", "SocketMode=0660", "SocketGroup=root",
                 "ListenStream=/run/console/serve.sock", "User=root",
                 "RuntimeDirectory=console/runs"):
        assert line in done.stdout


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_analyze_verifies_the_units(tmp_path: Path) -> None:
    path = tmp_path / "serve.toml"
    path.write_text(CONFIG)
    units = tmp_path / "units"
    units.mkdir()
    done = console("serve", "--config", str(path), "--install-unit", "--unit-dir", str(units))
    assert done.returncode == 0, done.stderr
    verify = subprocess.run(
        ["systemd-analyze", "verify", "--man=no",
         str(units / "console-serve.socket"), str(units / "console-serve.service")],
        capture_output=True, text=True, timeout=60,
    )
    assert verify.returncode == 0, verify.stderr
    assert verify.stderr.strip() == "", verify.stderr


def test_run_with_service_but_no_service_says_so(tmp_path: Path) -> None:
    done = console("run", "workflows/demo.toml", "--service", "--no-tui")
    assert done.returncode == 1
    assert "no console serve on this host" in done.stderr and "serve.toml" in done.stderr
