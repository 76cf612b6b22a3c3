"""The workflow format: pydantic models for everything a person writes in a workflow file.

Every model forbids unknown keys, so a typo is an error rather than a silent default.
Durations are written as "90s", "10m", "1h30m", "500ms" and held as seconds (float).
These models decide what is valid (and give the JSON Schema); a run holds what they
accepted as the plain records of console/workflow/spec.py, built from `model_dump()`.
"""

from __future__ import annotations

import ipaddress
import re
import sys
import types
from collections.abc import Iterable
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from console.workflow.spec import (
    DURATION_PATTERN,
    HOST_NAME_PATTERN,
    MATRIX_KEY_PATTERN,
    MATRIX_VALUE_PATTERN,
    OUTPUT_NAME_PATTERN,
    PARAM_NAME_PATTERN,
    STEP_ID_PATTERN,
    WEEKDAYS,
    Weekday,
    coerce_param_value,
    parse_duration,
    parse_share,
)


def _no_plugin_discovery() -> None:
    """Pydantic looks for validation plugins the first time it builds a model: it imports
    importlib.metadata (email, zipfile, csv) and reads the entry points of every installed
    distribution, about 20 ms of every start-up. The workflow models use no plugin, so an
    empty loader stands in for pydantic's (PYDANTIC_DISABLE_PLUGINS would skip only the
    reading, and every step would inherit it). Nothing changes if pydantic loaded it first.
    """
    name = "pydantic.plugin._loader"
    if name in sys.modules:
        return
    loader = types.ModuleType(name, "Stands in for pydantic's plugin loader: no plugins.")

    def get_plugins() -> Iterable[Any]:
        return ()

    loader.get_plugins = get_plugins  # type: ignore[attr-defined]
    sys.modules[name] = loader


_no_plugin_discovery()

Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema({"anyOf": [
        {"type": "string", "pattern": DURATION_PATTERN, "examples": ["90s", "10m", "1h30m"]},
        {"type": "number", "minimum": 0, "description": "seconds"},
    ]}),
]
StepId = Annotated[str, Field(pattern=STEP_ID_PATTERN, max_length=128)]
ParamName = Annotated[str, Field(pattern=PARAM_NAME_PATTERN)]
# A user name, or @group for a Unix group.
Approver = Annotated[str, Field(pattern=r"^@?[A-Za-z0-9_][A-Za-z0-9_.-]*$")]
ClockTime = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]
OutputName = Annotated[str, Field(pattern=OUTPUT_NAME_PATTERN, max_length=64)]
MatrixKey = Annotated[str, Field(pattern=MATRIX_KEY_PATTERN, max_length=32)]
MatrixValue = Annotated[
    str | int | bool, Field(union_mode="left_to_right")
]
HostName = Annotated[str, Field(pattern=HOST_NAME_PATTERN, max_length=128)]
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


_SHARE_SCHEMA = WithJsonSchema({"anyOf": [
    {"type": "integer", "minimum": 0}, {"type": "string", "pattern": r"^\d{1,3}%$"},
]})
# How many hosts a wave takes: a count, or a share of the fleet ("25%").
WaveSize = Annotated[
    int | str, BeforeValidator(lambda v: parse_share(v, zero_ok=False)), _SHARE_SCHEMA
]
# How many hosts may fail in the whole fleet before the step fails.
FailureBudget = Annotated[
    int | str, BeforeValidator(lambda v: parse_share(v, zero_ok=True)), _SHARE_SCHEMA
]


class Strict(BaseModel):
    """Base for everything a person writes: unknown keys are errors; values are immutable."""

    # defer_build: each model's validator is built when first used, not at import; loading
    # a workflow builds the Workflow model's once, with every model it holds inside it.
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, defer_build=True
    )


