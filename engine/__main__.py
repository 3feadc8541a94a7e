"""``python -m relay`` is the same as the ``relay`` command."""

from .cli import main

main()
