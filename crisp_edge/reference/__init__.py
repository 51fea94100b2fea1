"""Reference executors of a ``.crisp`` graph in Python: float32 (``fp32``) and int8
(``int8``), used by the tests as the spec the C runtime is checked against and by int8
calibration. :func:`crisp_edge.reference.run.execute` picks the executor by the graph's dtypes."""
