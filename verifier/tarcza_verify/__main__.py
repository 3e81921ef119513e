"""``python -m tarcza_verify``: the ``tarcza-verify`` command."""

from tarcza_verify.cli import main

raise SystemExit(main())
