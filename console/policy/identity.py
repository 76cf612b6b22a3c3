"""Who someone is, as the operating system says: a uid, its user name and its groups.

Identity never comes from USER, LOGNAME or a flag: the UI uses the process's own uid and
the control socket uses the peer's credentials, and both resolve names and groups here.
"""

from __future__ import annotations

import grp
import os
import pwd
from dataclasses import dataclass

from console.errors import UsageError


@dataclass(frozen=True)
class Identity:
    user: str
    uid: int
    groups: frozenset[str]

    def matches(self, approver: str) -> bool:
        """True when `approver` ("alice" or "@sre") names this person or one of their groups."""
        if approver.startswith("@"):
            return approver[1:] in self.groups
        return approver == self.user


def identity_for_uid(uid: int) -> Identity:
    """Resolve a uid through the system's user and group databases (NSS).

    A uid without a passwd entry (a container, a deleted account) is still someone: it is
    named "uid:<n>" and belongs to no group, so it can only approve where anyone may.
    """
    try:
        entry = pwd.getpwuid(uid)
    except KeyError:
        return Identity(user=f"uid:{uid}", uid=uid, groups=frozenset())
    return Identity(user=entry.pw_name, uid=uid, groups=_group_names(entry.pw_name, entry.pw_gid))


def identity_for_user(name: str) -> Identity:
    """The identity of a user named on the command line (`console plan --as NAME`)."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise UsageError(
            f"there is no user {name!r} on this host — give a login name from /etc/passwd"
        ) from None
    return Identity(user=entry.pw_name, uid=entry.pw_uid,
                    groups=_group_names(entry.pw_name, entry.pw_gid))


def current_identity() -> Identity:
    """The person running this process, from its real uid."""
    return identity_for_uid(os.getuid())


def _group_names(user: str, primary_gid: int) -> frozenset[str]:
    names: set[str] = set()
    for gid in os.getgrouplist(user, primary_gid):
        try:
            names.add(grp.getgrgid(gid).gr_name)
        except KeyError:
            # A gid with no group entry has no name an approver list could use.
            continue
    return frozenset(names)
