"""Board profiles: the built-in ones, validation messages that name the field, user profiles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from crisp_edge.cli import main
from crisp_edge.deploy.boards import list_boards, load_board, read_board_file
from crisp_edge.deploy.sources import builtin_boards_dir
from crisp_edge.errors import BoardProfileError

BUILTIN = ["generic-aarch64", "generic-x86-64", "jetson-nano", "jetson-orin-nano", "rpi4", "rpi5"]


def test_builtin_profiles_load_with_design_facts():
    boards, errors = list_boards()
    assert errors == {} and set(BUILTIN) <= set(boards)
    pi4, pi5, orin = load_board("rpi4"), load_board("rpi5"), load_board("jetson-orin-nano")
    assert (pi4.cpu, pi4.cores, pi4.isa_features, pi4.qemu_cpu) == (
        "Cortex-A72", 4, ("neon",), "cortex-a72")
    assert {"dotprod", "fp16"} <= set(pi5.isa_features) and pi5.power_method == "vcgencmd-pmic"
    assert orin.cores == 6 and orin.thread_counts() == [1, 2, 4, 6]
    assert orin.thread_counts(online=2) == [1, 2] and orin.thread_counts(online=64) == [1, 2, 4, 6]
    # JetPack 4 on the Nano has the ina3221x IIO driver; the Orin's JetPack 5/6 has hwmon.
    assert load_board("jetson-nano").power_method == "ina3221-iio"
    assert orin.power_method == "ina3221-hwmon"
    assert load_board("generic-x86-64").qemu_cpu is None
    for name in BUILTIN:
        board = load_board(name)
        assert all(f.startswith("-mtune=") for f in board.target_flags)
        # A profile survives the round trip through the bundle's board.toml.
        path = Path(board.source)
        assert read_board_file(path) == board


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("change, field, why", [
    (("cores = 4", "cores = 0"), "cores", "1..256"),
    (("cores = 4", 'cores = "4"'), "cores", "must be of type integer"),
    (('power_method = "external-meter"', 'power_method = "wattmeter"'), "power_method", "one of"),
    (('target_flags = ["-mtune=cortex-a72"]', 'target_flags = ["-march=native"]'),
     "target_flags", "only -mtune=CPU"),
    (('target_flags = ["-mtune=cortex-a72"]', 'target_flags = ["-mcpu=cortex-a72"]'),
     "target_flags", "only -mtune=CPU"),
    # one item smuggling more flags into CMAKE_C_FLAGS
    (('target_flags = ["-mtune=cortex-a72"]',
      'target_flags = ["-mtune=x -march=armv9-a -fplugin=evil.so"]'),
     "target_flags", "only -mtune=CPU"),
    (('target_flags = ["-mtune=cortex-a72"]', 'target_flags = ["-mtune=cortex-a72;id"]'),
     "target_flags", "only -mtune=CPU"),
    (('isa_features = ["neon"]', 'isa_features = ["avx2"]'), "isa_features", "not an aarch64"),
    (("default_threads = 4", "default_threads = 8"), "default_threads", "1..cores"),
    (('qemu_cpu = "cortex-a72"', 'qemu_cpu = "cortex-a72"\ncors = 4'), "cors", "unknown field"),
    (('name = "rpi4"\n', ""), "name", "missing"),
])
def test_validation_names_the_field(tmp_path, change, field, why):
    text = (builtin_boards_dir() / "rpi4.toml").read_text()
    assert change[0] in text
    path = _write(tmp_path, "rpi4", text.replace(change[0], change[1]))
    with pytest.raises(BoardProfileError) as e:
        read_board_file(path)
    assert f"{path}: field '{field}'" in str(e.value) and why in str(e.value)


def test_name_must_match_file_and_toml_errors_are_clear(tmp_path):
    text = (builtin_boards_dir() / "rpi4.toml").read_text()
    with pytest.raises(BoardProfileError, match="must match the file name"):
        read_board_file(_write(tmp_path, "other", text))
    with pytest.raises(BoardProfileError, match="not valid TOML"):
        read_board_file(_write(tmp_path, "broken", "name = "))
    with pytest.raises(BoardProfileError, match="unknown board 'rpi9' .*known: .*rpi4"):
        load_board("rpi9")


def test_user_profiles_are_found_listed_and_shadow_builtins(tmp_path, monkeypatch):
    text = (builtin_boards_dir() / "rpi4.toml").read_text()
    _write(tmp_path, "my-pi", text.replace('name = "rpi4"', 'name = "my-pi"')
           .replace("cores = 4", "cores = 2").replace("default_threads = 4", "default_threads = 2"))
    _write(tmp_path, "rpi4", text.replace('"Raspberry Pi 4 Model B"', '"My own Pi 4"'))
    monkeypatch.setenv("CRISP_BOARDS_PATH", str(tmp_path))
    assert load_board("my-pi").cores == 2
    assert load_board("rpi4").description == "My own Pi 4"
    assert load_board(str(tmp_path / "my-pi.toml")).name == "my-pi"
    done = CliRunner().invoke(main, ["boards", "--json"])
    assert done.exit_code == 0, done.output
    listed = json.loads(done.output)
    assert listed["my-pi"]["cores"] == 2 and listed["rpi4"]["description"] == "My own Pi 4"
    _write(tmp_path, "bad", text.replace('name = "rpi4"', 'name = "bad"').replace(
        "cores = 4", "cores = -1"))
    done = CliRunner().invoke(main, ["boards"])
    assert done.exit_code == 1
    assert "my-pi" in done.output and "field 'cores'" in done.output
