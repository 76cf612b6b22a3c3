"""console: a keyboard-first terminal console for deployment workflows."""

from __future__ import annotations

__version__ = "0.1.0"
