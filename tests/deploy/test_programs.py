"""The programs crisp-edge runs on a board (crisp_edge/deploy/programs/): valid sh (and bash) and
Python, clean under shellcheck when it is installed, and each file used by the code."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import crisp_edge
from crisp_edge.deploy import bundle, programs
from crisp_edge.deploy.programs import read_program
from crisp_edge.measure import fieldbench
from crisp_edge.measure.meters.device import NOW_NS
from crisp_edge.personalization import board as personalize_board

PACKAGE = Path(crisp_edge.__file__).resolve().parent
DIR = Path(programs.__file__).resolve().parent
FILES = sorted(p.name for p in DIR.iterdir()
               if p.suffix in (".sh", ".py") and p.name != "__init__.py")
SHELL = [f for f in FILES if f.endswith(".sh")]
PYTHON = [f for f in FILES if f.endswith(".py")]

# The %-format templates, filled in the way their meter fills them (paths quoted by shlex).
TEMPLATE_VALUES = {
    "ina3221_discover.sh": {"root": "'/tmp/a tree/sys'"},
    "ina3221_sampler.sh": {"volts": "/sys/class/hwmon/hwmon1/in1_input",
                           "amps": "'/tmp/a tree/sys/class/hwmon/hwmon1/curr1_input'",
                           "max": 36000, "now": NOW_NS, "period": "0.1000"},
    "pmic_sampler.sh": {"max": 14400, "now": NOW_NS, "period": "0.2500"},
}


def rendered(name: str) -> str:
    """The program ``name`` as the board gets it (templates filled in)."""
    text = read_program(name)
    return text % TEMPLATE_VALUES[name] if name in TEMPLATE_VALUES else text


# Every shell program exactly as sent, with the function files in front of their callers.
SENT = {
    "PROBE_SCRIPT": bundle.PROBE_SCRIPT,
    "INSTALL_SCRIPT": bundle.INSTALL_SCRIPT,
    "BENCH_SCRIPT": fieldbench.BENCH_SCRIPT,
    "MANIFEST_SCRIPT": fieldbench.MANIFEST_SCRIPT,
    **{f"personalize {name}": getattr(personalize_board, name) for name in (
        "PROBE_SCRIPT", "RUN_SCRIPT", "FINISH_SCRIPT", "ROLLBACK_SCRIPT")},
    **{name: rendered(name) for name in ("ina3221_discover.sh", "ina3221_sampler.sh",
                                         "pmic_probe.sh", "pmic_sampler.sh")},
}


def test_there_are_programs() -> None:
    assert "install.sh" in SHELL and "tflite_bench.py" in PYTHON


def test_the_templates_are_the_files_with_fields() -> None:
    with_fields = {f for f in FILES if re.search(r"%\(\w+\)", read_program(f))}
    assert with_fields == set(TEMPLATE_VALUES)


@pytest.mark.parametrize("shell", ["sh", "bash"])
@pytest.mark.parametrize("name", SHELL)
def test_shell_syntax(name: str, shell: str, tmp_path: Path) -> None:
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed")
    script = tmp_path / name
    script.write_text(rendered(name))
    done = subprocess.run([shell, "-n", str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("name", PYTHON)
def test_python_syntax(name: str, tmp_path: Path) -> None:
    script = tmp_path / name
    script.write_text(rendered(name))
    done = subprocess.run([sys.executable, "-m", "py_compile", str(script)], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr


def test_every_shell_file_is_in_a_program_sent() -> None:
    """So the shellcheck test below covers each file, the function files included."""
    for name in SHELL:
        assert any(rendered(name) in text for text in SENT.values()), name


@pytest.mark.parametrize("program", sorted(SENT))
def test_shellcheck(program: str) -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    done = subprocess.run(["shellcheck", "--shell=sh", "-"], input=SENT[program],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_program_file_is_used_and_every_used_one_exists() -> None:
    used = set()
    for path in PACKAGE.rglob("*.py"):
        used |= set(re.findall(r"""read_program\(\s*["']([^"']+)["']\s*\)""", path.read_text()))
    assert used, "no read_program(...) call found in crisp_edge/"
    assert sorted(used - set(FILES)) == [], "referenced but missing"
    assert sorted(set(FILES) - used) == [], "files no code reads"
