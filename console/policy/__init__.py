"""Policy as code: rules, CEL conditions and the decisions they produce (no UI imports)."""
