"""`crisp-edge train → prune → eval` and `compare` on tiny synthetic data, and their errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from crisp_edge.cli import main

from prune_helpers import DATA, NET_SOURCE, write_net

SMALL = ["--image-size", "16", "--samples-per-class", "16"]
PRUNE = ["--data", DATA, "--classes", "7,2,5", "--sparsity", "0.75", "--nm", "2:4",
         "--block", "8x8", "--steps", "2", "--batch-size", "16", "--lr", "0.05", "--quiet", *SMALL]


def invoke(*args: str):  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(main, list(args))
    text = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert "Traceback" not in text, text
    return result, text


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A base model trained by `crisp-edge train` (module-scoped: trained once)."""
    root = tmp_path_factory.mktemp("cli")
    spec = write_net(root)
    result, text = invoke("train", "--model", spec, "--data", DATA, "--epochs", "2",
                          "--batch-size", "32", "--out", str(root / "base.pt"), "--quiet", *SMALL)
    assert result.exit_code == 0, text
    assert "wrote" in text and (root / "base.pt").is_file()
    return root, spec


def test_train_prune_eval(base: tuple[Path, str]) -> None:
    root, spec = base
    raw = torch.load(root / "base.pt", weights_only=True)
    assert raw["kind"] == "base" and raw["num_classes"] == 10 and raw["input_shape"] == [3, 16, 16]

    out = root / "pruned.pt"
    result, text = invoke("prune", "--model", spec, "--weights", str(root / "base.pt"), "--out",
                          str(out), *PRUNE)
    assert result.exit_code == 0, text
    assert out.is_file() and not (root / "pruned.pt.ckpt").exists()
    report = json.loads((root / "pruned.report.json").read_text())
    assert report["classes"] == [7, 2, 5] and len(report["steps"]) == 3
    md = (root / "pruned.report.md").read_text()
    assert "| step |" in md and "conv2" in md

    result, text = invoke("eval", str(out), "--model", spec, "--data", DATA, "--image-size",
                          "16", "--json")
    assert result.exit_code == 0, text
    evaluation = json.loads(result.output)
    assert evaluation["classes"] == [7, 2, 5]
    assert evaluation["top1"] == pytest.approx(report["accuracy"]["final"]["top1"])

    result, text = invoke("eval", str(root / "base.pt"), "--model", spec, "--data", DATA,
                          "--classes", "7,2,5")
    assert result.exit_code == 0 and "top-1" in text and "3 classes" in text


def test_prune_plain_state_dict_with_model_spec(base: tuple[Path, str]) -> None:
    root, spec = base
    raw = torch.load(root / "base.pt", weights_only=True)
    torch.save(raw["state_dict"], root / "plain.pt")
    result, text = invoke("prune", "--model", spec, "--weights", str(root / "plain.pt"),
                          "--out", str(root / "p2.pt"), "--masking", "sr-ste", "--keep-head",
                          "--report-dir", str(root / "reports"), *PRUNE)
    assert result.exit_code == 0, text
    ckpt = torch.load(root / "p2.pt", weights_only=True)
    assert ckpt["model_source"] == spec and ckpt["num_classes"] == 10
    assert ckpt["head"]["reduced"] is False
    assert ckpt["classes"] == list(range(10)) and ckpt["user_classes"] == [7, 2, 5]
    result, text = invoke("eval", str(root / "p2.pt"), "--model", spec, "--data", DATA,
                          "--json")
    assert result.exit_code == 0, text
    assert json.loads(result.output)["classes"] == [7, 2, 5]  # the pruned-for classes
    assert (root / "reports" / "p2.report.json").is_file()


def test_resume_continues_an_interrupted_cli_run(base: tuple[Path, str]) -> None:
    from crisp_edge.errors import StopPruning
    from crisp_edge.pruning.engine import PruneConfig, prune
    from crisp_edge.pruning.runs import load_base

    root, spec = base
    result, text = invoke("prune", "--model", spec, "--weights", str(root / "base.pt"), "--out",
                          str(root / "whole.pt"), *PRUNE)
    assert result.exit_code == 0, text
    # The same run interrupted after step 0, with the settings the CLI derives from PRUNE.
    config = PruneConfig(sparsity=0.75, nm="2:4", block="8x8", steps=2, batch_size=16, lr=0.05,
                         image_size=16, samples_per_class=16)
    model = load_base(None, spec, root / "base.pt", None)[0]

    def stop(step: int, record: dict) -> None:
        raise StopPruning

    with pytest.raises(StopPruning):
        prune(model, DATA, [7, 2, 5], config, progress=False,
              checkpoint_dir=root / "resumed.pt.ckpt", on_step_end=stop)
    loud = [flag for flag in PRUNE if flag != "--quiet"]
    result, text = invoke("prune", "--model", spec, "--weights", str(root / "base.pt"), "--out",
                          str(root / "resumed.pt"), "--resume", *loud)
    assert result.exit_code == 0, text
    assert "resuming after step 0" in text and "step 0/2 epoch" not in text
    whole = torch.load(root / "whole.pt", weights_only=True)
    resumed = torch.load(root / "resumed.pt", weights_only=True)
    assert [s["step"] for s in resumed["report"]["steps"]] == [0, 1, 2]
    for key, value in whole["state_dict"].items():
        assert torch.equal(resumed["state_dict"][key], value), key


