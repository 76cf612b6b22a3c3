"""A bastion in a temp directory for team-mode tests: a service user, engineers in a group,
the service's config, its allowed workflows (bluegreen's copy, root's), its credentials
(the service user's, 0600), a syslog daemon stand-in, and `console serve` started as root.

The syslog stand-in is what a syslog daemon does for /dev/log: a root process reading
datagrams from a Unix socket anyone may send to, appending each as a line to a root-owned
file (`Mon DD HH:MM:SS host TAG[PID]: MSG`), which the service user cannot write.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.engine.cli_runs import records, wait_for
from tests.multiuser import Account, Accounts, SharedPython, reachable_dir, run_as

REPO = Path(__file__).resolve().parents[2]

SYSLOG_RECEIVER = r"""
import os, socket, sys, time
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o666)
print("ready", flush=True)
with open(sys.argv[2], "a") as out:
    while True:
        data = sock.recv(65536).decode("utf-8", "replace")
        message = data.split(">", 1)[1] if data.startswith("<") else data
        out.write(time.strftime("%b %d %H:%M:%S ") + "bastion " + message + "\n")
        out.flush()
"""

GATED = """
[workflow]
name = "gated-{tag}"
lock = "gated-{tag}"
[steps.build]
run = "echo built"
[steps.release]
needs = ["build"]
run = "echo released"
approval = {{ approvals = 1 }}
[steps.cleanup]
needs = ["release"]
if = "always"
run = "echo cleaned"
"""

# What the copy of deploy.sh adds: proof of who ran it and with which credential.
PROOF = (
    '\nprintf \'%s %s\\n\' "$(id -un)" "$(printf %s "$DEPLOY_TOKEN" | sha256sum | cut -c1-64)"'
    ' > "$WORKDIR/deployed-by"\n'
)


@dataclass
class ServeBox:
    base: Path
    python: SharedPython
    service: Account
    group: str
    engineers: dict[str, Account]
    outsider: Account  # a user of the host, not in the group
    token: str
    tag: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    serve: subprocess.Popen[bytes] | None = None

    @property
    def config(self) -> Path:
        return self.base / "etc" / "serve.toml"

    @property
    def workflows(self) -> Path:
        return self.base / "etc" / "workflows"

    @property
    def audit(self) -> Path:
        return self.base / "log" / "audit.jsonl"

    @property
    def syslog(self) -> Path:
        return self.base / "syslog" / "messages"

    @property
    def credentials(self) -> Path:
        return self.base / "etc" / "credentials.env"

    @property
    def runtime(self) -> Path:
        return self.base / "run" / "console" / "runs"

    @property
    def socket(self) -> Path:
        return self.base / "run" / "console" / "serve.sock"

    def env_for(self, user: Account) -> dict[str, str]:
        home = self.base / "home" / user.name
        home.mkdir(parents=True, exist_ok=True)
        os.chown(home, user.uid, -1)
        return {"CONSOLE_SERVE_CONFIG": str(self.config), "HOME": str(home),
                "XDG_STATE_HOME": str(home / "state"), "XDG_CONFIG_HOME": str(home / "config"),
                "CONSOLE_RUNTIME_DIR": str(home / "runtime"), "TERM": "xterm-256color",
                "PYTHONPATH": ""}

    def console_as(self, user: Account, *args: str) -> subprocess.CompletedProcess[str]:
        return run_as(user, self.python.console(*args), env=self.env_for(user))

    def start_serve(self) -> None:
        log = (self.base / "serve.log").open("ab")
        self.serve = subprocess.Popen(
            self.python.console("serve", "--config", str(self.config)),
            stdout=log, stderr=log, start_new_session=True,
            env={"PATH": os.environ["PATH"]},
        )
        log.close()
        wait_for("console serve listening", lambda: "serving on" in self.serve_log(), 30)

    def serve_log(self) -> str:
        path = self.base / "serve.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def host_pids(self) -> list[int]:
        return [r["data"]["pid"] for r in records(self.audit) if r["type"] == "run.started"]

    def close(self) -> None:
        for process in [self.serve, *self.processes]:
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
        for pid in self.host_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for run in {r["run"] for r in records(self.audit)}:
            shutil.rmtree(f"/tmp/console-demo-{run}", ignore_errors=True)
        shutil.rmtree(self.base, ignore_errors=True)


def make_box(accounts: Accounts, python: SharedPython) -> ServeBox:
    tag = uuid.uuid4().hex[:6]
    group = accounts.group(f"ctd{tag}")
    service = accounts.user("svc")
    engineers = {
        "alice": accounts.user("alice", groups=[group, "sre"]),
        "bob": accounts.user("bob", groups=[group, "sre"]),
        "carol": accounts.user("carol", groups=[group, "release"]),
    }
    base = reachable_dir("console-serve-", 0o755)
    box = ServeBox(base, python, service, group, engineers, accounts.user("dave"),
                   f"s3cret-{secrets.token_hex(8)}", tag)
    etc = base / "etc"
    etc.mkdir(mode=0o755)
    _copy_bluegreen(box)
    (box.workflows / "gated.toml").write_text(GATED.format(tag=tag))
    box.credentials.write_text(f"# the service's credentials\nDEPLOY_TOKEN={box.token}\n")
    os.chown(box.credentials, service.uid, service.gid)
    box.credentials.chmod(0o600)
    (base / "syslog").mkdir(mode=0o755)
    receiver = subprocess.Popen(
        [sys.executable, "-c", SYSLOG_RECEIVER, str(base / "syslog" / "log.sock"),
         str(box.syslog)], stdout=subprocess.PIPE,
    )
    box.processes.append(receiver)
    assert receiver.stdout is not None and receiver.stdout.readline() == b"ready\n"
    box.config.write_text(
        f'user = "{service.name}"\n'
        f'groups = ["{group}"]\n'
        f'workflows = ["{box.workflows}"]\n'
        f'socket = "{box.socket}"\n'
        f'runtime_dir = "{box.runtime}"\n'
        f'state_dir = "{base / "lib"}"\n'
        f'audit = "{box.audit}"\n'
        f'credentials = "{box.credentials}"\n'
        f'syslog_socket = "{base / "syslog" / "log.sock"}"\n'
        f'journal_file = "{box.syslog}"\n'
        'head_interval = "1s"\n'
    )
    return box


def _copy_bluegreen(box: ServeBox) -> None:
    """bluegreen as shipped, root's; its lock made unique (other test sessions on this host
    run bluegreen too), Friday's freeze left out (the test must not depend on the weekday),
    and deploy-green given the service's credential, which its script proves it had."""
    shutil.copytree(REPO / "workflows", box.workflows)
    for path in box.workflows.rglob("*"):
        os.chown(path, 0, 0)
    flow = box.workflows / "bluegreen.toml"
    text = flow.read_text().replace('lock = "payments-deploy"', f'lock = "bluegreen-{box.tag}"')
    text = text.replace(
        '[steps.deploy-green]\n',
        '[steps.deploy-green]\nenv = { DEPLOY_TOKEN = "${secret:DEPLOY_TOKEN}" }\n',
    )
    flow.write_text(text)
    policies = box.workflows / "policies" / "prod.toml"
    kept = policies.read_text().split('[[policy]]\nname = "Friday freeze"')[0]
    rest = policies.read_text().split('[[policy]]\nname = "only release builds')[1]
    policies.write_text(kept + '[[policy]]\nname = "only release builds' + rest)
    script = box.workflows / "scripts" / "deploy.sh"
    script.write_text(script.read_text() + PROOF)
