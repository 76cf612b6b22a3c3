"""Faults on the way to a host, each a clear error naming it, nothing lost."""

from __future__ import annotations

import subprocess
from pathlib import Path

from ..sshd import Fleet, start_fleet
from .test_waves import _of, run_fleet

ONE_HOST = """
[steps.deploy]
run = "echo deployed"
on = ["web-01"]
"""


def _error(recs: list[dict[str, object]]) -> str:
    finished = _of(recs, "step.finished", "deploy[web-01]")  # type: ignore[arg-type]
    assert finished, recs
    data = finished[-1]["data"]
    assert isinstance(data, dict) and data["outcome"] == "error"
    return str(data["error"])


def test_a_closed_port_names_the_host_and_what_to_check(tmp_path: Path, fleet: Fleet) -> None:
    done, recs = run_fleet(tmp_path, fleet, ONE_HOST, inventory=fleet.inventory(port=1))
    assert done.returncode == 1
    error = _error(recs)
    assert error.startswith("web-01 (127.0.0.2:1): cannot connect:") and "sshd" in error
    assert "Traceback" not in done.stderr


def test_refused_keys_say_which_user_and_key(tmp_path: Path, fleet: Fleet) -> None:
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)],
                   check=True)
    inventory = fleet.inventory().replace(str(fleet.client_key), str(stranger))
    done, recs = run_fleet(tmp_path, fleet, ONE_HOST, inventory=inventory)
    assert done.returncode == 1
    error = _error(recs)
    assert "web-01 (127.0.0.2:" in error and "authentication refused for user root" in error
    assert str(stranger) in error


def test_an_unknown_and_a_changed_host_key_are_never_accepted(
    tmp_path: Path, fleet: Fleet,
) -> None:
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    inventory = fleet.inventory().replace(str(fleet.known_hosts), str(empty))
    done, recs = run_fleet(tmp_path, fleet, ONE_HOST, inventory=inventory)
    assert done.returncode == 1
    error = _error(recs)
    assert "unknown host key SHA256:" in error and f"ssh-keyscan -p {fleet.port} 127.0.0.2" in error
    assert not _of(recs, "step.started", "deploy[web-01]")[0]["data"].get("host_key")

    other = start_fleet(tmp_path / "other", 1, first=60)  # another key, same address form
    try:
        changed = tmp_path / "changed_known_hosts"
        changed.write_text(other.known_hosts.read_text().replace("127.0.0.60", "127.0.0.2")
                           .replace(str(other.port), str(fleet.port)))
        inventory = fleet.inventory().replace(str(fleet.known_hosts), str(changed))
        _, recs = run_fleet(tmp_path, fleet, ONE_HOST, inventory=inventory)
        error = _error(recs)
        assert "the host key CHANGED" in error and "ssh-keygen -R" in error
    finally:
        other.stop()
