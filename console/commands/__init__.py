"""One module per CLI subcommand; cli.py only parses arguments and dispatches here."""
