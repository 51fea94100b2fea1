"""Lowering torch → .crisp graph, checked with the independent torch interpreter (no C)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import assert_close, randomize_batch_norm, torch_reference
from crisp_edge import format as fmt
from crisp_edge.errors import ArgumentError, UnsupportedOpError
from crisp_edge.packing.lower import lower
from crisp_edge.packing.pack import pack, state_dict_sha256
from ir_reference import run_graph


def lower_and_check(model: nn.Module, x: torch.Tensor):
    """Lower, round-trip through the writer/reader, interpret, compare with torch."""
    lowered = lower(model, x)
    graph = fmt.decode_model(fmt.encode_model(fmt.ModelFile(lowered.graph))).graph
    assert_close(run_graph(graph, x.numpy()), torch_reference(model, x), type(model).__name__)
    return lowered, [op.name for op in graph.ops], graph


class ConvBnRelu(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 8, 3, stride=2, groups=8), nn.BatchNorm2d(8), nn.ReLU6())
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(8 * 3 * 3, 6), nn.BatchNorm1d(6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def test_batch_norm_folded_and_activations_fused() -> None:
    torch.manual_seed(0)
    model = randomize_batch_norm(ConvBnRelu())
    lowered, kinds, graph = lower_and_check(model, torch.randn(2, 3, 8, 8))
    assert lowered.folded_bn == 3 and lowered.fused_activations == 2
    assert kinds == ["CONV2D", "CONV2D", "RESHAPE", "LINEAR"]
    assert [fmt.ACTIVATION_NAMES[op.activation] for op in graph.ops] == \
        ["relu", "relu6", "none", "none"]
    assert graph.tensors[graph.ops[0].weight].dims == (8, 3, 3, 3)  # OHWI
    assert graph.tensors[graph.ops[1].weight].dims == (8, 3, 3, 1)  # depthwise: Cin/groups = 1


def test_conv_weights_are_ohwi() -> None:
    conv = nn.Conv2d(2, 4, (3, 5), bias=False)
    lowered = lower(conv, torch.randn(2, 2, 7, 7))
    w = lowered.graph.tensors[0].data
    assert w.shape == (4, 3, 5, 2)
    assert np.array_equal(w, conv.weight.detach().numpy().transpose(0, 2, 3, 1))


class Residual(nn.Module):
    """BN with two users, BN not after a conv, relu fused into add, conv output used twice."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.bn_a = nn.BatchNorm2d(4)
        self.bn_b = nn.BatchNorm2d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        z = self.bn_a(y) + F.relu(y)  # conv output has two users: no fold, no fusion
        return F.relu(self.bn_b(z) + z)


def test_batch_norm_elsewhere_becomes_depthwise_conv() -> None:
    torch.manual_seed(1)
    model = randomize_batch_norm(Residual())
    lowered, kinds, graph = lower_and_check(model, torch.randn(2, 4, 6, 6))
    assert lowered.folded_bn == 0 and lowered.fused_activations == 1  # only the final relu
    assert kinds == ["CONV2D", "CONV2D", "RELU", "ADD", "CONV2D", "ADD"]
    dw = graph.ops[1]
    assert dw.named_params()["groups"] == 4 and graph.tensors[dw.weight].dims == (4, 1, 1, 1)
    assert [fmt.ACTIVATION_NAMES[op.activation] for op in graph.ops] == \
        ["none", "none", "none", "none", "none", "relu"]


def test_batch_norm_1d_without_linear_is_wrapped_in_reshapes() -> None:
    model = randomize_batch_norm(nn.Sequential(nn.Flatten(), nn.BatchNorm1d(12), nn.ReLU6()))
    lowered, kinds, _ = lower_and_check(model, torch.randn(2, 3, 2, 2))
    assert kinds == ["RESHAPE", "RESHAPE", "CONV2D", "RESHAPE", "RELU6"]


