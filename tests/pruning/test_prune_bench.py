"""bench/prune_bench.py's bookkeeping: run order, mean ± std over seeds, the verdicts (ties within
one std), and the Markdown table, on made-up run results (no training)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("prune_bench", REPO / "bench" / "prune_bench.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["prune_bench"] = module
    spec.loader.exec_module(module)
    return module


def _run(variant: str, seed: int, top1: float, k: int = 5) -> dict:
    return {"arch": "resnet18_cifar", "sparsity": 0.9, "k": k, "seed": seed, "variant": variant,
            "dense": {"top1": 1.0}, "final": {"top1": top1}, "sparsity_achieved": 0.9,
            "effective_macs": 30, "dense_macs": 100, "wall_time_s": 10.0,
            "budget": {"fine_tune": 1600, "saliency": 400, "bn_recalibration": 1000,
                       "teacher_forward": 1600}}


def test_order_puts_seed_0_of_every_arch_first_and_ablations_once(bench) -> None:
    args = bench.parse_args(["--ablations", "--archs", "resnet18_cifar,mobilenet_v2_cifar",
                             "--sparsities", "resnet18_cifar=0.9+0.95,mobilenet_v2_cifar=0.9",
                             "--seeds", "2"])
    units = bench.units(args)
    first = [u for u in units if u["sparsity"] == 0.9 and u["variant"] in bench.VARIANTS
             and u["seed"] == 0]
    assert units[:len(first)] == first  # seed 0 of both archs' main rows comes first
    assert {u["arch"] for u in first} == {"resnet18_cifar", "mobilenet_v2_cifar"}
    ablations = [u for u in units if u["variant"] in bench.ABLATIONS]
    assert {u["seed"] for u in ablations} == {0} and {u["sparsity"] for u in ablations} == {0.9}
    assert len(units) == len({bench.unit_id(u) for u in units})  # no run twice


def test_mean_std_and_verdicts(bench) -> None:
    runs = [_run("crisp", 0, 0.98), _run("crisp", 1, 0.96), _run("crisp", 2, 0.97),
            _run("magnitude-hybrid", 0, 0.90), _run("magnitude-hybrid", 1, 0.92),
            _run("magnitude-hybrid", 2, 0.91),
            _run("unstructured", 0, 0.975), _run("unstructured", 1, 0.965),
            _run("unstructured", 2, 0.97),
            _run("channel", 0, 0.99), _run("channel", 1, 0.99), _run("channel", 2, 0.99),
            _run("crisp-per-row", 0, 0.98), _run("crisp-per-row", 1, 0.97),
            _run("crisp-per-row", 2, 0.99)]
    (row,) = bench.summarize(runs)
    crisp = row["variants"]["crisp"]
    assert crisp["mean"] == pytest.approx(0.97) and crisp["std"] == pytest.approx(0.01)
    v = bench.verdicts(row)
    assert v["gap_to_dense"] == pytest.approx(0.03)
    assert v["baselines"] == {"crisp_ahead": ["magnitude-hybrid"], "tie": ["unstructured"],
                              "crisp_behind": ["channel"]}
    assert v["v4_gap"] == pytest.approx(0.01)  # per-row − V=4 (crisp)
    args = bench.parse_args(["--seeds", "3"])
    text = bench.markdown(runs, args, "python bench/prune_bench.py", 60.0)
    assert "| resnet18_cifar | 90 % | 5 | 100.0 | 97.0 ± 1.0 |" in text
    assert "magnitude-hybrid / unstructured / channel" in text


def test_a_saved_run_with_other_settings_is_run_again(bench, tmp_path) -> None:
    import json

    args = bench.parse_args(["--runs-dir", str(tmp_path), "--out-dir", str(tmp_path / "out")])
    u = {"arch": "resnet18_cifar", "sparsity": 0.9, "k": 2, "seed": 0, "variant": "crisp"}
    path = tmp_path / (bench.unit_id(u) + ".json")
    run = {**_run("crisp", 0, 0.97, k=2), "config": bench.prune_config(u, args).to_dict()}
    path.write_text(json.dumps(run))
    assert bench.finished(u, args) is not None
    changed = bench.parse_args(["--runs-dir", str(tmp_path), "--out-dir", str(tmp_path / "out"),
                                "--final-epochs", "5"])
    assert bench.finished(u, changed) is None  # other settings: not reused


def test_a_run_saved_before_a_setting_existed(bench, tmp_path) -> None:
    """A saved config without ``nm_score`` was made with "saliency": reused while that is what
    the variant runs, run again for a variant that ranks N:M by magnitude; the baselines pin
    it, so crisp's default cannot make them stale."""
    import json

    args = bench.parse_args(["--runs-dir", str(tmp_path), "--out-dir", str(tmp_path / "out")])
    for variant, reused in (("crisp-nm-saliency", True), ("crisp-nm-magnitude", False),
                            ("magnitude-hybrid", True)):
        u = {"arch": "resnet18_cifar", "sparsity": 0.9, "k": 2, "seed": 0, "variant": variant}
        config = bench.prune_config(u, args).to_dict()
        assert config["nm_score"] == ("magnitude" if variant == "crisp-nm-magnitude"
                                      else "saliency")
        old = {k: v for k, v in config.items() if k != "nm_score"}  # saved before the key
        (tmp_path / (bench.unit_id(u) + ".json")).write_text(
            json.dumps({**_run(variant, 0, 0.97, k=2), "config": old}))
        assert (bench.finished(u, args) is not None) == reused, variant


