"""A dialog over the run: a modal screen whose footer offers its own keys.

Without a footer of its own, a dialog left the run screen's footer in view (`a Approve
x Deny … q Quit`) while the keys that work were the dialog's: typed into its reason field,
`x` denied nothing. A Dialog mounts its own footer over that row, and while one is open the
app's own keys (help, quit, theme) are not offered (ConsoleApp.check_action): ctrl+q and
ctrl+c still quit.
"""

from __future__ import annotations

from typing import TypeVar

from textual import on
from textual.events import Mount
from textual.screen import ModalScreen
from textual.widgets import Footer

ResultType = TypeVar("ResultType")


class Dialog(ModalScreen[ResultType]):
    @on(Mount)
    def _offer_own_keys(self) -> None:
        self.mount(Footer(compact=True))
