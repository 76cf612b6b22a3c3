"""The workflow format: model, loader and DAG (pure: no I/O beyond reading the file)."""
