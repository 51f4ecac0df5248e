"""init_weights checked against each scheme's definition: weight std vs the formula, orthogonality, LSUV, head."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from torchmedic import InputError, ModelError, init_weights
from torchmedic.remedies.nonlinearity import ASSUMED_FUNCTIONAL, FROM_REGISTRATION, FROM_TRACE

RELU = math.sqrt(2.0)
LEAKY_05 = math.sqrt(2.0 / (1 + 0.5**2))
TANH = 5.0 / 3.0


class Net(nn.Module):
    """conv1 -> ReLU, conv2 -> BN -> LeakyReLU(0.5), fc1 -> tanh (a function call), fc2 -> nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, padding=1)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(32, 32, 3, padding=1)
        self.bn = nn.BatchNorm2d(32)
        self.act2 = nn.LeakyReLU(0.5)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc1 = nn.Linear(128, 256)
        self.fc2 = nn.Linear(256, 5)
        self.unused_embedding = nn.Embedding(10, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.act2(self.bn(self.conv2(self.act1(self.conv1(x))))))  # (B, 32, 2, 2)
        return self.fc2(torch.tanh(self.fc1(x.flatten(1))))


def batch(n: int = 64, seed: int = 0, classes: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 8, 8, generator=g), torch.randint(0, classes, (n,), generator=g)


def fans(weight: torch.Tensor) -> tuple[int, int]:
    receptive = weight[0][0].numel() if weight.dim() > 2 else 1
    return weight.shape[1] * receptive, weight.shape[0] * receptive


def assert_std(weight: torch.Tensor, expected: float) -> None:
    # The sample std of N i.i.d. draws is within a few 1/sqrt(N) of the true std (relative).
    tolerance = 4 / math.sqrt(weight.numel())
    assert float(weight.detach().std()) == pytest.approx(expected, rel=tolerance)


def test_kaiming_follows_the_classic_recipe_with_the_gain_of_the_next_activation() -> None:
    torch.manual_seed(0)
    model = Net()
    record = init_weights(model, "kaiming", batch=batch())

    _, fan_out = fans(model.conv1.weight)
    assert_std(model.conv1.weight, RELU / math.sqrt(fan_out))
    _, fan_out = fans(model.conv2.weight)
    assert_std(model.conv2.weight, LEAKY_05 / math.sqrt(fan_out))
    for layer, gain in ((model.fc1, TANH), (model.fc2, 1.0)):
        fan_in, fan_out = fans(layer.weight)
        bound = gain * math.sqrt(6 / (fan_in + fan_out))
        assert float(layer.weight.detach().abs().max()) <= bound
        assert_std(layer.weight, bound / math.sqrt(3))
    for biased in (model.conv1, model.conv2, model.fc1, model.fc2):
        assert biased.bias is not None and not biased.bias.any()

    seen = {layer.scope: (layer.nonlinearity, layer.gain, layer.nonlinearity_source) for layer in record.layers}
    assert seen == {
        "conv1": ("relu", pytest.approx(RELU), FROM_TRACE),
        "conv2": ("leaky_relu", pytest.approx(LEAKY_05), FROM_TRACE),
        "fc1": ("tanh", pytest.approx(TANH), FROM_TRACE),
        "fc2": ("none", 1.0, FROM_TRACE),
    }
    assert "a=0.5" in record.layer("conv2").rule and "fan_out" in record.layer("conv2").rule
    assert record.layer("fc1").std_after == pytest.approx(float(model.fc1.weight.detach().std()))


def test_the_record_says_what_was_left_alone_and_why() -> None:
    record = init_weights(Net(), "kaiming", batch=batch())
    untouched = {u.scope: u.reason for u in record.untouched}
    assert set(untouched) == {"bn", "unused_embedding"}
    assert "embedding" in untouched["unused_embedding"]
    assert "norm" in untouched["bn"]


def test_xavier_uses_the_uniform_bound_with_the_gain_everywhere() -> None:
    torch.manual_seed(1)
    model = Net()
    init_weights(model, "xavier", batch=batch())
    for layer, gain in ((model.conv1, RELU), (model.conv2, LEAKY_05), (model.fc1, TANH), (model.fc2, 1.0)):
        fan_in, fan_out = fans(layer.weight)
        bound = gain * math.sqrt(6 / (fan_in + fan_out))
        assert float(layer.weight.detach().abs().max()) <= bound
        assert_std(layer.weight, bound / math.sqrt(3))


def test_orthogonal_rows_or_columns_are_orthonormal_times_the_gain() -> None:
    torch.manual_seed(2)
    model = Net()
    init_weights(model, "orthogonal", batch=batch())
    for layer, gain in ((model.conv1, RELU), (model.conv2, LEAKY_05), (model.fc1, TANH), (model.fc2, 1.0)):
        w = layer.weight.detach().reshape(layer.weight.shape[0], -1).double()
        gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
        assert torch.allclose(gram, gain**2 * torch.eye(gram.shape[0], dtype=torch.float64), atol=1e-5)


def test_lsuv_brings_every_layer_output_to_unit_variance_in_forward_order() -> None:
    torch.manual_seed(3)
    model = Net()
    inputs, targets = batch(128)
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    record = init_weights(model, "lsuv", batch=(inputs, targets))
    # Only weights change: the BatchNorm running statistics of the user's model are as before.
    assert all(torch.equal(b, buffers[n]) for n, b in model.named_buffers())

    assert [layer.scope for layer in record.layers] == ["conv1", "conv2", "fc1", "fc2"]
    outputs: dict[str, torch.Tensor] = {}
    hooks = [getattr(model, n).register_forward_hook(lambda m, a, o, n=n: outputs.__setitem__(n, o))
             for n in ("conv1", "conv2", "fc1", "fc2")]  # fmt: skip
    with torch.no_grad():
        model.train()(inputs)
    for h in hooks:
        h.remove()
    assert set(outputs) == {"conv1", "conv2", "fc1", "fc2"}
    for name, output in outputs.items():
        assert abs(float(output.double().var()) - 1) < 0.1, name


