"""Checkpoints are data: they name zoo archs but never choose code to run; and the resume
directory of a pruning run, where crisp-edge deletes only what it wrote."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from crisp_edge.errors import ArgumentError, ModelCodeRequiredError
from crisp_edge.models.checkpoint import (RESUME_MARKER, Checkpoint, build_model_from_checkpoint,
                                          check_resume_dir, load_resume_state,
                                          model_for_checkpoint, remove_resume_state,
                                          save_resume_state)
from crisp_edge.models.zoo import tiny_resnet

STATE = {"step": 0, "model": {"w": torch.zeros(2)}}


def _user_checkpoint(tmp_path: Path, source: str) -> tuple[Checkpoint, Path]:
    """A checkpoint whose model_source is a file that leaves a mark when imported."""
    ran = tmp_path / "ran"
    net = tmp_path / "net.py"
    net.write_text(f"open({str(ran)!r}, 'w').close()\nfrom crisp_edge.models.zoo import "
                   "TinyResNet as Net\n")
    model = tiny_resnet(3)
    return Checkpoint(kind="base", state_dict=model.state_dict(), num_classes=3,
                      input_shape=[3, 32, 32], model_source=source.format(net=net)), ran


def test_a_checkpoints_model_file_is_never_imported_unasked(tmp_path: Path) -> None:
    ckpt, ran = _user_checkpoint(tmp_path, "{net}:Net")
    with pytest.raises(ModelCodeRequiredError) as refused:
        build_model_from_checkpoint(ckpt, path="base.pt")
    assert str(refused.value).startswith(f"base.pt was made with the model file {tmp_path}")
    assert f"--model {ckpt.model_source}" in str(refused.value)
    assert "a data file must not choose code to run" in str(refused.value)
    assert not ran.exists()
    build_model_from_checkpoint(ckpt, model_source=ckpt.model_source)
    assert ran.exists()


def test_a_suggestion_with_control_characters_is_shown_escaped(tmp_path: Path) -> None:
    ckpt, ran = _user_checkpoint(tmp_path, "{net}\x1b[2J:Net")
    with pytest.raises(ModelCodeRequiredError, match=r"\\x1b\[2J") as refused:
        model_for_checkpoint(ckpt, "x.pt")
    assert "\x1b" not in str(refused.value) and not ran.exists()


def test_a_zoo_arch_comes_from_the_checkpoint(tmp_path: Path) -> None:
    model = tiny_resnet(3)
    ckpt = Checkpoint(kind="base", state_dict=model.state_dict(), num_classes=3,
                      input_shape=[3, 32, 32], arch="tiny_resnet")
    assert model_for_checkpoint(ckpt) == ("tiny_resnet", None)
    rebuilt = build_model_from_checkpoint(ckpt)
    assert torch.equal(rebuilt.fc.weight, model.fc.weight)
    with pytest.raises(ArgumentError, match="unknown architecture 'nets.py:Net'"):
        build_model_from_checkpoint(Checkpoint(kind="base", state_dict={}, num_classes=3,
                                               input_shape=[3, 32, 32], arch="nets.py:Net"))


def test_a_directory_crisp_edge_created_is_removed(tmp_path: Path) -> None:
    directory = tmp_path / "run.pt.ckpt"
    save_resume_state(directory, STATE)
    assert (directory / RESUME_MARKER).is_file() and load_resume_state(directory)["step"] == 0
    (directory / ".state.pt.x1y2z3.tmp").write_bytes(b"left by a crash")
    (directory / "state.pt.tmp").write_bytes(b"left by a crash of an older version")
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
