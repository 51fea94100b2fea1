"""Acceptance: ResNet, MobileNetV2 and VGG-style models, packed and run by the C runtime,
match torch within 1e-4 × max |torch output| at 32×32 (batch 2) and 224×224 (batch 1)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import randomize_batch_norm, torch_reference
from crisp_edge import format as fmt
from nets import TinyMobileNetV2, TinyResNet, TinyVGG

MODELS = {"resnet_bottleneck": TinyResNet, "mobilenet_v2": TinyMobileNetV2, "vgg_bn": TinyVGG}
# BatchNorms each architecture must fold away entirely.
BN_COUNT = {"resnet_bottleneck": 1 + 3 * 3 + 2, "mobilenet_v2": 1 + 2 + 3 * 4 + 1,
            "vgg_bn": 5}


@pytest.mark.parametrize("size, batch", [(32, 2), (224, 1)], ids=["32px", "224px"])
@pytest.mark.parametrize("name", MODELS)
def test_model_matches_torch(pack_and_run, tmp_path, name: str, size: int, batch: int) -> None:
    torch.manual_seed(0)
    model = randomize_batch_norm(MODELS[name](num_classes=10), seed=1)
    x = torch.randn(batch, 3, size, size)
    got, report = pack_and_run(model, x)
    expected = torch_reference(model, x)
    err = float(np.abs(got - expected).max())
    tol = 1e-4 * float(np.abs(expected).max())
    assert err <= tol, f"{name} at {size}px: max abs error {err:.3g} > {tol:.3g}"
    assert report.folded_bn == BN_COUNT[name]
    assert report.fused_activations > 0


def test_resnet_graph_shape(tmp_path) -> None:
    """The projection is one strided 1×1 conv and every residual add carries the fused ReLU."""
    from crisp_edge.packing.pack import pack

    pack(randomize_batch_norm(TinyResNet()), torch.randn(2, 3, 32, 32), tmp_path / "r.crisp")
    g = fmt.read_model(tmp_path / "r.crisp").graph
    adds = [op for op in g.ops if op.kind == fmt.OP_ADD]
    assert len(adds) == 3 and all(op.activation == fmt.ACT_RELU for op in adds)
    projections = [op for op in g.ops if op.kind == fmt.OP_CONV2D and op.params[0] == 1
                   and op.params[2] == 2]
    assert len(projections) == 1
    assert not any(op.kind in (fmt.OP_RELU, fmt.OP_RELU6) for op in g.ops)
