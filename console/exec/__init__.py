"""Executors: where and how a step attempt runs (this machine, or a host over SSH)."""
