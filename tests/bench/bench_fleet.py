"""Steps on many hosts (issue 11): `true` on 50 loopback hosts, the console against a bare
asyncssh floor and Ansible, in one run. `python tests/bench/bench_fleet.py [RUNS]` (about
3 minutes for the default RUNS=5 on 2 cores, Ansible most of it).

The hosts: real OpenSSH sshds (tests/sshd.py, 16 addresses each) on 127.0.0.100-149, one
port, fresh host and client keys, a known_hosts file with the host key for each address.
Every contender checks host keys against that file and logs in as root with the client key.

- **console**: one step with `on = "@web"` (the 50 hosts), `run = "true"`, `strategy =
  { waves = ["100%"] }`, inventory from `Fleet.inventory()`; `python -m console run FILE
  --no-tui --audit FILE`, fresh state each time (audit and step logs written). Its audit
  timestamps split the wall time: spawn -> run.started, wave.started -> group.finished,
  group.finished -> exit.
- **asyncssh floor**: FLOOR_SCRIPT, run by the same interpreter: reads the key and
  known_hosts once, connects to the 50 hosts concurrently, runs `true` on each. Also run
  with the console's remote command and stdin (its wrapper and payload) instead of `true`:
  what the wrapper costs on the hosts, apart from the console.
- **Ansible**: `ansible all -i INVENTORY -m command -a true -f 50` (ansible-core in
  /tmp/ansible-venv, installed there if missing; ssh_args as shipped, ControlMaster=auto
  and ControlPersist=60s; interpreter discovery as shipped; files sent `piped`, as the
  test sshd has no sftp subsystem). Each repetition gets a fresh ControlPath directory and
  runs Ansible **cold** (no master yet), then **warm** (the cold run's masters reused);
  then those masters are ended by pid. The console's target is against the warm run.

Each contender is a subprocess with output to a file, timed from spawn to exit, and must
have run `true` on all 50 hosts (checked from its output or audit). One unmeasured round
first; ratios are medians of per-repetition ratios. CPU: the contender's (wait4: it and
the children it reaped) and the hosts' side (the sshd listeners' own and reaped CPU, read
once every session has ended), which shares the same two cores. Peak RSS of the console is
wait4's ru_maxrss (its largest process: the console itself); one more round, not timed,
samples each contender's process tree every 20 ms (RSS and PSS summed), which is how
Ansible's 50 forks are seen.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from _common import (
    CONSOLE,
    PYTHON,
    REPO,
    Figure,
    at_most,
    isolated_state,
    load_note,
    median,
    print_figures,
    reported,
    runs_from_argv,
)

sys.path.insert(0, str(REPO / "tests"))
from sshd import Fleet, sshd_available, start_fleet

from console.exec.base import StepCommand
from console.exec.ssh_script import BOOTSTRAP, message

HOSTS = 50
FIRST = 100  # 127.0.0.100-149: clear of the test suite's fleets (2-21, 30+, 60)
MAX_FLOOR_RATIO = 1.3
MAX_ANSIBLE_RATIO = 0.2
MAX_RSS_MIB = 100
ANSIBLE_VENV = Path("/tmp/ansible-venv")

FLOOR_SCRIPT = '''\
import asyncio, sys
import asyncssh

async def one(address, port, key, known, command, stdin):
    async with asyncssh.connect(address, port=port, username="root", client_keys=[key],
                                known_hosts=known, agent_path=None, config=[]) as conn:
        process = await conn.create_process(command, encoding=None)
        # No EOF after the wrapper: it reads EOF as "stop the step", as the console's does.
        process.stdin.write(stdin) if stdin else process.stdin.write_eof()
        return (await process.wait()).exit_status == 0

async def main(port, key_path, known_path, command, stdin_path, addresses):
    key = asyncssh.read_private_key(key_path)
    known = asyncssh.read_known_hosts(known_path)
    stdin = open(stdin_path, "rb").read() if stdin_path != "-" else b""
    done = await asyncio.gather(*(one(a, port, key, known, command, stdin) for a in addresses))
    print(f"ok {sum(done)}")
    return 0 if all(done) else 1

sys.exit(asyncio.run(main(int(sys.argv[1]), *sys.argv[2:6], sys.argv[6:])))
'''

WORKFLOW = '''\
[workflow]
name = "fleet-bench"
inventory = "hosts.toml"

[steps.touch]
on = "@web"
run = "true"
strategy = { waves = ["100%"] }
'''


def spread(values: Sequence[float], unit: str = "s") -> str:
    return f"{min(values):.3f}-{max(values):.3f} {unit} over {len(values)}"


# --- Ansible, in a venv of its own ------------------------------------------------------------

def ansible_command() -> tuple[Path | None, str]:
    """The `ansible` to run, or None and why not: /tmp/ansible-venv's (made and filled with
    ansible-core if missing), else one on PATH."""
    found = ANSIBLE_VENV / "bin" / "ansible"
    if found.exists():
        return found, ""
    on_path = shutil.which("ansible")
    if on_path is not None:
        return Path(on_path), ""
    print(f"... installing ansible-core into {ANSIBLE_VENV}", flush=True)
    for argv in (["python3", "-m", "venv", str(ANSIBLE_VENV)],
                 [str(ANSIBLE_VENV / "bin" / "pip"), "install", "-q", "ansible-core"]):
        try:
            subprocess.run(argv, capture_output=True, text=True, timeout=600, check=True)
        except (OSError, subprocess.SubprocessError) as exc:
            said = getattr(exc, "stderr", None) or ""
            return None, f"`{' '.join(argv)}` failed: {exc} {said.strip()[-300:]}".strip()
    return (found, "") if found.exists() else (None, f"no {found} after installing")


def ansible_inventory(fleet: Fleet, path: Path) -> Path:
    lines = ["[web]"]
    for name, address in zip(fleet.names, fleet.addresses, strict=True):
        lines.append(f"{name} ansible_host={address} ansible_port={fleet.port} "
                     f"ansible_user=root ansible_ssh_private_key_file={fleet.client_key}")
    lines += ["", "[all:vars]",
              f"ansible_ssh_common_args='-o UserKnownHostsFile={fleet.known_hosts} "
              "-o StrictHostKeyChecking=yes'"]
    path.write_text("\n".join(lines) + "\n")
    return path


def ansible_env(base: Path, control_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_HOME": str(base / "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(base / "ansible-local"),
        "ANSIBLE_REMOTE_TMP": str(base / "ansible-remote"),  # the targets are this machine
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control_dir),
        # The fleet's sshd has no sftp subsystem: "smart" would try sftp, then scp, each
        # failing, before this; a real host's sftp costs about what piped does.
        "ANSIBLE_SSH_TRANSFER_METHOD": "piped",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_CONFIG": str(base / "no-ansible.cfg"),  # no ansible.cfg from the cwd or ~
    })
    return env


def end_masters(control_dir: Path) -> None:
    """End the ControlPersist masters of one control directory, by pid: they left our tree
    for the background and renamed themselves `ssh: CONTROL_PATH [mux]`."""
    mark = str(control_dir).encode()
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, ValueError):
            argv = (entry / "cmdline").read_bytes()
            if argv.startswith(b"ssh") and mark in argv:
                os.kill(int(entry.name), signal.SIGTERM)


# --- timing a child, sampling a process tree ----------------------------------------------

@dataclass(frozen=True)
class Took:
    spawned_at: float  # time.time() just before the spawn
    wall_s: float
    max_rss_mib: float  # wait4: the largest process of the tree
    cpu_s: float  # wait4: user + system of the process and the descendants it reaped
    said: str
    sshd_cpu_s: float = float("nan")  # the hosts' side: sshd sessions and what they ran


def timed(argv: Sequence[str], env: Mapping[str, str], output: Path,
          cwd: Path | None = None) -> Took:
    with output.open("wb") as sink:
        spawned_at = time.time()
        start = time.perf_counter()
        process = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=sink,
                                   stderr=subprocess.STDOUT, env=dict(env), cwd=cwd)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    said = output.read_text(errors="replace")
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {process.returncode}:\n{said[-3000:]}")
    return Took(spawned_at, wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime,
                said)


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def sshd_cpu_s(fleet: Fleet) -> float:
    """CPU used so far by the fleet's sshds and every session they reaped (with the shells
    and commands those ran): the hosts' side of the work, which shares our two cores."""
    total = 0
    for listener in fleet.listeners:
        fields = Path(f"/proc/{listener.pid}/stat").read_text().rpartition(")")[2].split()
        total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return total / CLOCK_TICKS


