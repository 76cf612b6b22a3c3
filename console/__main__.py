from __future__ import annotations

from console.startup import starting

starting()  # before the imports: see console/startup.py

from console.cli import run  # noqa: E402

run()
