"""Training loops: loaders, evaluation with reduced and full heads, hooks, base training."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from crisp_edge.pruning import distributed
from crisp_edge.errors import ArgumentError
from crisp_edge.pruning.training import (TrainConfig, cosine_schedule, evaluate, label_map, make_loader,
                                 set_epoch, train_epoch, train_model)

from prune_helpers import DATA, IMAGE_SIZE, tiny_model


class Logits(nn.Module):
    """Returns its input as the logits, so a test chooses every prediction."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0 * self.anchor


def _ranked_rows(indices: list[int], width: int) -> torch.Tensor:
    """Logits ranking index i first, then i+1, i+2, … (mod width), all distinct."""
    cols = torch.arange(width)
    return torch.stack([-((cols - i) % width).float() for i in indices])


def test_evaluate_reduced_head_maps_original_ids_to_head_rows() -> None:
    classes = [7, 2, 5]
    # Predictions as head indices: 1 → class 2, 0 → class 7, 2 → class 5.
    x = _ranked_rows([1, 0, 0, 2], 3)
    y = torch.tensor([2, 7, 5, 5])  # right, right, wrong (index 0 = class 7), right
    loader = make_loader(TensorDataset(x, y), 4, False, 0)
    got = evaluate(Logits(), loader, classes, reduced_head=True)
    assert got["top1"] == pytest.approx(3 / 4) and got["n"] == 4
    assert got["k"] == 3 and got["top5"] == 1.0  # top-min(5, 3) always holds the answer


def test_evaluate_full_head_compares_with_original_ids_and_ignores_other_classes() -> None:
    x = _ranked_rows([7, 3, 5, 9, 1], 10)
    # 7: top-1; 6: in the top-5 {3..7} only; 4: not in {5..9}; 9: top-1; 1: not a user class.
    y = torch.tensor([7, 6, 4, 9, 1])
    loader = make_loader(TensorDataset(x, y), 5, False, 0)
    got = evaluate(Logits(), loader, [7, 6, 4, 9], reduced_head=False)
    assert got["n"] == 4 and got["k"] == 5
    assert got["top1"] == pytest.approx(2 / 4)
    assert got["top5"] == pytest.approx(3 / 4)


def test_evaluate_rejects_a_head_of_the_wrong_width() -> None:
    loader = make_loader(TensorDataset(torch.zeros(2, 4), torch.tensor([7, 2])), 2, False, 0)
    with pytest.raises(ArgumentError, match="4 outputs but 3 user classes"):
        evaluate(Logits(), loader, [7, 2, 5], reduced_head=True)


def test_label_map() -> None:
    table = label_map([7, 2, 5], 10)
    assert table[[7, 2, 5]].tolist() == [0, 1, 2]
    assert (table[[0, 1, 3, 4, 6, 8, 9]] == -1).all()


def test_loader_order_depends_only_on_seed_and_epoch() -> None:
    ds = TensorDataset(torch.arange(40).float()[:, None], torch.zeros(40, dtype=torch.long))

    def order(seed: int, epoch: int) -> list[int]:
        loader = make_loader(ds, 8, True, seed)
        set_epoch(loader, epoch)
        return [int(v) for x, _ in loader for v in x[:, 0]]

    assert order(0, 0) == order(0, 0)
    assert order(0, 0) != order(0, 1) and order(0, 0) != order(1, 0)
    assert sorted(order(0, 3)) == list(range(40))


def test_ranks_together_see_the_single_process_global_batches(monkeypatch) -> None:
    ds = TensorDataset(torch.arange(32).float()[:, None], torch.zeros(32, dtype=torch.long))
    single = make_loader(ds, 8, True, 5)
    set_epoch(single, 2)
    batches = [sorted(int(v) for v in x[:, 0]) for x, _ in single]
    per_rank = []
    for rank in (0, 1):
        monkeypatch.setattr(distributed, "world_size", lambda: 2)
        monkeypatch.setattr(distributed, "rank", lambda r=rank: r)
        loader = make_loader(ds, 8, True, 5)
        set_epoch(loader, 2)
        assert loader.batch_size == 4
        per_rank.append([[int(v) for v in x[:, 0]] for x, _ in loader])
    merged = [sorted(a + b) for a, b in zip(*per_rank)]
    assert merged == batches


