"""Running a workflow: the scheduler, state, gates, engine, control socket."""
