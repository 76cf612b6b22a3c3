"""`console run` of new bytes, validated in a child process (console/workflow/validate_aside.py),
as a person meets it: the same message and exit code as ever for an invalid file, and no
process left behind whatever stops the run while the child validates."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.engine.cli_runs import console_env, wait_for

BAD = """\
[workflow]
name = "bad"

[steps.build]
run = ["make"]
timeout = "soon"

[steps.ship]
needs = ["biuld"]
run = "./ship.sh"
"""


def many_steps(path: Path, count: int = 10_000) -> Path:
    """A workflow that takes its child a good half second to validate."""
    path.write_text('[workflow]\nname = "many"\n\n'
                    + "".join(f'[steps.s{i}]\nrun = ["true"]\n\n' for i in range(count)))
    return path


def console(*args: str, env: dict[str, str], cwd: Path,
            **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "console", *args], env=env, cwd=cwd,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)  # type: ignore[call-overload]


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


def validating_child(process: subprocess.Popen[str]) -> int:
    """The child validating for `process`, stopped where it is (SIGSTOP)."""
    (child,) = wait_for("the validating child", lambda: children_of(process.pid))
    os.kill(child, signal.SIGSTOP)
    wait_for("the child stopped", lambda: Path(f"/proc/{child}/stat").read_text()
             .rsplit(")", 1)[1].split()[0] == "T")
    return child


def leftovers(env: dict[str, str]) -> list[str]:
    plans = Path(env["XDG_STATE_HOME"]) / "console" / "plans"
    return sorted(p.name for p in plans.glob("*") if not p.name.endswith(".json"))


@pytest.mark.parametrize("how", ["--no-tui", "--detach"])
def test_an_invalid_new_workflow_says_what_validate_says(tmp_path: Path, how: str) -> None:
    (tmp_path / "bad.toml").write_text(BAD)
    env = console_env(tmp_path)
    validate = subprocess.run([sys.executable, "-m", "console", "validate", "bad.toml"],
                              env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    run = subprocess.run([sys.executable, "-m", "console", "run", "bad.toml", how], env=env,
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert validate.returncode == run.returncode == 1
    assert validate.stderr.count("\n") == 2 and "Traceback" not in run.stderr
    assert run.stderr == f"console: {validate.stderr}"
    assert run.stdout == ""
    assert leftovers(env) == []
    # ...and it was the child that validated: the run's own process never imported pydantic.
    code = ("import sys\nfrom console.cli import main\n"
            f"code = main(['run', 'bad.toml', {how!r}])\n"
            "print(code, 'pydantic' in sys.modules)\n")
    said = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert said.stdout == "1 False\n"
    assert said.stderr == run.stderr


def test_ctrl_c_while_the_child_validates_leaves_nothing(tmp_path: Path) -> None:
    many_steps(tmp_path / "many.toml")
    env = console_env(tmp_path)
    process = console("run", "many.toml", "--no-tui", env=env, cwd=tmp_path,
                      start_new_session=True)
    child = validating_child(process)
    os.killpg(process.pid, signal.SIGINT)  # as the terminal does: to the parent and the child
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert stderr == "console: interrupted\n"
    assert gone(child) and children_of(process.pid) == []
    assert leftovers(env) == []
    assert not (Path(env["XDG_STATE_HOME"]) / "console" / "audit.jsonl").exists()


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL])
def test_a_child_whose_parent_is_killed_ends_with_its_validation(
    tmp_path: Path, stop: signal.Signals
) -> None:
    many_steps(tmp_path / "many.toml")
    env = console_env(tmp_path)
    process = console("run", "many.toml", "--no-tui", env=env, cwd=tmp_path)
    child = validating_child(process)
    try:
        process.send_signal(stop)
        assert process.wait(timeout=60) == -stop
        assert not gone(child)
    finally:
        os.kill(child, signal.SIGCONT)  # it validates to the end, then finds no one to tell
    wait_for("the orphaned child to end", lambda: gone(child))
    assert process.communicate(timeout=60) == ("", "")  # the child wrote nothing either
    assert leftovers(env) == []
    assert not (Path(env["XDG_STATE_HOME"]) / "console" / "audit.jsonl").exists()