def test_checkpoint_dir_dot_keeps_the_working_directory(base: tuple[Path, str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """`--checkpoint-dir .` once emptied the working directory, PRUNED.pt included: only
    crisp-edge's own state file may go."""
    root, spec = base
    work = root / "work"
    work.mkdir()
    (work / "notes.txt").write_text("the user's")
    monkeypatch.chdir(work)
    result, text = invoke("prune", "--model", spec, "--weights", str(root / "base.pt"), "--out",
                          "pruned.pt", "--checkpoint-dir", ".", *PRUNE)
    assert result.exit_code == 0, text
    assert sorted(p.name for p in work.iterdir()) == ["notes.txt", "pruned.pt",
                                                     "pruned.report.json", "pruned.report.md"]


def test_checkpoint_dir_with_someone_elses_state_is_refused(base: tuple[Path, str]) -> None:
    root, spec = base
    other = root / "other"
    other.mkdir()
    torch.save({"epoch": 3}, other / "state.pt")
    result, text = invoke("prune", "--model", spec, "--weights", str(root / "base.pt"), "--out",
                          str(other / "p.pt"), "--checkpoint-dir", str(other), *PRUNE)
    assert result.exit_code == 1 and "not a crisp-edge resume state" in text, text
    assert torch.load(other / "state.pt", weights_only=True) == {"epoch": 3}


def test_compare_writes_one_table_with_every_method(base: tuple[Path, str]) -> None:
    root, spec = base
    methods = ["crisp", "magnitude-hybrid", "unstructured", "nm-only", "block-only", "channel"]
    result, text = invoke("compare", "--model", spec, "--weights", str(root / "base.pt"),
                          "--methods",
                          ",".join(methods), "--out-dir", str(root / "cmp"), *PRUNE)
    assert result.exit_code == 0, text
    table = json.loads((root / "cmp" / "compare.json").read_text())
    assert [r["method"] for r in table["rows"]] == methods
    md = (root / "cmp" / "compare.md").read_text()
    for method in ["dense", *methods]:
        assert f"| {method} |" in md
    for row in table["rows"]:
        assert 0 <= row["top1"] <= 1 and row["effective_macs"] <= row["dense_macs"]
        assert 0.3 < row["sparsity"] < 0.8, row  # every method prunes at the same budget


@pytest.fixture(scope="module")
def trojan(base: tuple[Path, str]) -> tuple[Path, str, Path]:
    """base.pt with its model_source pointed at a file that leaves a mark when imported."""
    root, _ = base
    ran = root / "trojan-ran"
    source = root / "trojan.py"
    source.write_text(NET_SOURCE + f"\nopen({str(ran)!r}, 'w').close()\n")
    raw = torch.load(root / "base.pt", weights_only=True)
    raw["model_source"] = f"{source}:TinyNet"
    torch.save(raw, root / "trojan.pt")
    return root / "trojan.pt", raw["model_source"], ran


@pytest.mark.parametrize("command", ["pack", "eval", "prune", "compare"])
def test_a_checkpoint_never_chooses_code_to_run(trojan: tuple[Path, str, Path],
                                                command: str) -> None:
    path, spec, ran = trojan
    ran.unlink(missing_ok=True)
    args = {"pack": ["pack", str(path), "--out", str(path.with_suffix(".crisp"))],
            "eval": ["eval", str(path), "--data", DATA],
            "prune": ["prune", "--weights", str(path), "--out", str(path.with_name("t.pt")),
                      *PRUNE],
            "compare": ["compare", "--weights", str(path), "--out-dir",
                        str(path.with_name("tcmp")), *PRUNE]}[command]
    result, text = invoke(*args)
    assert result.exit_code == 1, text
    assert str(path) in text and f"--model {spec}" in text, text
    assert "a data file must not choose code to run" in text, text
    assert not ran.exists()


def test_the_users_model_flag_is_honoured_for_a_checkpoint(trojan: tuple[Path, str, Path]
                                                           ) -> None:
    path, spec, ran = trojan
    result, text = invoke("eval", str(path), "--model", spec, "--data", DATA, "--classes", "7,2")
    assert result.exit_code == 0 and "top-1" in text, text
    assert ran.exists()  # the user named the file: imported


@pytest.mark.parametrize("args,message", [
    (["--classes", "7,42"], "unknown class 42"),
    (["--nm", "4:2"], "N must be ≤ M"),
    (["--sparsity", "1.5"], "(0, 1)"),
    (["--block", "8x6"], "does not fit M=4"),
    (["--method", "random"], "unknown method"),
])
def test_prune_bad_input_is_one_line_error(base: tuple[Path, str], args: list[str],
                                           message: str) -> None:
    root, spec = base
    flags = PRUNE.copy()
    for i in range(0, len(args), 2):
        if args[i] in flags:
            flags[flags.index(args[i]) + 1] = args[i + 1]
        else:
            flags += args[i:i + 2]
    result, text = invoke("prune", "--model", spec, "--weights", str(root / "base.pt"),
                          "--out", str(root / "bad.pt"), *flags)
    assert result.exit_code == 1, text
    assert text.startswith("crisp-edge: error: ") and message in text, text
    assert not (root / "bad.pt").exists() and not (root / "bad.pt.ckpt").exists()


@pytest.fixture(scope="module")
def packed(base: tuple[Path, str]) -> tuple[Path, Path]:
    """A pruned checkpoint and its float32 .crisp (module-scoped: made once)."""
    root, spec = base
    ckpt = root / "pk.pt"
    result, text = invoke("prune", "--model", spec, "--weights", str(root / "base.pt"), "--out",
                          str(ckpt), *PRUNE)
    assert result.exit_code == 0, text
    result, text = invoke("pack", str(ckpt), "--model", spec, "--out", str(root / "pk.crisp"))
    assert result.exit_code == 0, text
    assert "HYBRID_F32" in text  # the pruned body layers are stored sparse
    return ckpt, root / "pk.crisp"


def test_pack_checkpoint_and_eval_crisp_match_torch(packed: tuple[Path, Path]) -> None:
    """prune → pack (float32 hybrid, int8) → eval through the runtime, measured like torch."""
    ckpt, model = packed
    spec = f"{ckpt.parent / 'tinynet.py'}:TinyNet"
    result, text = invoke("eval", str(ckpt), "--model", spec, "--data", DATA, "--image-size",
                          "16", "--json")
    torch_eval = json.loads(result.output)
    result, text = invoke("eval", str(model), "--data", DATA, "--json", "--threads", "2")
    assert result.exit_code == 0, text
    crisp_eval = json.loads(result.output)
    assert crisp_eval["classes"] == [7, 2, 5] and crisp_eval["n"] == torch_eval["n"]
    # Same decisions as torch, up to one borderline sample of float rounding.
    assert abs(crisp_eval["top1"] - torch_eval["top1"]) <= 1 / torch_eval["n"] + 1e-9

    result, text = invoke("inspect", str(model))
    assert result.exit_code == 0, text
    for expected in ("HYBRID_F32", "8x8 blocks 2:4", "effective", "peak activation memory",
                     'class 7 "'):
        assert expected in text, expected
    storage = [op["storage"] for op in json.loads(invoke("inspect", "--json", str(model))[0].output)
               ["ops"] if "storage" in op]
    assert any(st["encoding"] == "HYBRID_F32" and st["density"] < 0.5 for st in storage)

    int8_model = ckpt.parent / "pk8.crisp"
    result, text = invoke("pack", str(ckpt), "--model", spec, "--int8", "--calibration", DATA,
                          "--out", str(int8_model))
    assert result.exit_code == 0, text
    assert "HYBRID_I8" in text and "int8" in text
    result, text = invoke("eval", str(int8_model), "--data", DATA, "--json")
    assert result.exit_code == 0, text
    int8_eval = json.loads(result.output)
    assert abs(int8_eval["top1"] - torch_eval["top1"]) <= max(0.01, 2 / torch_eval["n"]) + 1e-9

    result, text = invoke("pack", str(ckpt), "--int8", "--out", str(ckpt.parent / "x.crisp"))
    assert result.exit_code == 2 and "--calibration" in text


def test_eval_refuses_a_damaged_crisp_file(packed: tuple[Path, Path]) -> None:
    _, model = packed
    from crisp_edge import format as fmt
    data = bytearray(model.read_bytes())
    weights = next(s for s in fmt.decode_model(bytes(data)).sections if s.name == "WGHT")
    data[weights.offset + weights.size // 2] ^= 0xFF
    bad = model.parent / "bad.crisp"
    bad.write_bytes(bytes(data))
    result, text = invoke("eval", str(bad), "--data", DATA)
    assert result.exit_code == 1 and "CRC32 mismatch" in text, text


def test_train_needs_a_model(tmp_path: Path) -> None:
    result, text = invoke("train", "--data", DATA, "--epochs", "1", "--out",
                          str(tmp_path / "b.pt"))
    assert result.exit_code == 1 and "--arch NAME or --model" in text
