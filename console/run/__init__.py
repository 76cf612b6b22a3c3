"""Running a workflow: events, state, executor, engine, control socket."""
