"""Hosts, groups, `on` and `strategy`: what the loader accepts, each mistake reported at its
place with a fix, and the wave arithmetic (the failure budget is for the whole fleet)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.errors import WorkflowError
from console.workflow.fleet import failures_allowed, split_instance, wave_sizes, waves_of
from console.workflow.loader import load_workflow
from console.workflow.spec import Strategy

INVENTORY = """
known_hosts = "known_hosts"
connect_timeout = "3s"
[hosts.web-01]
address = "127.0.0.2"
port = 2222
groups = ["web"]
[hosts.web-02]
address = "127.0.0.3"
port = 2222
user = "deploy"
identity = "keys/id_ed25519"
groups = ["web", "canary"]
"""


def _write(tmp_path: Path, workflow: str, inventory: str | None = INVENTORY) -> Path:
    if inventory is not None:
        (tmp_path / "hosts.toml").write_text(textwrap.dedent(inventory))
    path = tmp_path / "wf.toml"
    path.write_text(textwrap.dedent(workflow))
    return path


def _problems(path: Path) -> str:
    with pytest.raises(WorkflowError) as caught:
        load_workflow(path)
    return str(caught.value)


def test_a_step_on_a_group_runs_on_its_hosts_with_paths_made_absolute(tmp_path: Path) -> None:
    path = _write(tmp_path, """
        [workflow]
        name = "fleet"
        inventory = "hosts.toml"
        [hosts.db-01]
        address = "db-01.example.com"
        groups = ["db"]
        [steps.deploy]
        run = "echo deployed"
        on = "@web"
        strategy = { waves = [1, "100%"], max_failures = "50%", pause = "2s" }
        [steps.migrate]
        run = "true"
        on = ["db-01", "web-02"]
        """)
    loaded = load_workflow(path)
    assert loaded.targets == {"deploy": ("web-01", "web-02"), "migrate": ("db-01", "web-02")}
    web2 = loaded.inventory.hosts["web-02"]
    assert web2.host.port == 2222 and web2.host.user == "deploy"
    assert web2.identity == tmp_path / "keys" / "id_ed25519"
    assert web2.known_hosts == tmp_path / "known_hosts"
    assert web2.connect_timeout_s == 3.0
    assert loaded.inventory.hosts["db-01"].known_hosts is None  # the user's own
    assert str(tmp_path / "hosts.toml") in loaded.file_hashes  # resume binds to it too
    assert loaded.strategy("deploy").pause == 2.0


def test_every_inventory_mistake_is_named_at_its_place(tmp_path: Path) -> None:
    path = _write(tmp_path, """
        [workflow]
        name = "fleet"
        inventory = "hosts.toml"
        [hosts.web-02]
        address = "300.1.1.1"
        port = 70000
        groups = ["web"]
        [steps.deploy]
        run = "echo hi"
        on = "@wbe"
        strategy = { waves = [1, "25%", 0], max_failures = "110%" }
        [steps.check]
        run = "true"
        on = ["web-01", "web-9", "web", "web-01"]
        [steps.alone]
        run = "true"
        strategy = { waves = [1] }
        """, INVENTORY + '[hosts.db-01]\naddress = "127.0.0.4"\n')
    text = _problems(path)
    assert "wf.toml:5:1: hosts.web-02: host `web-02` is also defined in the inventory (" in text
    assert "hosts.toml:8) — define each host once" in text
    assert "hosts.web-02.address: '300.1.1.1' is neither an IP address nor a host name" in text
    assert "hosts.web-02.port" in text
    assert "steps.deploy.on: no host group `@wbe` — did you mean `@web`?" in text
    assert "steps.deploy.strategy.waves[2]: 0 is below 1" in text
    assert "steps.deploy.strategy.max_failures" in text
    assert "steps.check.on[1]: no host named `web-9`" in text
    assert 'steps.check.on[2]: no host named `web` — `web` is a group: write on = "@web"' in text
    assert "steps.check.on[3]: host `web-01` is listed twice" in text
    assert "steps.alone.strategy: `strategy` without `on` or `matrix`" in text
    assert "hosts.toml:14:1: hosts.db-01: host `db-01` is in no group — add groups" in text


def test_on_without_any_host_and_a_missing_inventory_say_how_to_fix(tmp_path: Path) -> None:
    path = _write(tmp_path, """
        [workflow]
        name = "fleet"
        [steps.deploy]
        run = "true"
        on = "@web"
        """, None)
    assert "no hosts are defined — add [hosts.NAME] tables" in _problems(path)
    path = _write(tmp_path, """
        [workflow]
        name = "fleet"
        inventory = "nowhere.toml"
        [steps.deploy]
        run = "true"
        """, None)
    text = _problems(path)
    assert "wf.toml:4:13: workflow.inventory: inventory file " in text
    assert "nowhere.toml: not found" in text and "relative to the workflow file" in text


@pytest.mark.parametrize(("waves", "total", "sizes"), [
    ([1, "25%", "100%"], 20, [1, 5, 14]),
    (["100%"], 20, [20]),
    ([2], 5, [2, 2, 1]),
    (["10%"], 3, [1, 1, 1]),
    ([1, "50%"], 1, [1]),
    ([5], 0, []),
])
def test_wave_sizes_follow_serial(waves: list[int | str], total: int, sizes: list[int]) -> None:
    assert wave_sizes(Strategy(waves=waves), total) == sizes


def test_the_failure_budget_is_for_the_whole_fleet() -> None:
    assert failures_allowed(Strategy(max_failures="10%"), 20) == 2
    assert failures_allowed(Strategy(max_failures="10%"), 9) == 0
    assert failures_allowed(Strategy(max_failures=3), 20) == 3
    assert failures_allowed(Strategy(), 20) == 0
    hosts = [f"h{i}" for i in range(7)]
    assert waves_of(hosts, Strategy(waves=[1, 3])) == [("h0",), ("h1", "h2", "h3"),
                                                       ("h4", "h5", "h6")]
    assert split_instance("deploy[web-03]") == ("deploy", "web-03")
    assert split_instance("deploy") is None


shares = st.one_of(st.integers(-2, 30), st.sampled_from(["25%", "0%", "100%", "101%", "x", ""]))
host_table = st.fixed_dictionaries({}, optional={
    "address": st.sampled_from(["127.0.0.2", "web-01.example.com", "300.1.1.1", "", "a b"]),
    "port": st.integers(-1, 70000),
    "user": st.sampled_from(["deploy", "", "bad user"]),
    "groups": st.lists(st.sampled_from(["web", "db", "", "Bad"]), max_size=2),
    "identity": st.just("id_key"),
    "extra": st.just(1),
})
hosts = st.dictionaries(st.sampled_from(["web-01", "web-02", "db-01", "Bad Host"]), host_table,
                        max_size=3)
on = st.one_of(st.sampled_from(["@web", "@db", "@nope", "web-01", "", "@"]),
               st.lists(st.sampled_from(["web-01", "db-01", "@web", "zz"]), max_size=3),
               st.integers())
strategy = st.fixed_dictionaries({}, optional={
    "waves": st.lists(shares, max_size=3), "max_failures": shares,
    "pause": st.sampled_from(["1s", "soon", 3]), "approve_between": st.booleans(),
})


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(own=hosts, shared=st.none() | hosts, step_on=st.none() | on,
       step_strategy=st.none() | strategy)
def test_fuzzed_inventories_load_or_fail_with_a_workflow_error(
    own: dict[str, Any], shared: dict[str, Any] | None, step_on: Any, step_strategy: Any,
) -> None:
    step: dict[str, Any] = {"run": "true"}
    if step_on is not None:
        step["on"] = step_on
    if step_strategy is not None:
        step["strategy"] = step_strategy
    data: dict[str, Any] = {"workflow": {"name": "f"}, "steps": {"s": step}, "hosts": own}
    with tempfile.TemporaryDirectory() as directory:
        base = Path(directory)
        if shared is not None:
            data["workflow"]["inventory"] = "hosts.toml"
            (base / "hosts.toml").write_text(tomli_w.dumps({"hosts": shared}))
        (base / "wf.toml").write_text(tomli_w.dumps(data))
        try:
            loaded = load_workflow(base / "wf.toml")
        except WorkflowError as exc:
            assert str(exc).strip()
        else:
            for hosts_of_step in loaded.targets.values():
                assert hosts_of_step and set(hosts_of_step) <= set(loaded.inventory.hosts)


def test_plan_and_graph_show_the_hosts_and_waves(tmp_path: Path) -> None:
    inventory = INVENTORY + "".join(
        f'[hosts.web-{n:02d}]\naddress = "127.0.0.{n + 1}"\ngroups = ["web"]\n'
        for n in range(3, 21))
    path = _write(tmp_path, """
        [workflow]
        name = "fleet"
        inventory = "hosts.toml"
        [steps.deploy]
        run = "echo deployed"
        on = "@web"
        strategy = { waves = [1, "25%", "100%"], max_failures = "10%", approve_between = true }
        """, inventory)
    for command in ("plan", "graph"):
        done = subprocess.run([sys.executable, "-m", "console", command, str(path)],
                              capture_output=True, text=True,
                              env={**os.environ, "COLUMNS": "200"})
        assert done.returncode == 0, done.stderr
        assert ("@web: 20 hosts (web-01 … web-20); waves 1, 5, 14; up to 2 may fail; "
                "approval before each wave after the first") in done.stdout, done.stdout
