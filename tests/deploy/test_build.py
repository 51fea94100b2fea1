"""Choosing the toolchain of a board build, and where its sources and the built-in profiles come
from. The zig build itself runs in `make test-wheel` (scripts/test_wheel.sh), from the wheel."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from crisp_edge.cli import main
from crisp_edge.deploy import build, sources
from crisp_edge.deploy.boards import list_boards, load_board
from crisp_edge.errors import DeployError

RPI4 = load_board("rpi4")


def test_an_unknown_toolchain_names_the_known_ones():
    with pytest.raises(DeployError, match=r"unknown toolchain 'clang': use one of gcc, zig"):
        build.pick_toolchain(RPI4, "clang")
    done = CliRunner().invoke(main, ["deploy", "--board", "rpi4", "--model", __file__,
                                     "--out", "x.tar.gz", "--toolchain", "clang"])
    assert done.exit_code == 2 and "'gcc', 'zig'" in done.output


def test_zig_without_ziglang_says_what_to_install(monkeypatch):
    monkeypatch.setattr(build, "zig_available", lambda: False)
    with pytest.raises(DeployError, match=r"ziglang.*pip install 'crisp-edge\[deploy\]'"):
        build.pick_toolchain(RPI4, "zig")


@pytest.mark.parametrize("have_gcc, have_zig, picked", [
    (True, True, "gcc"), (True, False, "gcc"), (False, True, "zig")])
def test_the_default_is_gcc_when_installed_else_zig(monkeypatch, have_gcc, have_zig, picked):
    monkeypatch.setattr(build.shutil, "which", lambda name: f"/usr/bin/{name}" if have_gcc
                        else None)
    monkeypatch.setattr(build, "zig_available", lambda: have_zig)
    assert build.pick_toolchain(RPI4) == picked


def test_neither_toolchain_names_both_fixes(monkeypatch):
    monkeypatch.setattr(build.shutil, "which", lambda name: None)
    monkeypatch.setattr(build, "zig_available", lambda: False)
    with pytest.raises(DeployError) as e:
        build.pick_toolchain(RPI4)
    assert "aarch64-linux-gnu-gcc is not installed" in str(e.value)
    assert "apt-get install gcc-aarch64-linux-gnu" in str(e.value)
    assert "pip install 'crisp-edge[deploy]'" in str(e.value)


def test_zig_builds_go_to_their_own_tree_without_the_boards_mtune(monkeypatch, tmp_path):
    """zig reads -mtune as -mcpu (it would raise the ISA): the zig trees never get it, and a
    zig build never shares a tree with the gcc build of the same board."""
    calls = []
    monkeypatch.setattr(build, "zig_available", lambda: True)
    monkeypatch.setattr(build, "_configure_and_build", lambda args, build_dir, *a: calls.append(
        (args, build_dir)))
    monkeypatch.setattr(build.importlib.metadata, "version", lambda name: "0.0-test")
    done = build.build_runtime(RPI4, toolchain="zig", build_dir=tmp_path / "rpi4@zig")
    assert [d.name for _, d in calls] == ["tools", "library"]
    assert not any("mtune" in a for args, _ in calls for a in args)
    assert "-DCRISP_ZIG_TARGET=aarch64-linux-musl" in calls[0][0]
    assert f"-DCRISP_ZIG_TARGET=aarch64-linux-gnu.{build.ZIG_GLIBC}" in calls[1][0]
    assert done.info == {"toolchain": "zig", "zig_version": "0.0-test", "static_tools": True,
                         "tools_target": "aarch64-linux-musl", "target_flags": [],
                         "library_target": f"aarch64-linux-gnu.{build.ZIG_GLIBC}"}
    assert build.default_build_root().name == "boards"


def test_a_checkout_reads_its_own_sources_and_profiles():
    """From a checkout (editable install, PYTHONPATH) there is no package-data copy: the
    sources a developer edits are the ones built. (The wheel's copy: make test-wheel.)"""
    root = sources.checkout_dir()
    assert root is not None and (root / "runtime" / "CMakeLists.txt").is_file()
    assert sources.runtime_source_dir() == root
    assert sources.builtin_boards_dir() == root / "boards"
    boards, errors = list_boards()
    assert not errors and {"rpi4", "rpi5", "jetson-nano", "jetson-orin-nano", "generic-aarch64",
                           "generic-x86-64"} <= set(boards)


def test_package_data_wins_over_the_checkout(monkeypatch, tmp_path):
    (tmp_path / "boards").mkdir()
    (tmp_path / "source").mkdir()
    (tmp_path / "source" / "CMakeLists.txt").write_text("")
    monkeypatch.setattr(sources, "_package_data", lambda: tmp_path)
    assert sources.runtime_source_dir() == tmp_path / "source"
    assert sources.builtin_boards_dir() == tmp_path / "boards"
