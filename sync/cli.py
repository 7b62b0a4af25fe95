"""The ``teamsync`` command line (thin: parse, call the engine, map errors to exit codes)."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="teamsync",
    help="Keep account teams consistent between Salesforce and Gainsight.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
def emulate(
    accounts: int = typer.Option(200, "--accounts", min=0, help="Accounts in the synthetic org."),
    seed: int = typer.Option(7, "--seed", help="Seed of the synthetic org."),
) -> None:
    """Serve the Salesforce and Gainsight emulators with a synthetic org for manual tries."""
    from emulators.serve import serve_forever

    serve_forever(accounts=accounts, seed=seed)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
