"""The programs crisp-edge runs on a board, one file each, read with :func:`read_program`.

=======================  ====================================================================
file                     sent by
=======================  ====================================================================
switch.sh +              :mod:`crisp_edge.deploy.bundle` (``PROBE_SCRIPT``)
deploy_probe.sh
runner.sh + lock.sh +    :mod:`crisp_edge.deploy.bundle` (``INSTALL_SCRIPT``, the archive on
switch.sh + install.sh   stdin after the script)
runner.sh + readings.sh  :mod:`crisp_edge.measure.fieldbench` (``BENCH_SCRIPT``)
+ bench.sh
read_manifest.sh         :mod:`crisp_edge.measure.fieldbench` (``MANIFEST_SCRIPT``)
tflite_bench.py          :mod:`crisp_edge.measure.fieldbench` (``TFLITE_SCRIPT``, ``python3 -``)
ina3221_discover.sh      :mod:`crisp_edge.measure.meters.ina3221`
ina3221_sampler.sh       :mod:`crisp_edge.measure.meters.ina3221`
pmic_probe.sh            :mod:`crisp_edge.measure.meters.pmic`
pmic_sampler.sh          :mod:`crisp_edge.measure.meters.pmic`
=======================  ====================================================================

The ``.sh`` files are POSIX ``sh``, sent as the script of ``sh -s -- ARGS`` or ``sh -c``, never
run from the file (each is sent as one ``{ … }`` group, so a cut connection runs none of it).
``runner.sh`` (``pick_runner``), ``lock.sh`` (``take_lock``, ``release_lock``), ``switch.sh``
(releases and the ``current``/``previous`` links) and ``readings.sh`` (``readings``,
``device_info``) only define functions: the code puts them in front of the programs that call
them; any program that changes an install directory takes the lock first (docs/deploy.md, "The
device protocol"). ``ina3221_discover.sh``, ``ina3221_sampler.sh`` and ``pmic_sampler.sh`` are Python
%-format templates: their meter fills in ``%(name)s``, and ``%%`` is a literal ``%``.
``tests/deploy/test_programs.py`` checks their syntax (and runs shellcheck on them).
"""

from __future__ import annotations

from importlib.resources import files


def read_program(name: str) -> str:
    """The text of the program file ``name`` of this package (e.g. ``"install.sh"``)."""
    return (files("crisp_edge.deploy.programs") / name).read_text(encoding="utf-8")
