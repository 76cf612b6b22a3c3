"""Lock names become abstract socket names, so they are checked before any socket is made."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.errors import LockError
from console.run.lock import MAX_NAME_LENGTH, WorkflowLock


@pytest.mark.parametrize("name", ["a", "payments-prod", "db.v2_main", "9" * MAX_NAME_LENGTH])
def test_a_valid_name_is_shown_as_its_abstract_socket(name: str) -> None:
    lock = WorkflowLock(Path("/unused"), name)
    assert lock.name == name
    assert lock.path == f"@console-lock/{name}"


@pytest.mark.parametrize(
    "name",
    ["", "-x", ".hidden", "a/b", "../etc", "a b", "a\n", "a\0b", "é", "x" * (MAX_NAME_LENGTH + 1)],
)
def test_an_invalid_name_says_what_is_allowed_and_where(name: str) -> None:
    with pytest.raises(LockError) as caught:
        WorkflowLock(Path("/unused"), name)
    message = str(caught.value)
    assert repr(name) in message
    assert "`[workflow] lock`" in message
    assert f"1 to {MAX_NAME_LENGTH} letters, digits" in message