def test_only_the_methods_that_read_a_setting_follow_its_default(bench) -> None:
    """crisp and the magnitude hybrid run the default row-shared pattern; the other baselines do
    not read ``shared_rows`` or ``nm_score`` and are pinned, so their saved runs stay valid; the
    ablations are measured from per-row crisp."""
    from crisp_edge.pruning import recipe

    args = bench.parse_args([])
    config = {}
    for variant in bench.ALL_VARIANTS:
        u = {"arch": "resnet18_cifar", "sparsity": 0.9, "k": 2, "seed": 0, "variant": variant}
        config[variant] = bench.prune_config(u, args).to_dict()
    assert recipe.SHARED_ROWS == 4
    assert config["crisp"]["shared_rows"] == config["magnitude-hybrid"]["shared_rows"] == 4
    for variant in ("crisp-per-row", "magnitude-hybrid-per-row", "unstructured", "nm-only",
                    "block-only", "channel", *bench.ABLATIONS):
        assert config[variant]["shared_rows"] == 1, variant
    changed = {k for k in config["crisp"] if config["crisp"][k] != config["crisp-per-row"][k]}
    assert changed == {"shared_rows"}


def test_same_shape_pick_is_a_fine_grained_subset_with_its_own_runs(bench, tmp_path) -> None:
    """``--class-pick same-shape``: k classes of one shape (the permutation's first class's),
    distinct, in permutation order; too large a k is refused with the limit; its runs have
    their own files and a saved run with other classes is not reused."""
    import json

    from crisp_edge.data.synthetic import class_prototypes

    spread = bench.user_classes(10)
    same = bench.user_classes(10, pick="same-shape")
    shapes = [p.shape for p in class_prototypes(100)]
    assert same[0] == spread[0] and len(set(same)) == 10
    assert {shapes[c] for c in same} == {shapes[spread[0]]}
    assert len({shapes[c] for c in spread}) > 1
    with pytest.raises(ValueError, match="use k <= 21"):
        bench.user_classes(30, pick="same-shape")
    args = bench.parse_args(["--class-pick", "same-shape", "--runs-dir", str(tmp_path),
                             "--out-dir", str(tmp_path / "out")])
    u = bench.units(args)[0]
    assert u["pick"] == "same-shape" and "-same-shape-" in bench.unit_id(u)
    assert bench.unit_id({k: v for k, v in u.items() if k != "pick"}) != bench.unit_id(u)
    run = {**_run(u["variant"], 0, 0.97, k=u["k"]),
           "config": bench.prune_config(u, args).to_dict()}
    path = tmp_path / (bench.unit_id(u) + ".json")
    path.write_text(json.dumps({**run, "classes": bench.user_classes(u["k"], pick="same-shape")}))
    assert bench.finished(u, args) is not None
    path.write_text(json.dumps({**run, "classes": bench.user_classes(u["k"])}))
    assert bench.finished(u, args) is None
