"""``python -m sync.cli``: the same as the ``teamsync`` console script."""

from sync.cli.app import main

main()