class Identities(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.drop = nn.Dropout(0.5)
        self.drop2d = nn.Dropout2d(0.3)
        self.fc = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop2d(x).clone().contiguous()
        x = x.view(x.shape[0], 4, 2, 2).reshape(x.shape[0], 4, 2, 2)
        x = F.dropout(torch.flatten(x, 1), 0.2, training=False)
        return self.drop(self.fc(x))


def test_identities_are_dropped() -> None:
    lowered, kinds, _ = lower_and_check(Identities(), torch.randn(2, 4, 2, 2))
    assert kinds == ["RESHAPE", "LINEAR"]
    assert lowered.dropped_identities >= 4


def test_pool_and_head_variants() -> None:
    class Net(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            a = F.adaptive_avg_pool2d(F.max_pool2d(x, 3, 2, 1, ceil_mode=True), (3, 2))
            b = F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False)
            g = b.mean((-1, -2)) + F.adaptive_avg_pool2d(a, 1).flatten(1)
            return torch.softmax(g, -1)

    _, kinds, graph = lower_and_check(Net(), torch.randn(2, 3, 9, 10))
    assert kinds == ["MAX_POOL2D", "ADAPTIVE_AVG_POOL2D", "AVG_POOL2D", "GLOBAL_AVG_POOL",
                     "GLOBAL_AVG_POOL", "RESHAPE", "ADD", "SOFTMAX"]
    assert graph.values[graph.ops[3].output].shape == (3,)  # mean without keepdim
    assert graph.ops[-1].named_params() == {"axis": 0}


def test_same_padding_even_kernel_is_asymmetric() -> None:
    conv = nn.Conv2d(2, 3, (4, 2), padding="same", dilation=(1, 3))
    _, _, graph = lower_and_check(conv, torch.randn(2, 2, 7, 8))
    p = graph.ops[0].named_params()
    assert (p["pad_top"], p["pad_bottom"], p["pad_left"], p["pad_right"]) == (1, 2, 1, 2)


def test_hardtanh_0_6_is_relu6() -> None:
    model = nn.Sequential(nn.Conv2d(2, 2, 1), nn.Hardtanh(0.0, 6.0))
    lowered, kinds, graph = lower_and_check(model, torch.randn(2, 2, 3, 3) * 10)
    assert kinds == ["CONV2D"] and graph.ops[0].activation == fmt.ACT_RELU6


class SqueezeExcite(nn.Module):
    """timm's EfficientNet/MobileNetV3 block shape: conv-BN-act, SE with a gate, 1×1 project."""

    def __init__(self, act: nn.Module, gate: nn.Module, gate_first: bool) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8),
                                  act)
        self.reduce, self.expand = nn.Conv2d(8, 4, 1), nn.Conv2d(4, 8, 1)
        self.act, self.gate, self.gate_first = type(act)(), gate, gate_first
        self.head = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        s = self.gate(self.expand(self.act(self.reduce(x.mean((2, 3), keepdim=True)))))
        x = s * x if self.gate_first else x * s
        return self.head(torch.sigmoid(x + x).mean((2, 3)))


@pytest.mark.parametrize("act, gate, gate_first", [
    (nn.SiLU(), nn.Sigmoid(), False), (nn.Hardswish(), nn.Hardsigmoid(), True)])
def test_squeeze_excite_lowers_to_fused_activations_and_mul_channels(act, gate, gate_first):
    torch.manual_seed(4)
    model = randomize_batch_norm(SqueezeExcite(act, gate, gate_first))
    lowered, kinds, graph = lower_and_check(model, torch.randn(2, 3, 6, 6) * 3)
    assert kinds == ["CONV2D", "GLOBAL_AVG_POOL", "CONV2D", "CONV2D", "MUL_CHANNELS", "ADD",
                     "GLOBAL_AVG_POOL", "LINEAR"]
    name = fmt.ACTIVATION_NAMES
    assert [name[op.activation] for op in graph.ops if op.kind == fmt.OP_CONV2D] == \
        ["silu", "silu", "sigmoid"] if gate_first is False else ["hardswish", "hardswish",
                                                                 "hardsigmoid"]
    assert name[graph.ops[5].activation] == "sigmoid"  # fused into the add
    mul = graph.ops[4]
    assert graph.values[mul.inputs[0]].shape == (8, 6, 6)
    assert graph.values[mul.inputs[1]].shape == (8, 1, 1)


@pytest.mark.parametrize("fn, kind", [(F.silu, "SILU"), (torch.sigmoid, "SIGMOID"),
                                      (F.hardswish, "HARDSWISH"), (F.hardsigmoid, "HARDSIGMOID")])
def test_standalone_activations_lower(fn, kind: str) -> None:
    """After an op that carries no activation (a pool), each stays an op of its own."""
    _, kinds, _ = lower_and_check(Fn(lambda x: fn(F.max_pool2d(x, 2))), torch.randn(2, 3, 4, 4) * 5)
    assert kinds == ["MAX_POOL2D", kind]


class Bad(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 1),
                                      nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def test_unsupported_op_names_op_and_module() -> None:
    with pytest.raises(UnsupportedOpError) as e:
        lower(Bad(), torch.randn(2, 3, 8, 8))
    msg = str(e.value)
    assert "aten.tanh.default in module 'features.3' (torch.nn.modules.activation.Tanh)" in msg
    assert "is not supported by crisp-edge 0.1; supported: conv2d, linear" in msg


class Fn(nn.Module):
    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


@pytest.mark.parametrize("fn, text", [
    (lambda x: x + x.mean((2, 3), keepdim=True), "broadcasting operands"),
    (lambda x: torch.add(x, x, alpha=2), "alpha=2"),
    (lambda x: F.hardtanh(x, -1.0, 1.0), "bounds (-1.0, 1.0)"),
    (lambda x: torch.softmax(x, 0), "softmax over the batch dim"),
    (lambda x: x.permute(0, 2, 3, 1), "aten.permute.default"),
    (lambda x: x.mean((1, 2)), "dim=[1, 2]"),
    (lambda x: x + 1.0, "aten.add.Tensor"),
    (lambda x: x * x, "aten.mul.Tensor in the top-level module (test_lowering.Fn) with operands "
                      "of per-sample shapes (3, 4, 4) and (3, 4, 4) (only x · s"),
    (lambda x: x * F.adaptive_avg_pool2d(x, (4, 1)), "per-sample shapes (3, 4, 4) and (3, 4, 1)"),
    (lambda x: x * 2.0, "aten.mul.Tensor"),
])
def test_unsupported_arguments_are_refused(fn, text: str) -> None:
    with pytest.raises(UnsupportedOpError, match=None) as e:
        lower(Fn(fn), torch.randn(2, 3, 4, 4))
    assert text in str(e.value) and "top-level module (test_lowering.Fn)" in str(e.value)


