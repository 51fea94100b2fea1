"""``python -m crisp_edge.cli`` (e.g. under ``torchrun``)."""

from crisp_edge.cli import main

main()
