"""Send each attempt to the executor for where it runs: this machine, or a host over SSH.

The SSH executor (and asyncssh with it) is made on the first attempt for a host, so a
workflow without hosts never imports it.
"""

from __future__ import annotations

from collections.abc import Callable

from console.exec.base import ExecResult, Executor, Started, StepCommand


class RoutingExecutor:
    def __init__(self, local: Executor, *, grace_s: float) -> None:
        self._local = local
        self._grace_s = grace_s
        self._remote: Executor | None = None

    def _remote_executor(self) -> Executor:
        if self._remote is None:
            from console.exec.ssh import SshExecutor

            self._remote = SshExecutor(grace_s=self._grace_s)
        return self._remote

    async def run(
        self, cmd: StepCommand, on_started: Callable[[Started], None] | None = None
    ) -> ExecResult:
        executor = self._local if cmd.host is None else self._remote_executor()
        return await executor.run(cmd, on_started)

    def cancel(self, step_id: str) -> None:
        self._local.cancel(step_id)
        if self._remote is not None:
            self._remote.cancel(step_id)

    async def shutdown(self) -> None:
        try:
            if self._remote is not None:
                await self._remote.shutdown()
        finally:
            await self._local.shutdown()