class WorkflowMeta(Strict):
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    concurrency: int | None = Field(default=None, ge=1, le=1024)
    lock: str | None = Field(
        default=None, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
    )
    audit: str | None = None
    policies: list[str] = Field(default_factory=list)
    # How long `if = "always"` steps may take, each attempt and in all after a stop.
    cleanup_timeout: Duration = 300.0
    # Hosts for steps with `on`: a shared inventory file (relative to this file), and how
    # hosts' keys are checked and how long connecting may take (an inventory file's own
    # `known_hosts` and `connect_timeout` win for its hosts).
    inventory: str | None = None
    known_hosts: str | None = None
    connect_timeout: Duration = 10.0


class Param(Strict):
    type: Literal["string", "int", "bool", "choice"]
    description: str = ""
    pattern: str | None = None
    choices: list[str] | None = None
    default: str | int | bool | None = None
    required: bool | None = None
    secret: bool = False

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(
                    f"pattern {value!r} is not a valid regular expression ({exc})"
                    " — fix it; 'single quotes' keep backslashes as written"
                ) from exc
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Param:
        if self.type == "choice" and not self.choices:
            raise ValueError(
                "a choice param needs choices — add `choices = [\"a\", \"b\"]`"
            )
        if self.type != "choice" and self.choices is not None:
            raise ValueError(
                "`choices` only applies to type = \"choice\" — set that type, or remove choices"
            )
        if self.pattern is not None and self.type != "string":
            raise ValueError(
                "`pattern` only applies to type = \"string\" — set that type, or remove pattern"
            )
        if self.default is not None:
            coerce_param_value(self, self.default)
        return self


class Retry(Strict):
    attempts: int = Field(default=1, ge=1, le=100)
    delay: Duration = 0.0
    backoff: float = Field(default=1.0, ge=1.0, le=10.0)
    max_delay: Duration | None = None


class Approval(Strict):
    approvals: int = Field(default=1, ge=1, le=20)
    approvers: list[Approver] = Field(default_factory=list)
    reason: bool = False
    timeout: Duration | None = None
    separation_of_duties: bool = False


class Host(Strict):
    """A machine steps can run on over SSH: `[hosts.web-01]`."""

    address: str = Field(min_length=1, max_length=253)
    port: int = Field(default=22, ge=1, le=65535)
    user: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$")
    groups: list[HostName] = Field(default_factory=list)
    identity: str | None = None  # a private key file; else the SSH agent's keys

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            if not _HOSTNAME.fullmatch(value) or re.fullmatch(r"[\d.]+", value):
                raise ValueError(
                    f"{value!r} is neither an IP address nor a host name"
                    " — write \"10.0.0.5\" or \"web-01.example.com\""
                ) from None
        return value


class Strategy(Strict):
    """How a step's hosts are taken: in waves, within a failure budget for the whole fleet."""

    waves: list[WaveSize] = Field(default_factory=lambda: list[int | str](["100%"]),
                                  min_length=1, max_length=100)
    max_failures: FailureBudget = 0
    pause: Duration = 0.0
    approve_between: bool = False


class OutputSpec(Strict):
    secret: bool = False