def sessions_gone(fleet: Fleet, seconds: float = 30.0) -> None:
    """Wait until the sshds have reaped every session (their CPU is counted then)."""
    deadline = time.monotonic() + seconds
    while fleet.session_pids():
        if time.monotonic() > deadline:
            raise SystemExit(f"sshd sessions still open after {seconds:g} s")
        time.sleep(0.01)


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, ValueError):
            parent = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        found.append(pid := todo.pop())
        todo += children.get(pid, [])
    return found


def _memory_kib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in KiB, from smaps_rollup; zeros if it is gone."""
    with contextlib.suppress(OSError):
        fields = dict(line.split()[:2] for line in
                      Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:])
        return int(fields.get("Rss:", 0)), int(fields.get("Pss:", 0))
    return 0, 0


@dataclass(frozen=True)
class TreePeak:
    rss_mib: float
    pss_mib: float
    processes: int


def sampled(argv: Sequence[str], env: Mapping[str, str], output: Path,
            cwd: Path | None = None) -> TreePeak:
    """Run argv (not timed); the peak over 20 ms samples of its tree's summed RSS and PSS."""
    rss = pss = most = 0
    with output.open("wb") as sink:
        process = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=sink,
                                   stderr=subprocess.STDOUT, env=dict(env), cwd=cwd)
        while process.poll() is None:
            pids = _tree(process.pid)
            sizes = [_memory_kib(pid) for pid in pids]
            rss = max(rss, sum(s[0] for s in sizes))
            pss = max(pss, sum(s[1] for s in sizes))
            most = max(most, len(pids))
            time.sleep(0.02)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {process.returncode}")
    return TreePeak(rss / 1024, pss / 1024, most)


