"""Measuring: power meters (``meters``), energy per inference (``energy``, ``calibration``),
field benchmarks on boards (``fieldbench``, ``fieldenergy``, ``fieldreport``) and the local
benchmark against peer runtimes (``peerbench``, ``peerbench_report``)."""