def test_lsuv_and_head_without_a_batch_say_what_is_missing() -> None:
    for scheme in ("lsuv", "head"):
        with pytest.raises(InputError, match="needs a batch"):
            init_weights(Net(), scheme)
    with pytest.raises(InputError, match="targets"):
        init_weights(Net(), "head", batch=torch.randn(4, 3, 8, 8))
    with pytest.raises(ModelError, match=r"\(4, 3, 5, 5\)"):
        init_weights(nn.Sequential(nn.Flatten(), nn.Linear(10, 2)), batch=torch.randn(4, 3, 5, 5))


def test_head_makes_the_loss_at_init_the_label_entropy() -> None:
    torch.manual_seed(4)
    model = Net()
    g = torch.Generator().manual_seed(0)
    inputs = torch.randn(512, 3, 8, 8, generator=g)
    targets = torch.multinomial(torch.tensor([0.6, 0.2, 0.1, 0.07, 0.03]), 512, replacement=True, generator=g)
    before = {n: p.clone() for n, p in model.named_parameters()}
    record = init_weights(model, "head", batch=(inputs, targets))

    p = torch.bincount(targets, minlength=5).double() / len(targets)
    entropy = float(-(p * p.log()).sum())
    with torch.no_grad():
        loss = float(F.cross_entropy(model(inputs), targets))
    assert loss == pytest.approx(entropy, abs=0.01)
    assert torch.allclose(model.fc2.bias.double(), p.log(), atol=1e-6)
    assert [layer.scope for layer in record.layers] == ["fc2"]
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters() if not n.startswith("fc2"))


def test_head_on_binary_and_regression_targets() -> None:
    torch.manual_seed(5)
    binary = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 1))
    x = torch.randn(400, 6)
    y = (torch.rand(400, 1) < 0.2).float()
    init_weights(binary, "head", batch=(x, y))
    rate = float(y.mean())
    with torch.no_grad():
        bce = float(F.binary_cross_entropy_with_logits(binary(x), y))
    assert bce == pytest.approx(-(rate * math.log(rate) + (1 - rate) * math.log(1 - rate)), abs=0.01)

    regression = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 2))
    targets = torch.randn(400, 2) * torch.tensor([3.0, 0.5]) + torch.tensor([1000.0, -7.0])
    init_weights(regression, "head", batch=(x, targets))
    with torch.no_grad():
        mse = F.mse_loss(regression(x), targets, reduction="none").mean(0)
    assert torch.allclose(mse, targets.var(0, unbiased=False), rtol=0.02)


def test_include_limits_the_change_to_the_named_layers() -> None:
    model = Net()
    before = {n: p.clone() for n, p in model.named_parameters()}
    record = init_weights(model, include=["conv2", "fc2"], batch=batch())
    changed = {n.rsplit(".", 1)[0] for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == {"conv2", "fc2"}
    assert {u.scope for u in record.untouched} >= {"conv1", "fc1"}

    record = init_weights(Net(), include=lambda name, module: isinstance(module, nn.Linear))
    assert [layer.scope for layer in record.layers] == ["fc1", "fc2"]
    with pytest.raises(InputError, match="conv3"):
        init_weights(Net(), include=["conv3"])
    with pytest.raises(InputError, match="bn"):
        init_weights(Net(), include=["bn"])
    with pytest.raises(InputError, match="unknown init scheme"):
        init_weights(Net(), "he")  # type: ignore[arg-type]


def test_without_a_batch_the_next_registered_module_decides_and_the_record_says_so() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.LeakyReLU(0.1), nn.Flatten(), nn.Linear(8, 2))
    record = init_weights(model)
    assert (record.layers[0].nonlinearity, record.layers[0].nonlinearity_source) == ("leaky_relu", FROM_REGISTRATION)
    assert record.layers[0].gain == pytest.approx(math.sqrt(2 / (1 + 0.1**2)))
    assert record.layers[1].nonlinearity == "none"

    class Functional(nn.Module):  # no activation modules: forward() must call them as functions
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(4, 8), nn.Linear(8, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(F.relu(self.a(x)))

    record = init_weights(Functional())
    assert [(r.nonlinearity, r.nonlinearity_source) for r in record.layers] == [
        ("relu", ASSUMED_FUNCTIONAL),
        ("none", ASSUMED_FUNCTIONAL),
    ]


def test_a_generator_makes_it_reproducible_and_forward_passes_touch_no_rng_or_buffer() -> None:
    first, second = Net(), Net()
    rng = torch.get_rng_state()
    init_weights(first, "lsuv", batch=batch(), generator=torch.Generator().manual_seed(7))
    init_weights(second, "lsuv", batch=batch(), generator=torch.Generator().manual_seed(7))
    assert torch.equal(torch.get_rng_state(), rng)
    for name in ("conv1", "conv2", "fc1", "fc2"):
        assert torch.equal(getattr(first, name).weight, getattr(second, name).weight), name
    assert first.bn.num_batches_tracked is not None and int(first.bn.num_batches_tracked) == 0