def test_conv_transpose_is_refused() -> None:
    with pytest.raises(UnsupportedOpError, match="conv_transpose|transposed"):
        lower(nn.ConvTranspose2d(3, 2, 3), torch.randn(2, 3, 4, 4))


def test_bad_example_input_and_identity_model() -> None:
    with pytest.raises(ArgumentError, match="float32"):
        lower(nn.ReLU(), torch.randn(2, 3, 4, 4, dtype=torch.float64))
    with pytest.raises(ArgumentError, match="computes nothing"):
        lower(nn.Identity(), torch.randn(2, 3, 4, 4))


def test_pack_writes_provenance_labels_and_keeps_training_mode(tmp_path) -> None:
    model = nn.Sequential(nn.Conv2d(3, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))
    model.train()
    report = pack(model, torch.randn(2, 3, 4, 4), tmp_path / "m.crisp",
                  labels=[(5, "a"), (9, "b"), (11, "c")], provenance={"pruning": {"d": 0.5}})
    assert model.training, "pack must leave the model's mode as it was"
    assert report.folded_bn == 1 and report.ops == 3
    assert report.macs == 2 * 2 * 2 * 27 + 3 * 8
    assert report.bytes == os.path.getsize(tmp_path / "m.crisp")
    mf = fmt.read_model(tmp_path / "m.crisp")
    assert [(lb.class_id, lb.name) for lb in mf.labels] == [(5, "a"), (9, "b"), (11, "c")]
    prov = mf.provenance
    assert prov["crisp_edge_version"] == "0.1.0" and prov["pruning"] == {"d": 0.5}
    assert prov["source"] == "torch.nn.modules.container.Sequential"
    assert prov["source_sha256"] == state_dict_sha256(model) and prov["input_shape"] == [3, 4, 4]
    assert prov["created"].endswith("Z")
    json.dumps(prov)


def test_pack_failure_leaves_no_file(tmp_path) -> None:
    target = tmp_path / "m.crisp"
    target.write_bytes(b"old")
    with pytest.raises(UnsupportedOpError):
        pack(Bad(), torch.randn(2, 3, 8, 8), target)
    with pytest.raises(ArgumentError, match="labels: 1 given, but the model has 4 outputs"):
        pack(nn.Linear(3, 4), torch.randn(2, 3), target, labels=[(0, "x")])
    assert target.read_bytes() == b"old" and sorted(os.listdir(tmp_path)) == ["m.crisp"]


def test_non_finite_weight_is_refused_naming_the_parameter(tmp_path) -> None:
    model = nn.Sequential(nn.Conv2d(3, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))
    with torch.no_grad():
        model[3].bias[1] = float("inf")
    with pytest.raises(ArgumentError, match=r"3\.weight: the bias \(after folding BatchNorm\) "
                                            "holds NaN or infinite values"):
        pack(model, torch.randn(2, 3, 4, 4), tmp_path / "m.crisp")
    assert not (tmp_path / "m.crisp").exists()


@pytest.mark.parametrize("name", ["TinyResNet", "TinyMobileNetV2", "TinyVGG"])
def test_acceptance_models_lower_exactly(name: str) -> None:
    import nets

    torch.manual_seed(0)
    model = randomize_batch_norm(getattr(nets, name)(), seed=1)
    lowered, kinds, _ = lower_and_check(model, torch.randn(2, 3, 32, 32))
    assert "RELU" not in kinds and "RELU6" not in kinds  # all fused


def test_max_pool_with_indices_uses_values_only() -> None:
    fn = Fn(lambda x: F.max_pool2d(x, 3, 2, 1, return_indices=True)[0])
    _, kinds, _ = lower_and_check(fn, torch.randn(2, 3, 7, 7))
    assert kinds == ["MAX_POOL2D"]
    with pytest.raises(UnsupportedOpError, match="index 1 of a multi-result op"):
        lower(Fn(lambda x: F.max_pool2d(x, 2, return_indices=True)[1].float()),
              torch.randn(2, 3, 4, 4))


def test_export_failure_is_reported_as_unsupported() -> None:
    def branchy(x: torch.Tensor) -> torch.Tensor:
        return F.relu(x) if float(x.sum()) > 0 else x

    with pytest.raises(UnsupportedOpError, match="torch.export could not capture Fn"):
        lower(Fn(branchy), torch.randn(2, 3, 4, 4))
