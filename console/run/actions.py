"""What a person can do to a live run. The UI and the control socket both call these.

The caller passes only the uid the operating system vouches for (the process's own uid
in the UI, SO_PEERCRED on the socket); the engine resolves name and groups itself.
"""

from __future__ import annotations

from typing import Protocol

from console.policy.verdict import Verdict


class RunActions(Protocol):
    run_id: str

    def approve(self, step: str, uid: int, via: str, reason: str | None) -> Verdict: ...

    def deny(self, step: str, uid: int, via: str, reason: str) -> Verdict: ...

    def override(self, step: str, uid: int, via: str, reason: str) -> Verdict: ...

    def cancel_step(self, step: str, uid: int, via: str) -> Verdict: ...

    def cancel_run(self, uid: int, via: str) -> Verdict: ...

    def retry_step(self, step: str, uid: int, via: str) -> Verdict: ...
