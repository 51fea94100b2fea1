"""The ``crisp-edge`` command line (click). :data:`main` is the group (``group``); each module
registers the commands it defines on it: ``commands`` (train, prune, eval, compare, pack, run,
inspect), ``field`` (boards, deploy, bench, report), ``energy`` (meter, calibrate-meter),
``peerbench``, ``personalize`` and ``demo``."""

from crisp_edge.cli.group import main
from crisp_edge.cli import commands, demo, energy, field, peerbench, personalize  # noqa: F401,E402  (registers)

__all__ = ["main"]