# --- the three contenders -----------------------------------------------------------------

def wrapped_true() -> bytes:
    """What the console writes on a step's stdin for `run = "true"` (its remote wrapper
    with the payload and the CONSOLE_* exports inside), for the floor to send the same."""
    exports = {"CONSOLE_RUN_ID": "20261130-000000-000000", "CONSOLE_STEP": "touch",
               "CONSOLE_ATTEMPT": "1", "CONSOLE_HOST": "web-01",
               "CONSOLE_INSTANCE": "touch[web-01]"}
    cmd = StepCommand(step_id="touch[web-01]", attempt=1, argv=None, script="true",
                      env=exports, cwd=Path("/"), timeout_s=None, log_path=Path("/dev/null"))
    return message(cmd, exports, 10.0)


@dataclass
class Bench:
    fleet: Fleet
    base: Path
    ansible: Path | None

    def __post_init__(self) -> None:
        (self.base / "hosts.toml").write_text(self.fleet.inventory())
        self.workflow = self.base / "fleet.toml"
        self.workflow.write_text(WORKFLOW)
        self.floor_script = self.base / "asyncssh_floor.py"
        self.floor_script.write_text(FLOOR_SCRIPT)
        self.wrapped = self.base / "wrapped_true"
        self.wrapped.write_bytes(wrapped_true())
        self.inventory = ansible_inventory(self.fleet, self.base / "inventory.ini")
        self.rounds = 0

    def floor_argv(self, wrapped: bool = False) -> list[str]:
        command, stdin = (BOOTSTRAP, str(self.wrapped)) if wrapped else ("true", "-")
        return [PYTHON, str(self.floor_script), str(self.fleet.port), str(self.fleet.client_key),
                str(self.fleet.known_hosts), command, stdin, *self.fleet.addresses]

    def timed(self, argv: Sequence[str], env: Mapping[str, str], output: Path,
              cwd: Path | None = None) -> Took:
        """timed(), with the CPU the hosts' side spent on it."""
        sessions_gone(self.fleet)
        before = sshd_cpu_s(self.fleet)
        took = timed(argv, env, output, cwd)
        sessions_gone(self.fleet)
        return replace(took, sshd_cpu_s=sshd_cpu_s(self.fleet) - before)

    def floor(self, wrapped: bool = False) -> Took:
        took = self.timed(self.floor_argv(wrapped), os.environ, self.base / "floor.out")
        if took.said.strip() != f"ok {HOSTS}":
            raise SystemExit(f"the asyncssh floor said: {took.said!r}")
        return took

    def console(self) -> tuple[Took, tuple[float, float, float]]:
        with isolated_state() as env:
            audit = Path(env["BENCH_TMP"]) / "audit.jsonl"
            took = self.timed(self.console_argv(audit), env,
                              Path(env["BENCH_TMP"]) / "console.out", self.base)
            records = [json.loads(line) for line in audit.read_text().splitlines()]
        group = [r for r in records if r.get("type") == "group.finished"]
        if len(group) != 1 or group[0]["data"].get("succeeded") != HOSTS:
            raise SystemExit(f"the console's audit says {group} (want {HOSTS} hosts "
                             f"succeeded):\n{took.said[-3000:]}")
        return took, phases(took, records)

    def console_argv(self, audit: Path) -> list[str]:
        return [*CONSOLE, "run", str(self.workflow), "--no-tui", "--audit", str(audit)]

    def console_tree(self) -> TreePeak:
        with isolated_state() as env:
            audit = Path(env["BENCH_TMP"]) / "audit.jsonl"
            return sampled(self.console_argv(audit), env, audit.with_suffix(".out"), self.base)

    def _ansible(self) -> tuple[list[str], dict[str, str]]:
        assert self.ansible is not None
        self.rounds += 1
        control = self.base / f"cp-{self.rounds}"
        control.mkdir()
        argv = [str(self.ansible), "all", "-i", str(self.inventory), "-m", "command",
                "-a", "true", "-f", str(HOSTS)]
        return argv, ansible_env(self.base, control)

    def ansible_pair(self) -> tuple[Took, Took]:
        """Ansible cold, then warm on the masters the cold run left; the masters ended."""
        argv, env = self._ansible()
        try:
            taken = [timed(argv, env, self.base / f"ansible-{n}.out") for n in range(2)]
        finally:
            end_masters(Path(env["ANSIBLE_SSH_CONTROL_PATH_DIR"]))
        for took in taken:
            if (ok := len(re.findall(r" \| CHANGED \| rc=0", took.said))) != HOSTS:
                raise SystemExit(f"ansible ran on {ok} hosts of {HOSTS}:\n{took.said[-3000:]}")
        return taken[0], taken[1]

    def ansible_trees(self) -> list[TreePeak]:
        argv, env = self._ansible()
        try:
            return [sampled(argv, env, self.base / f"ansible-{n}.out") for n in range(2)]
        finally:
            end_masters(Path(env["ANSIBLE_SSH_CONTROL_PATH_DIR"]))


