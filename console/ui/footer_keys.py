"""Which of a widget's or screen's keys the footer offers, changed while it runs."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection

from textual.dom import DOMNode


def offer_keys(node: DOMNode, actions: Collection[str], offered: Callable[[str], bool]) -> None:
    """Show in the footer those of `actions` that `offered` says, hide the rest of them;
    the keys still answer either way. Other bindings are left as they are."""
    changed = False
    for key, bindings in node._bindings.key_to_bindings.items():
        new = [dataclasses.replace(b, show=offered(b.action))
               if b.action in actions and b.show != offered(b.action) else b
               for b in bindings]
        if new != bindings:
            node._bindings.key_to_bindings[key] = new
            changed = True
    if changed:
        node.refresh_bindings()
