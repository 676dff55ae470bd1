"""``python -m tr_qa`` runs the CLI."""

from tr_qa.cli import main

main()