class Step(Strict):
    run: list[str] | str
    needs: list[StepId] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    timeout: Duration | None = None
    retry: Retry = Field(default_factory=Retry)
    if_: Literal["success", "failure", "always"] = Field(default="success", alias="if")
    tags: list[str] = Field(default_factory=list)
    description: str = ""
    approval: Approval | None = None
    # Run once per host: "@group", a host name, or a list of host names.
    on: str | list[HostName] | None = None
    strategy: Strategy | None = None
    # What the step hands on: written to $CONSOLE_OUTPUT as key=value lines.
    outputs: list[OutputName] | dict[OutputName, OutputSpec] | None = None
    # Run once per combination: { region = ["eu", "us"], exclude = [...], include = [...] }.
    matrix: dict[str, list[MatrixValue] | list[dict[MatrixKey, MatrixValue]]] | None = None

    @field_validator("matrix")
    @classmethod
    def _matrix(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        axes = {k: v for k, v in value.items() if k not in ("exclude", "include")}
        if not axes and not value.get("include"):
            raise ValueError("a matrix needs at least one key with a list of values"
                             " — e.g. matrix = { region = [\"eu-west\", \"us-east\"] }")
        for key, values in value.items():
            if key in ("exclude", "include"):
                if any(not isinstance(v, dict) for v in values):
                    raise ValueError(f"`{key}` is a list of tables — e.g. {key} = "
                                     "[{ region = \"eu-west\" }]")
                continue
            if not re.fullmatch(MATRIX_KEY_PATTERN, key):
                raise ValueError(f"matrix key {key!r} — use lower-case letters, digits and _")
            if not values:
                raise ValueError(f"matrix key `{key}` has no values")
            for item in values:
                if isinstance(item, dict) or not re.fullmatch(MATRIX_VALUE_PATTERN,
                                                              str(item)):
                    raise ValueError(f"matrix value {item!r} of `{key}` — use letters, "
                                     "digits and . _ : - (it names the instance and its log)")
        return value

    @field_validator("run")
    @classmethod
    def _run_not_empty(cls, value: list[str] | str) -> list[str] | str:
        if isinstance(value, str) and not value.strip():
            raise ValueError("`run` is empty — give a command string or an argv list")
        if isinstance(value, list) and (not value or not value[0]):
            raise ValueError("`run` is an empty list — the first element is the program to run")
        return value

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ValueError(f"{name!r} is not a valid environment variable name")
        return value


class Match(Strict):
    tags: list[str] = Field(default_factory=list)
    steps: list[str] = Field(
        default_factory=list, description="step ids or globs such as 'deploy-*'"
    )


class Window(Strict):
    weekdays: list[Weekday] = Field(
        default_factory=lambda: list(WEEKDAYS)
    )
    from_: ClockTime = Field(default="00:00", alias="from")
    to: ClockTime = "23:59"
    tz: str = "UTC"

    @field_validator("tz")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"{value!r} is not an IANA time zone"
                " — use a name such as \"Europe/Berlin\" or \"UTC\""
            ) from exc
        return value


class PolicyRule(Strict):
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    match: Match | None = None
    effect: Literal["allow", "require_approval", "deny"]
    level: Literal["advisory", "soft", "hard"] = "hard"
    approvals: int = Field(default=1, ge=1, le=20)
    approvers: list[Approver] = Field(default_factory=list)
    separation_of_duties: bool = False
    reason: bool = False
    timeout: Duration | None = None
    during: Window | None = None
    when: str | None = None
    override_by: list[Approver] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> PolicyRule:
        if self.override_by and self.level != "soft":
            raise ValueError(
                "`override_by` only applies to level = \"soft\" — set that level, or remove it"
            )
        if self.level == "soft" and self.effect == "deny" and not self.override_by:
            raise ValueError(
                "a soft deny names no one who may override it"
                " — add override_by = [\"@group\"] or users"
            )
        return self


class Workflow(Strict):
    """A whole workflow file."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        json_schema_extra={"title": "console workflow"},
        defer_build=True,
    )

    workflow: WorkflowMeta
    params: dict[ParamName, Param] = Field(default_factory=dict)
    steps: dict[StepId, Step]
    policy: list[PolicyRule] = Field(default_factory=list)
    hosts: dict[HostName, Host] = Field(default_factory=dict)


class InventoryFile(Strict):
    """A shared inventory (`[workflow] inventory = "hosts.toml"`): hosts and how to reach them."""

    known_hosts: str | None = None
    connect_timeout: Duration | None = None
    hosts: dict[HostName, Host] = Field(default_factory=dict)


class PolicyFile(Strict):
    """A shared policy file: only `[[policy]]` tables."""

    policy: list[PolicyRule] = Field(default_factory=list)


def json_schema() -> dict[str, Any]:
    return Workflow.model_json_schema(by_alias=True)
