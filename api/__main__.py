"""``python -m api`` runs the ``tarcza`` command line."""

from api.cli import main

main()
