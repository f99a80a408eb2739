"""`python -m gateway.cli`: the same as the `clearinghouse` command."""

from gateway.cli import main

main()
