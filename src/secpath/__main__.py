"""``python -m secpath``: the same as the ``secpath`` command."""

from secpath.cli import main

main()