def phases(took: Took, records: list[dict[str, object]]) -> tuple[float, float, float]:
    """A console run's wall time from its audit timestamps: spawn -> run.started (imports,
    loading, the audit file), wave.started -> group.finished (connecting, the wrapper,
    `true`, the records), group.finished -> exit (run.finished, closing, interpreter exit)."""
    at: dict[str, float] = {}
    for record in records:
        stamp = datetime.fromisoformat(str(record["ts"]).replace("Z", "+00:00"))
        at.setdefault(str(record["type"]), stamp.timestamp())
    return (at["run.started"] - took.spawned_at, at["group.finished"] - at["wave.started"],
            took.spawned_at + took.wall_s - at["group.finished"])


@dataclass
class Round:
    floor: Took
    wrapped: Took
    console: Took
    phases: tuple[float, float, float]
    cold: Took | None = None
    warm: Took | None = None


def measure(bench: Bench, runs: int, why_no_ansible: str) -> list[Figure]:
    rounds: list[Round] = []
    for round_ in range(runs + 1):
        bare = bench.floor()
        wrapper_too = bench.floor(wrapped=True)
        measured = Round(bare, wrapper_too, *bench.console())
        if bench.ansible is not None:
            measured.cold, measured.warm = bench.ansible_pair()
        if round_ > 0:  # the first round is not measured: caches, bytecode, sshd's first forks
            rounds.append(measured)

    def of(name: str, what: str = "wall_s") -> list[float]:
        return [float(getattr(getattr(r, name), what)) for r in rounds]

    def phase(index: int) -> list[float]:
        return [r.phases[index] for r in rounds]

    floor, console = of("floor"), of("console")
    ratios = [r.console.wall_s / r.floor.wall_s for r in rounds]
    to_wrapped = [r.console.wall_s / r.wrapped.wall_s for r in rounds]
    figures = [
        reported(f"asyncssh floor: `true` on {HOSTS} hosts", median(floor), "s",
                 f"{median(floor) / HOSTS * 1000:.1f} ms/host; {spread(floor)}"),
        reported("asyncssh floor running the console's remote wrapper", median(of("wrapped")),
                 "s", f"console / this: {median(to_wrapped):.3f} x; {spread(of('wrapped'))}"),
        reported(f"console: `true` on {HOSTS} hosts", median(console), "s",
                 f"run --no-tui --audit; {spread(console)}"),
        reported("console: spawn -> run.started", median(phase(0)), "s",
                 f"then wave.started -> group.finished {median(phase(1)):.3f} s, "
                 f"group.finished -> exit {median(phase(2)):.3f} s"),
        at_most("console / asyncssh floor", median(ratios), "x", MAX_FLOOR_RATIO,
                spread(ratios, "x")),
        at_most(f"console peak RSS, {HOSTS} hosts", median(of("console", "max_rss_mib")),
                "MiB", MAX_RSS_MIB,
                f"wait4 ru_maxrss; {spread(of('console', 'max_rss_mib'), 'MiB')}"),
    ]
    for name, label in (("floor", "asyncssh floor"), ("wrapped", "floor with the wrapper"),
                        ("console", "console")):
        figures.append(reported(f"CPU, {label}: here / sshd side",
                                median(of(name, "cpu_s")), "s",
                                f"sshd side {median(of(name, 'sshd_cpu_s')):.3f} s"))
    if bench.ansible is None:
        figures.append(reported("ansible: not measured", float("nan"), "s", why_no_ansible))
        return figures
    cold, warm = of("cold"), of("warm")
    to_warm = [r.console.wall_s / r.warm.wall_s for r in rounds if r.warm is not None]
    to_cold = [r.console.wall_s / r.cold.wall_s for r in rounds if r.cold is not None]
    figures += [
        reported(f"ansible -f {HOSTS}, cold (no ControlPersist master)", median(cold), "s",
                 f"CPU {median(of('cold', 'cpu_s')):.3f} s; {spread(cold)}"),
        reported(f"ansible -f {HOSTS}, warm (masters reused)", median(warm), "s",
                 f"CPU {median(of('warm', 'cpu_s')):.3f} s; {spread(warm)}"),
        at_most("console / ansible warm", median(to_warm), "x", MAX_ANSIBLE_RATIO,
                spread(to_warm, "x")),
        reported("console / ansible cold", median(to_cold), "x", spread(to_cold, "x")),
    ]
    return figures


