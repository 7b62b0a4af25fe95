"""The ``teamsync`` command: the typer app, its reports, the demo and the daemon's scheduler."""
