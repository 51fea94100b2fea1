"""The resume directory of a pruning run: crisp-edge deletes only what it wrote there."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from crisp_edge.errors import ArgumentError
from crisp_edge.models.checkpoint import (RESUME_MARKER, check_resume_dir, load_resume_state,
                                          remove_resume_state, save_resume_state)

STATE = {"step": 0, "model": {"w": torch.zeros(2)}}


def test_a_directory_crisp_edge_created_is_removed(tmp_path: Path) -> None:
    directory = tmp_path / "run.pt.ckpt"
    save_resume_state(directory, STATE)
    assert (directory / RESUME_MARKER).is_file() and load_resume_state(directory)["step"] == 0
    (directory / "state.pt.tmp").write_bytes(b"left by a crash")
    remove_resume_state(directory)
    assert not directory.exists() and tmp_path.is_dir()


def test_an_existing_directory_keeps_everything_but_the_state(tmp_path: Path) -> None:
    """`--checkpoint-dir .`: the user's working directory, never emptied nor removed."""
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "pruned.pt").write_bytes(b"the run's output")
    (tmp_path / "sub").mkdir()
    save_resume_state(tmp_path, STATE)
    assert not (tmp_path / RESUME_MARKER).exists()  # not created by crisp-edge: not its to remove
    remove_resume_state(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "pruned.pt", "sub"]


def test_a_created_directory_with_the_users_files_in_it_stays(tmp_path: Path) -> None:
    directory = tmp_path / "ckpt"
    save_resume_state(directory, STATE)
    (directory / "mine.txt").write_text("put here during the run")
    remove_resume_state(directory)
    assert [p.name for p in directory.iterdir()] == ["mine.txt"]


def test_removing_a_missing_directory_is_a_no_op(tmp_path: Path) -> None:
    remove_resume_state(tmp_path / "never-written")
    assert list(tmp_path.iterdir()) == []


def test_someone_elses_state_file_is_refused_not_overwritten(tmp_path: Path) -> None:
    torch.save({"epoch": 3}, tmp_path / "state.pt")  # e.g. another trainer's state
    with pytest.raises(ArgumentError, match="not a crisp-edge resume state.*--checkpoint-dir"):
        check_resume_dir(tmp_path)
    save_resume_state(tmp_path / "ours", STATE)
    check_resume_dir(tmp_path / "ours")      # crisp-edge's own state: fine
    check_resume_dir(tmp_path / "missing")   # nothing there yet: fine