def measure_trees(bench: Bench) -> list[Figure]:
    """One more round, not timed: each contender's process tree sampled from /proc."""
    floor = sampled(bench.floor_argv(), os.environ, bench.base / "floor.out")
    console = bench.console_tree()
    figures = [
        reported("asyncssh floor: process tree peak RSS", floor.rss_mib, "MiB",
                 f"PSS {floor.pss_mib:.1f} MiB; {floor.processes} processes"),
        reported("console: process tree peak RSS", console.rss_mib, "MiB",
                 f"PSS {console.pss_mib:.1f} MiB; up to {console.processes} processes"),
    ]
    if bench.ansible is not None:
        for which, peak in zip(("cold", "warm"), bench.ansible_trees(), strict=True):
            figures.append(reported(f"ansible {which}: process tree peak RSS", peak.rss_mib,
                                    "MiB", f"PSS {peak.pss_mib:.1f} MiB; up to "
                                    f"{peak.processes} processes"))
    return figures


def run(runs: int = 5) -> list[Figure]:
    if not sshd_available():
        return [reported("fleet: skipped", float("nan"), "s",
                         "needs root and OpenSSH's sshd (apt-get install openssh-server)")]
    print(f"... fleet bench: {HOSTS} sshd hosts; {load_note()} at start", flush=True)
    ansible, why_not = ansible_command()
    if ansible is None:
        print(f"ansible is not measured: {why_not}", flush=True)
    with tempfile.TemporaryDirectory(prefix="console-bench-fleet-") as tmp:
        base = Path(tmp)
        fleet = start_fleet(base / "sshd", HOSTS, first=FIRST)
        try:
            bench = Bench(fleet, base, ansible)
            figures = measure(bench, runs, why_not)
            figures += measure_trees(bench)
        finally:
            fleet.stop()
    return figures


if __name__ == "__main__":
    print_figures(f"steps on {HOSTS} hosts", run(runs_from_argv()))
