"""A workflow as the run uses it: plain read-only records, built from what validation accepted.

console/workflow/model.py (pydantic) decides what a valid file is; this module holds the
result without pydantic, so that a run of a workflow already validated (the same bytes,
console/workflow/plan_cache.py) starts without importing pydantic at all. The records have
the models' field names and defaults; `workflow_from_dump` and the other `*_from_dump`
build them from a model's `model_dump()`, the one way they are made from a file, fresh or
cached. tests/unit/test_workflow_spec.py checks the two sides keep the same fields.

The records are NamedTuples: creating a class costs ~0.1 ms of start-up against ~1 ms for
a frozen dataclass. Like the models they replace, they are never changed once built, lists
included (a default list is shared by every record that takes it).
"""

from __future__ import annotations

import re
from typing import Any, Literal, NamedTuple, Protocol, TypeVar

STEP_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
PARAM_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
SECRET_REFERENCE = re.compile(r"\$\{secret:([A-Za-z_][A-Za-z0-9_]*)\}")
DURATION_PATTERN = r"^\s*(\d+(\.\d+)?(ms|h|m|s)\s*)+$"
OUTPUT_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
MATRIX_KEY_PATTERN = r"^[a-z][a-z0-9_]*$"
MATRIX_VALUE_PATTERN = r"^[A-Za-z0-9_.:-]+$"
HOST_NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]*$"
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_SHARE = re.compile(r"^(\d{1,3})%$")
_TRUE = ("true", "yes", "1", "on")
_FALSE = ("false", "no", "0", "off")
Weekday = Literal["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
WEEKDAYS: tuple[Weekday, ...] = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MatrixValue = str | int | bool
_Record = TypeVar("_Record")


def parse_duration(value: object) -> float:
    """Turn "1h30m", "90s", "250ms" (or a bare number of seconds) into seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration is a string such as \"90s\", \"10m\" or \"1h30m\"")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if not isinstance(value, str):
        raise ValueError("a duration is a string such as \"90s\", \"10m\" or \"1h30m\"")
    text = value.replace(" ", "")
    if not text or _DURATION_PART.sub("", text):
        raise ValueError(
            f"{value!r} is not a duration — write it as \"90s\", \"10m\", \"1h30m\" or \"500ms\""
        )
    return sum(float(n) * _DURATION_UNITS[unit] for n, unit in _DURATION_PART.findall(text))


def format_duration(seconds: float) -> str:
    """The inverse of parse_duration, for messages: 5400.0 -> "1h30m"."""
    if seconds < 1 and seconds != 0:
        return f"{round(seconds * 1000)}ms"
    hours, rest = divmod(round(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "",
             f"{secs}s" if secs else ""]
    return "".join(parts) or "0s"


def parse_share(value: object, *, zero_ok: bool) -> int | str:
    """A count (int) or a percentage ("25%"), checked; raises ValueError with a fix."""
    lowest = 0 if zero_ok else 1
    if isinstance(value, int) and not isinstance(value, bool):
        if value < lowest:
            raise ValueError(f"{value} is below {lowest} — give a count of hosts, or \"25%\"")
        return value
    if isinstance(value, str):
        found = _SHARE.match(value.strip())
        if found and lowest <= int(found.group(1)) <= 100:
            return f"{int(found.group(1))}%"
    raise ValueError(f"{value!r} is not a count or a percentage — write 2 or \"25%\" "
                     f"({lowest}-100%)")


class ParamDeclaration(Protocol):
    """What checking a param's value reads: a `[params]` entry, validated or not yet."""

    @property
    def type(self) -> str: ...
    @property
    def pattern(self) -> str | None: ...
    @property
    def choices(self) -> list[str] | None: ...


def coerce_param_value(param: ParamDeclaration, raw: object) -> str | int | bool:
    """Check a value (from TOML, `-p k=v` or a form) against its declaration.

    Raises ValueError with a message that says what is expected.
    """
    if param.type == "bool":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in _TRUE + _FALSE:
            return raw.lower() in _TRUE
        raise ValueError(f"{raw!r} is not a bool — use true or false")
    if param.type == "int":
        if isinstance(raw, bool):
            raise ValueError(f"{raw!r} is not an int — use a whole number such as 3")
        if isinstance(raw, int):
            return raw
        if isinstance(raw, str) and re.fullmatch(r"[+-]?\d+", raw.strip()):
            return int(raw)
        raise ValueError(f"{raw!r} is not an int — use a whole number such as 3")
    if not isinstance(raw, str) or isinstance(raw, bool):
        raise ValueError(f"{raw!r} is not a string — quote it")
    if param.type == "choice":
        assert param.choices is not None
        if raw not in param.choices:
            raise ValueError(f"{raw!r} is not one of {', '.join(param.choices)}")
        return raw
    if param.pattern is not None and re.search(param.pattern, raw) is None:
        raise ValueError(f"{raw!r} does not match the pattern {param.pattern}")
    return raw


class WorkflowMeta(NamedTuple):
    name: str
    description: str = ""
    concurrency: int | None = None
    lock: str | None = None
    audit: str | None = None
    policies: list[str] = []
    cleanup_timeout: float = 300.0
    inventory: str | None = None
    known_hosts: str | None = None
    connect_timeout: float = 10.0


class Param(NamedTuple):
    type: Literal["string", "int", "bool", "choice"]
    description: str = ""
    pattern: str | None = None
    choices: list[str] | None = None
    default: str | int | bool | None = None
    required: bool | None = None
    secret: bool = False

    @property
    def is_required(self) -> bool:
        if self.required is not None:
            return self.required
        return self.default is None


class Retry(NamedTuple):
    attempts: int = 1
    delay: float = 0.0
    backoff: float = 1.0
    max_delay: float | None = None

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before attempt number `attempt` (2, 3, ...)."""
        delay = self.delay * self.backoff ** max(0, attempt - 2)
        return min(delay, self.max_delay) if self.max_delay is not None else delay


class Approval(NamedTuple):
    approvals: int = 1
    approvers: list[str] = []
    reason: bool = False
    timeout: float | None = None
    separation_of_duties: bool = False


class Host(NamedTuple):
    """A machine steps can run on over SSH: `[hosts.web-01]`."""

    address: str
    port: int = 22
    user: str | None = None
    groups: list[str] = []
    identity: str | None = None


class Strategy(NamedTuple):
    """How a step's hosts are taken: in waves, within a failure budget for the whole fleet."""

    waves: list[int | str] = ["100%"]
    max_failures: int | str = 0
    pause: float = 0.0
    approve_between: bool = False


class OutputSpec(NamedTuple):
    secret: bool = False


class Step(NamedTuple):
    run: list[str] | str
    needs: list[str] = []
    env: dict[str, str] = {}
    cwd: str | None = None
    timeout: float | None = None
    retry: Retry = Retry()
    if_: Literal["success", "failure", "always"] = "success"
    tags: list[str] = []
    description: str = ""
    approval: Approval | None = None
    on: str | list[str] | None = None
    strategy: Strategy | None = None
    outputs: list[str] | dict[str, OutputSpec] | None = None
    matrix: dict[str, list[MatrixValue] | list[dict[str, MatrixValue]]] | None = None

    @property
    def output_specs(self) -> dict[str, bool]:
        """Declared output -> whether it is secret."""
        if self.outputs is None:
            return {}
        if isinstance(self.outputs, list):
            return dict.fromkeys(self.outputs, False)
        return {name: spec.secret for name, spec in self.outputs.items()}

    @property
    def secret_names(self) -> list[str]:
        return [m.group(1) for v in self.env.values() for m in SECRET_REFERENCE.finditer(v)]


class Match(NamedTuple):
    tags: list[str] = []
    steps: list[str] = []


class Window(NamedTuple):
    weekdays: list[Weekday] = list(WEEKDAYS)
    from_: str = "00:00"
    to: str = "23:59"
    tz: str = "UTC"


class PolicyRule(NamedTuple):
    name: str
    effect: Literal["allow", "require_approval", "deny"]
    description: str = ""
    match: Match | None = None
    level: Literal["advisory", "soft", "hard"] = "hard"
    approvals: int = 1
    approvers: list[str] = []
    separation_of_duties: bool = False
    reason: bool = False
    timeout: float | None = None
    during: Window | None = None
    when: str | None = None
    override_by: list[str] = []


class Workflow(NamedTuple):
    """A whole workflow file, validated."""

    workflow: WorkflowMeta
    steps: dict[str, Step]
    params: dict[str, Param] = {}
    policy: list[PolicyRule] = []
    hosts: dict[str, Host] = {}


class InventoryFile(NamedTuple):
    """A shared inventory file, validated."""

    known_hosts: str | None = None
    connect_timeout: float | None = None
    hosts: dict[str, Host] = {}


# --- built from a validated model's model_dump() (plain dicts, lists and scalars) ---------

def workflow_from_dump(data: dict[str, Any]) -> Workflow:
    return Workflow(
        workflow=WorkflowMeta(**data["workflow"]),
        steps={sid: _step(step) for sid, step in data["steps"].items()},
        params={name: Param(**param) for name, param in data["params"].items()},
        policy=policy_from_dump(data["policy"]),
        hosts=_hosts(data["hosts"]),
    )


def policy_from_dump(rules: list[dict[str, Any]]) -> list[PolicyRule]:
    return [PolicyRule(**{**rule,
                          "match": _optional(Match, rule["match"]),
                          "during": _optional(Window, rule["during"])})
            for rule in rules]


def inventory_from_dump(data: dict[str, Any]) -> InventoryFile:
    return InventoryFile(known_hosts=data["known_hosts"], connect_timeout=data["connect_timeout"],
                         hosts=_hosts(data["hosts"]))


def _hosts(data: dict[str, dict[str, Any]]) -> dict[str, Host]:
    return {name: Host(**host) for name, host in data.items()}


def _step(data: dict[str, Any]) -> Step:
    outputs = data["outputs"]
    if isinstance(outputs, dict):
        outputs = {name: OutputSpec(**spec) for name, spec in outputs.items()}
    return Step(**{**data,
                   "retry": Retry(**data["retry"]),
                   "approval": _optional(Approval, data["approval"]),
                   "strategy": _optional(Strategy, data["strategy"]),
                   "outputs": outputs})


def _optional(kind: type[_Record], data: dict[str, Any] | None) -> _Record | None:
    return None if data is None else kind(**data)
