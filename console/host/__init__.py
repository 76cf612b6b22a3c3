"""Where a run lives: its host (lock, audit, run directory, socket, signals) and the handles
through which a UI sees and acts on it (DESIGN.md, "Where a run lives")."""
