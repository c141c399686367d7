"""`python -m aifactory` is the `aifactory` command."""

from aifactory.cli.main import main

main()
