"""The float interpreter of a ``.crisp`` graph the tests compare against (now in the package:
:mod:`crisp_edge.reference.fp32`, which int8 calibration also uses)."""

from crisp_edge.reference.run import run_graph

__all__ = ["run_graph"]
