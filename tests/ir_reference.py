"""The float interpreter of a ``.crisp`` graph the tests compare against (now in the package:
:mod:`crisp_edge.irexec`, which int8 calibration also uses)."""

from crisp_edge.irexec import run_graph

__all__ = ["run_graph"]
