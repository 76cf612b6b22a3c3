"""Turn a step into the exact command the executor runs: argv or script, env, cwd, secrets.

Secrets (`${secret:NAME}` in a step's env) come from this process's environment and are
resolved once, before the run starts; a missing one stops the run there, named.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from console.errors import ParamError, SecretError
from console.exec.base import HostTarget, StepCommand
from console.exec.masking import encoded_forms
from console.run.outputs import prepare_output_file
from console.workflow.fleet import split_instance
from console.workflow.loaded import LoadedWorkflow
from console.workflow.matrix import matrix_env, parse_key
from console.workflow.spec import SECRET_REFERENCE
from console.workflow.templating import (
    TemplateValues,
    references,
    render_argv,
    render_text,
    render_value,
)

MIN_SECRET_LENGTH = 4
MASK = "***"


def param_env(params: Mapping[str, object]) -> dict[str, str]:
    """Params as environment variables: `version` -> PARAM_VERSION."""
    return {f"PARAM_{name.upper()}": render_value(value) for name, value in params.items()}


class StepPreparer:
    def __init__(
        self,
        loaded: LoadedWorkflow,
        params: Mapping[str, str | int | bool],
        run_id: str,
        run_dir: Path,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._loaded = loaded
        self._params = dict(params)
        self._run_id = run_id
        self._run_dir = run_dir
        self._base_dir = loaded.base_dir
        self._environ = dict(os.environ if environ is None else environ)
        self._secret_values = self._resolve_secrets()
        secret_params = [
            str(params[name])
            for name, decl in loaded.model.params.items()
            if decl.secret and name in params
        ]
        values = {*self._secret_values.values(), *secret_params}
        # What a step may print: each secret as it is and, when long enough to mask safely,
        # encoded (base64, hex, percent-encoding).
        forms = {form for value in values if len(value) >= MIN_SECRET_LENGTH
                 for form in encoded_forms(value)}
        self.secrets: tuple[str, ...] = tuple(sorted(values | forms, key=len, reverse=True))
        self._base_env = {**param_env(self._params), "CONSOLE_RUN_ID": run_id}
        # Argv that only params fill is rendered once; outputs and matrix values, per attempt.
        self._argv = {
            step_id: render_argv(step.run, self._params)
            for step_id, step in loaded.steps.items()
            if isinstance(step.run, list) and _params_only(step.run)
        }

    def add_secrets(self, values: Iterable[str]) -> None:
        """Secret outputs, once known: masked in every later log, record and command."""
        new = {v for v in values if v}
        forms = {form for value in new if len(value) >= MIN_SECRET_LENGTH
                 for form in encoded_forms(value)}
        merged = set(self.secrets) | new | forms
        self.secrets = tuple(sorted(merged, key=len, reverse=True))

    def _resolve_secrets(self) -> dict[str, str]:
        needed: dict[str, list[str]] = {}
        for step_id, step in self._loaded.steps.items():
            for name in step.secret_names:
                needed.setdefault(name, []).append(step_id)
        values: dict[str, str] = {}
        for name, steps in needed.items():
            value = self._environ.get(name)
            where = ", ".join(f"steps.{s}.env" for s in steps)
            if value is None:
                raise SecretError(
                    f"secret {name!r} is not set ({where} uses ${{secret:{name}}}) — export "
                    f"{name} in the environment that starts the run"
                )
            if len(value) < MIN_SECRET_LENGTH:
                raise SecretError(
                    f"secret {name!r} is shorter than {MIN_SECRET_LENGTH} characters ({where}); "
                    "masking it would blank out ordinary output — use a real secret"
                )
            values[name] = value
        return values

    def mask(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text

    def masked_params(self) -> dict[str, object]:
        decls = self._loaded.model.params
        return {
            name: (MASK if name in decls and decls[name].secret else value)
            for name, value in self._params.items()
        }

    def display_command(
        self, unit: str, outputs: Mapping[str, Mapping[str, str]] | None = None
    ) -> tuple[str, ...] | str:
        run = self._loaded.steps[self._step_id(unit)].run
        if isinstance(run, str):
            return self.mask(run)
        try:
            argv = self._render_argv(unit, outputs or {})
        except ParamError:
            argv = tuple(run)  # not yet renderable (outputs to come): shown as written
        return tuple(self.mask(arg) for arg in argv)

    def _step_id(self, unit: str) -> str:
        parts = split_instance(unit)
        return parts[0] if parts else unit

    def _values(self, unit: str, outputs: Mapping[str, Mapping[str, str]]) -> TemplateValues:
        parts = split_instance(unit)
        is_matrix = parts is not None and parts[0] in self._loaded.matrices
        matrix = parse_key(parts[1]) if parts is not None and is_matrix else {}
        return TemplateValues(self._params, outputs, matrix)

    def _render_argv(self, unit: str, outputs: Mapping[str, Mapping[str, str]]
                     ) -> tuple[str, ...]:
        step_id = self._step_id(unit)
        if step_id in self._argv:
            return self._argv[step_id]
        run = self._loaded.steps[step_id].run
        assert isinstance(run, list)
        return render_argv(run, self._values(unit, outputs), where=f"steps.{step_id}.run")

    def output_path(self, unit: str, attempt: int) -> Path:
        return self._run_dir / "outputs" / f"{unit}.{attempt}"

    def log_path(self, step_id: str, attempt: int) -> Path:
        return self._run_dir / f"{step_id}.{attempt}.log"

    def command(
        self, unit: str, attempt: int, outputs: Mapping[str, Mapping[str, str]] | None = None
    ) -> StepCommand:
        """The attempt of a step, or of one instance of it (`deploy[web-03]`,
        `deploy[region=eu]`). Raises ParamError if a template cannot be filled."""
        parts = split_instance(unit)
        step_id = parts[0] if parts else unit
        step = self._loaded.steps[step_id]
        env = dict(self._base_env)
        if parts is not None or step.env:  # else nothing here to fill in
            values = self._values(unit, outputs or {})
            env.update(matrix_env(values.matrix))
            for key, value in step.env.items():
                value = SECRET_REFERENCE.sub(lambda m: self._secret_values[m.group(1)], value)
                env[key] = render_text(value, f"steps.{step_id}.env.{key}", values)
        env["CONSOLE_STEP"] = step_id
        env["CONSOLE_ATTEMPT"] = str(attempt)
        if step.outputs is not None:
            output_file = self.output_path(unit, attempt)
            prepare_output_file(output_file)
            env["CONSOLE_OUTPUT"] = str(output_file)
        on_host = parts is not None and step_id in self._loaded.targets
        host = self._host(parts[1]) if parts is not None and on_host else None
        if host is not None:
            env["CONSOLE_HOST"] = host.name
            env["CONSOLE_INSTANCE"] = unit
        cwd = self._base_dir / step.cwd if step.cwd else self._base_dir
        if isinstance(step.run, str):
            argv, script = None, step.run
        else:
            argv, script = self._render_argv(unit, outputs or {}), None
        return StepCommand(
            step_id=unit,
            attempt=attempt,
            argv=argv,
            script=script,
            env=env,
            cwd=cwd,
            timeout_s=step.timeout,
            log_path=self.log_path(unit, attempt),
            secrets=self.secrets,
            machine_env=self._environ,
            host=host,
            remote_cwd=step.cwd if host is not None else None,
        )

    def _host(self, name: str) -> HostTarget:
        entry = self._loaded.inventory.hosts[name]
        return HostTarget(
            name=name,
            address=entry.host.address,
            port=entry.host.port,
            user=entry.host.user,
            identity=str(entry.identity) if entry.identity else None,
            known_hosts=str(entry.known_hosts) if entry.known_hosts else None,
            connect_timeout_s=entry.connect_timeout_s,
        )


def _params_only(argv: list[str]) -> bool:
    return all(ref.kind == "params" for element in argv for ref in references(element))