def test_train_epoch_calls_hooks_in_order_and_steps_the_schedule_per_batch() -> None:
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    ds = TensorDataset(torch.randn(10, 3), torch.randint(0, 2, (10,)))
    loader = make_loader(ds, 4, False, 0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = cosine_schedule(opt, 3)
    calls: list[str] = []
    loss = train_epoch(model, loader, opt, sched, loss_fn=nn.CrossEntropyLoss(),
                       before_forward=lambda: calls.append("before"),
                       after_backward=lambda: calls.append(
                           "grad" if model.weight.grad is not None else "no grad"),
                       after_step=lambda: calls.append("step"))
    assert calls == ["before", "grad", "step"] * 3
    assert sched.last_epoch == 3 and opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    assert loss > 0


def test_train_model_learns_the_synthetic_classes() -> None:
    from crisp_edge.data.sources import open_source

    train = open_source(DATA, split="train", image_size=IMAGE_SIZE, samples_per_class=24)
    test = open_source(DATA, split="test", image_size=IMAGE_SIZE)
    model = tiny_model()
    history = train_model(model, train, TrainConfig(epochs=4, lr=0.05, batch_size=32),
                          test_set=test, class_ids=list(range(10)), progress=False)
    assert len(history) == 4
    assert history[-1]["loss"] < history[0]["loss"]
    assert history[-1]["top1"] > 0.2  # chance is 0.1


def test_train_model_rejects_zero_epochs() -> None:
    with pytest.raises(ArgumentError, match="epochs"):
        train_model(tiny_model(), TensorDataset(torch.zeros(1, 3, 8, 8)), TrainConfig(epochs=0),
                    progress=False)


# --- recovery: distillation and BatchNorm re-estimation ----------------------------------------

def test_distillation_loss_equals_a_hand_computation() -> None:
    from crisp_edge.pruning.training import DistillationLoss

    student = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    teacher = torch.tensor([[2.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    y = torch.tensor([1, 2])
    alpha, temp = 0.7, 2.0
    ce = 0.0
    kd = 0.0
    for i in range(2):
        ps = torch.softmax(student[i], 0)
        ce += -math.log(float(ps[y[i]])) / 2
        pt = torch.softmax(teacher[i] / temp, 0)
        qs = torch.softmax(student[i] / temp, 0)
        kd += float((pt * (pt.log() - qs.log())).sum()) / 2
    expected = (1 - alpha) * ce + alpha * temp * temp * kd
    got = DistillationLoss(alpha, temp)(student, y, teacher)
    assert float(got) == pytest.approx(expected, rel=1e-6)
    # Restricted to columns 0 and 2 (a kept full head): the KL term sees only those logits.
    cols = DistillationLoss(1.0, 1.0, columns=[0, 2])(student, y, teacher)
    pt = torch.softmax(teacher[:, [0, 2]], 1)
    qs = torch.softmax(student[:, [0, 2]], 1)
    assert float(cols) == pytest.approx(float((pt * (pt.log() - qs.log())).sum(1).mean()),
                                        rel=1e-6)


def test_distillation_loss_rejects_bad_settings() -> None:
    from crisp_edge.errors import ArgumentError
    from crisp_edge.pruning.training import DistillationLoss

    with pytest.raises(ArgumentError, match="--distill-alpha 1.5"):
        DistillationLoss(1.5, 4.0)
    with pytest.raises(ArgumentError, match="--distill-temperature 0"):
        DistillationLoss(0.5, 0)


def test_cached_teacher_gives_the_teachers_logits_with_one_forward_per_view() -> None:
    """Every training image and its flip are computed once, up front; an epoch's batches (any
    order, flipped or not) then cost no forward, and the logits are the teacher's own."""
    from crisp_edge.data.sources import open_source
    from crisp_edge.pruning.training import CachedTeacher

    torch.manual_seed(0)
    teacher = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
                            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5)).eval()
    calls = []
    teacher.register_forward_hook(lambda m, args, out: calls.append(len(args[0])))
    data = open_source(DATA, split="train", image_size=IMAGE_SIZE, samples_per_class=3)
    cached = CachedTeacher(teacher, make_loader(data, 8, False, 0, False))
    assert cached.forwards == sum(calls) == 2 * len(data)
    loader = make_loader(data, 5, True, 7)  # another batching, shuffled, flips of epoch 3
    set_epoch(loader, 3)
    for x, _ in loader:
        got = cached(x)
        with torch.no_grad():
            want = teacher(x)
        assert torch.allclose(got, want, atol=1e-5)
    assert cached.forwards == 2 * len(data)  # no image was new
    odd = torch.rand(2, 3, IMAGE_SIZE, IMAGE_SIZE)  # an unseen view: computed once, then kept
    first = cached(odd)
    assert cached.forwards == 2 * len(data) + 2
    assert torch.equal(cached(odd), first) and cached.forwards == 2 * len(data) + 2


def test_batchnorm_recalibration_changes_running_statistics_and_nothing_else() -> None:
    from crisp_edge.pruning.training import recalibrate_batchnorm

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.5),
                          nn.Flatten(), nn.LazyLinear(2))
    x = torch.randn(24, 3, 6, 6) * 3 + 1
    model(x[:2])  # materialise the lazy layer
    model.train()
    params = {k: v.clone() for k, v in model.named_parameters()}
    bn = model[1]
    before_mean = bn.running_mean.clone()
    rng = torch.get_rng_state()
    loader = [(x[i:i + 8], torch.zeros(8)) for i in range(0, 24, 8)]
    assert recalibrate_batchnorm(model, loader) == 24
    assert not torch.equal(bn.running_mean, before_mean)
    assert all(torch.equal(params[k], v) for k, v in model.named_parameters())
    assert model.training and model[3].training and bn.momentum == 0.1
    assert torch.equal(torch.get_rng_state(), rng)  # dropout drew no random numbers
    # An exact average of the per-batch statistics (equal batches: the mean of the data).
    with torch.no_grad():
        conv = model[0](x)
    batch_means = torch.stack([conv[i:i + 8].mean((0, 2, 3)) for i in range(0, 24, 8)])
    torch.testing.assert_close(bn.running_mean, batch_means.mean(0))
    n = 8 * conv.shape[2] * conv.shape[3]
    batch_vars = torch.stack([conv[i:i + 8].var((0, 2, 3), unbiased=False) * n / (n - 1)
                              for i in range(0, 24, 8)])
    torch.testing.assert_close(bn.running_var, batch_vars.mean(0))
