"""The model zoo matches torchvision's parameter layout and is capturable by torch.export.

torchvision is not installed here, so its published numbers and state-dict keys are written
down below (from torchvision's model docs and its ``state_dict()``); a checkpoint saved by
torchvision loads into these models with ``strict=True`` only if every key and shape agrees.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from crisp_edge.models.zoo import (
    ARCHITECTURES,
    TinyResNet,
    arch_names,
    build_arch,
    input_size,
)

IMAGENET = ["resnet18", "resnet50", "vgg16_bn", "mobilenet_v2"]
CIFAR = ["resnet18_cifar", "resnet50_cifar", "vgg16_bn_cifar", "mobilenet_v2_cifar"]

# torchvision's published parameter counts (1000 classes).
PARAMS = {"resnet18": 11_689_512, "resnet50": 25_557_032, "vgg16_bn": 138_365_992,
          "mobilenet_v2": 3_504_872}

# state_dict entries, num_batches_tracked included:
#   resnet18: stem conv+bn 1+5, 8 basic blocks × (2 conv + 2 bn×5) = 96, 3 projections × 6,
#             fc 2                                                   → 122
#   resnet50: 6 + 16 bottlenecks × (3 + 15) = 288 + 4 projections × 6 + 2 → 320
#   vgg16_bn: 13 convs × (weight, bias) + 13 BNs × 5 + 3 linears × 2 = 26 + 65 + 6 → 97
#   mobilenet_v2: stem 6 + first block (dw 6, project 1+5) 12 + 16 blocks × 18 + last 6
#             + classifier 2                                          → 314
KEY_COUNTS = {"resnet18": 122, "resnet50": 320, "vgg16_bn": 97, "mobilenet_v2": 314}

EXPECTED_KEYS: dict[str, dict[str, tuple[int, ...]]] = {
    "resnet18": {
        "conv1.weight": (64, 3, 7, 7),
        "bn1.running_var": (64,),
        "layer1.0.conv1.weight": (64, 64, 3, 3),
        "layer1.1.bn2.num_batches_tracked": (),
        "layer2.0.conv1.weight": (128, 64, 3, 3),
        "layer2.0.downsample.0.weight": (128, 64, 1, 1),
        "layer2.0.downsample.1.running_mean": (128,),
        "layer4.1.conv2.weight": (512, 512, 3, 3),
        "fc.weight": (1000, 512),
        "fc.bias": (1000,),
    },
    "resnet50": {
        "layer1.0.conv1.weight": (64, 64, 1, 1),
        "layer1.0.conv2.weight": (64, 64, 3, 3),
        "layer1.0.conv3.weight": (256, 64, 1, 1),
        "layer1.0.downsample.0.weight": (256, 64, 1, 1),
        "layer2.0.conv1.weight": (128, 256, 1, 1),
        "layer2.0.downsample.0.weight": (512, 256, 1, 1),
        "layer3.5.bn3.weight": (1024,),
        "layer4.2.conv3.weight": (2048, 512, 1, 1),
        "fc.weight": (1000, 2048),
    },
    "vgg16_bn": {
        "features.0.weight": (64, 3, 3, 3),
        "features.0.bias": (64,),
        "features.1.running_var": (64,),
        "features.7.weight": (128, 64, 3, 3),
        "features.14.weight": (256, 128, 3, 3),
        "features.40.weight": (512, 512, 3, 3),
        "features.41.num_batches_tracked": (),
        "classifier.0.weight": (4096, 25088),
        "classifier.3.weight": (4096, 4096),
        "classifier.6.weight": (1000, 4096),
        "classifier.6.bias": (1000,),
    },
    "mobilenet_v2": {
        "features.0.0.weight": (32, 3, 3, 3),
        "features.0.1.running_mean": (32,),
        "features.1.conv.0.0.weight": (32, 1, 3, 3),
        "features.1.conv.1.weight": (16, 32, 1, 1),
        "features.1.conv.2.weight": (16,),
        "features.2.conv.0.0.weight": (96, 16, 1, 1),
        "features.2.conv.1.0.weight": (96, 1, 3, 3),
        "features.2.conv.2.weight": (24, 96, 1, 1),
        "features.2.conv.3.running_var": (24,),
        "features.17.conv.2.weight": (320, 960, 1, 1),
        "features.18.0.weight": (1280, 320, 1, 1),
        "features.18.1.weight": (1280,),
        "classifier.1.weight": (1000, 1280),
    },
}

# Keys that must NOT exist (a sign of a non-torchvision layout).
ABSENT = {"resnet18": ["maxpool.weight", "avgpool.weight"],
          "vgg16_bn": ["features.44.weight", "classifier.1.weight"],
          "mobilenet_v2": ["features.1.conv.3.weight", "classifier.0.weight", "avgpool"]}


def _state_shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def imagenet_models() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    return {name: build_arch(name).eval() for name in IMAGENET}


def test_registry() -> None:
    assert arch_names() == list(ARCHITECTURES)
    assert set(IMAGENET + CIFAR + ["tiny_resnet"]) == set(arch_names())
    for name in IMAGENET:
        assert input_size(name) == 224 and ARCHITECTURES[name].num_classes == 1000
    for name in CIFAR + ["tiny_resnet"]:
        assert input_size(name) == 32 and ARCHITECTURES[name].num_classes == 100
    assert isinstance(build_arch("tiny_resnet", 7), TinyResNet)


def test_unknown_architecture_lists_known_names() -> None:
    with pytest.raises(ValueError, match="unknown architecture 'resnet19'.*resnet18.*mobilenet_v2"):
        build_arch("resnet19")
    with pytest.raises(ValueError, match="known"):
        input_size("alexnet")
    with pytest.raises(ValueError, match="num_classes"):
        build_arch("resnet18_cifar", num_classes=0)


@pytest.mark.parametrize("name", IMAGENET)
def test_imagenet_layout_matches_torchvision(imagenet_models, name: str) -> None:
    model = imagenet_models[name]
    assert sum(p.numel() for p in model.parameters()) == PARAMS[name]
    shapes = _state_shapes(model)
    assert len(shapes) == KEY_COUNTS[name]
    for key, shape in EXPECTED_KEYS[name].items():
        assert key in shapes, f"{name}: missing {key}"
        assert shapes[key] == shape, f"{name}: {key} is {shapes[key]}, torchvision has {shape}"
    for key in ABSENT.get(name, []):
        assert key not in shapes


@pytest.mark.parametrize("name", IMAGENET)
def test_imagenet_forward_224(imagenet_models, name: str) -> None:
    with torch.inference_mode():
        y = imagenet_models[name](torch.randn(1, 3, 224, 224))
    assert y.shape == (1, 1000) and torch.isfinite(y).all()


@pytest.mark.parametrize("name", CIFAR)
def test_cifar_variant_keeps_names_and_runs_at_32(imagenet_models, name: str) -> None:
    model = build_arch(name).eval()
    base = _state_shapes(imagenet_models[name.removesuffix("_cifar")])
    shapes = _state_shapes(model)
    # Same keys as torchvision's; only the stem (ResNet) and the head shapes may differ.
    assert shapes.keys() == base.keys()
    changed = {k for k in shapes if shapes[k] != base[k]}
    allowed = {"conv1.weight", "fc.weight", "fc.bias"} | {
        k for k in shapes if k.startswith("classifier.")}
    assert changed <= allowed, changed - allowed
    with torch.inference_mode():
        y = model(torch.randn(2, 3, 32, 32))
    assert y.shape == (2, 100) and torch.isfinite(y).all()


def test_cifar_adaptations() -> None:
    r = build_arch("resnet18_cifar")
    assert (r.conv1.kernel_size, r.conv1.stride, r.conv1.padding) == ((3, 3), (1, 1), (1, 1))
    assert isinstance(r.maxpool, nn.Identity)
    v = build_arch("vgg16_bn_cifar", 10)
    assert v.avgpool.output_size == (1, 1)
    assert [v.classifier[i].out_features for i in (0, 3, 6)] == [512, 512, 10]
    m = build_arch("mobilenet_v2_cifar")
    assert m.features[0][0].stride == (1, 1)
    assert m.features[2].conv[1][0].stride == (1, 1)
    # Only three stride-2 convolutions remain: 32 → 4 at the end.
    with torch.inference_mode():
        assert m.features(torch.randn(1, 3, 32, 32)).shape == (1, 1280, 4, 4)
        assert r.layer4(r.layer3(r.layer2(r.layer1(torch.randn(1, 64, 32, 32))))).shape[-1] == 4


def test_num_classes_and_init() -> None:
    m = build_arch("mobilenet_v2", num_classes=7)
    assert m.classifier[1].weight.shape == (7, 1280)
    # torchvision's init: BN at identity, linear N(0, 0.01), conv kaiming fan_out.
    assert torch.all(m.features[0][1].weight == 1) and torch.all(m.features[0][1].bias == 0)
    assert torch.all(m.classifier[1].bias == 0)
    assert 0.005 < float(m.classifier[1].weight.detach().std()) < 0.015
    conv = build_arch("resnet18_cifar").layer1[0].conv1
    fan_out = conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
    assert abs(float(conv.weight.detach().std()) - (2.0 / fan_out) ** 0.5) < 0.01


@pytest.mark.parametrize("name", ["resnet18_cifar", "vgg16_bn_cifar", "mobilenet_v2_cifar"])
def test_state_dict_round_trip_strict(tmp_path, name: str) -> None:
    torch.manual_seed(1)
    src = build_arch(name, 10).eval()
    with torch.no_grad():  # make running stats non-trivial so the round trip is meaningful
        for mod in src.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 1.5)
    torch.save(src.state_dict(), tmp_path / "w.pt")
    dst = build_arch(name, 10).eval()
    result = dst.load_state_dict(torch.load(tmp_path / "w.pt", weights_only=True), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    x = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        assert torch.equal(src(x), dst(x))


def test_head_of_other_size_fails_strict_load() -> None:
    state = build_arch("resnet18_cifar", 10).state_dict()
    with pytest.raises(RuntimeError, match="fc.weight"):
        build_arch("resnet18_cifar", 100).load_state_dict(state, strict=True)


@pytest.mark.parametrize("name", arch_names())
def test_torch_export_at_cifar_size(name: str) -> None:
    model = build_arch(name, 10).eval()
    x = torch.randn(1, 3, 32, 32)
    program = torch.export.export(model, (x,))
    with torch.inference_mode():
        expected = model(x)
    torch.testing.assert_close(program.module()(x), expected)
