"""Zero-code pre-flight: `torchmedic diagnose train.py` on unmodified scripts, captured at their first step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.nn.modules import module as module_hooks
from torch.optim import optimizer as optimizer_hooks
from torch.utils.data import DataLoader
from torch.utils.data.dataloader import _BaseDataLoaderIter

from torchmedic.capture.views import View, find_view
from torchmedic.cli import main

DATA = """
import argparse
import torch
import torch.nn.functional as F
from torch import nn
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, Dataset, TensorDataset

def digits(binary=False):
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x, dtype=torch.float32).view(-1, 8, 8)
    x = (x - x.mean()) / x.std()
    y = torch.tensor(y)
    if binary:
        y = (y >= 5).long()
    return x, y
"""

SOFTMAX_MLP = (
    DATA
    + """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        return torch.softmax(self.fc2(torch.relu(self.fc1(x))), dim=1)

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.manual_seed(0)
    x, y = digits()
    loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True)
    model = Net()
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    for epoch in range(args.epochs):
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = criterion(model(xb.view(xb.size(0), -1)), yb)
            loss.backward()
            optimizer.step()
    open(args.out, "w").write("trained")

if __name__ == "__main__":
    main()
"""
)

BINARY_FUNCTIONAL = (
    DATA
    + """
class Pairs(Dataset):
    def __init__(self):
        self.x, self.y = digits(binary=True)
    def __len__(self):
        return len(self.y)
    def __getitem__(self, i):
        return {"image": self.x[i], "label": self.y[i]}

if __name__ == "__main__":
    torch.manual_seed(0)
    loader = DataLoader(Pairs(), batch_size=32, shuffle=True)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for step, batch in enumerate(loader):
        prob = torch.sigmoid(model(batch["image"])).squeeze(1)
        loss = F.binary_cross_entropy(prob, batch["label"].float())
        opt.zero_grad()
        (loss * 4.0).backward()
        opt.step()
"""
)

HAND_WRITTEN_LOSS = (
    DATA
    + """
def train():
    x, y = digits()
    loader = DataLoader(TensorDataset(x.view(-1, 64), y.float()), batch_size=32)
    model = nn.Linear(64, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    for xb, yb in loader:
        loss = ((model(xb).squeeze(1) - yb) ** 2).mean()
        loss.backward()
        opt.step()

train()
"""
)


STALE_OPTIMIZER = (
    DATA
    + """
def build():
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

if __name__ == "__main__":
    x, y = digits()
    loader = DataLoader(TensorDataset(x.view(-1, 64), y), batch_size=32, shuffle=True)
    model = build()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model = build()  # rebuilt after the optimizer: the optimizer holds the first instance's parameters
    for xb, yb in loader:
        optimizer.zero_grad()
        F.cross_entropy(model(xb), yb).backward()
        optimizer.step()
"""
)

NEVER_STEPS = (
    DATA
    + """
if __name__ == "__main__":
    x, y = digits()
    loader = DataLoader(TensorDataset(x.view(-1, 64), y), batch_size=64)
    model = nn.Linear(64, 10)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for xb, yb in loader:
        optimizer.zero_grad()
        F.cross_entropy(model(xb), yb).backward()
"""
)


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "train.py"
    path.write_text(text)
    return str(path)


def global_hooks() -> tuple[int, ...]:
    return (
        len(module_hooks._global_forward_pre_hooks),
        len(module_hooks._global_forward_hooks),
        len(optimizer_hooks._global_optimizer_pre_hooks),
        len(optimizer_hooks._global_optimizer_post_hooks),
    )


def patched_functions() -> tuple[object, ...]:
    return (F.cross_entropy, F.binary_cross_entropy, torch.autograd.backward, DataLoader.__iter__,
            _BaseDataLoaderIter.__next__)  # fmt: skip


def test_a_script_with_main_is_diagnosed_at_its_first_step_and_ends_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hooks, functions = global_hooks(), patched_functions()
    out = tmp_path / "trained.txt"
    code = main(["diagnose", "--json", "-", write(tmp_path, SOFTMAX_MLP), "--", "--epochs", "3", "--out", str(out)])
    data = json.loads(capsys.readouterr().out)
    assert code == 1
    assert data["findings"][0]["cause"] == "loss.double_softmax"
    assert any("batch[0].reshape(-1, 64)" in note for note in data["notes"])  # the script's x.view(N, -1)
    assert not out.exists()  # the script stopped at its first step
    assert (global_hooks(), patched_functions()) == (hooks, functions)


def test_then_train_lets_the_script_finish_under_the_monitor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hooks, functions = global_hooks(), patched_functions()
    out = tmp_path / "trained.txt"
    code = main(["diagnose", "--then-train", write(tmp_path, SOFTMAX_MLP), "--", "--out", str(out)])
    assert code == 1
    assert out.read_text() == "trained"
    assert "optimizer steps" in capsys.readouterr().err  # the monitor's summary
    assert (global_hooks(), patched_functions()) == (hooks, functions)


def test_dict_batches_a_functional_loss_after_sigmoid_and_a_scaled_backward(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["diagnose", "--json", "-", write(tmp_path, BINARY_FUNCTIONAL)])
    data = json.loads(capsys.readouterr().out)
    assert any("F.binary_cross_entropy()" in note for note in data["notes"])
    assert any("torch.sigmoid(output).reshape(-1)" in note and "batch['label']" in note for note in data["notes"])
    assert data["task"] == "binary"
    assert code == 0, data["findings"]


def test_a_loss_written_by_hand_is_named_as_what_could_not_be_captured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hooks, functions = global_hooks(), patched_functions()
    assert main(["diagnose", write(tmp_path, HAND_WRITTEN_LOSS)]) == 2
    err = capsys.readouterr().err
    assert "no loss call was seen" in err and "setup() function" in err
    assert (global_hooks(), patched_functions()) == (hooks, functions)


def test_an_optimizer_over_another_instance_is_captured_and_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["diagnose", "--json", "-", write(tmp_path, STALE_OPTIMIZER)])
    data = json.loads(capsys.readouterr().out)
    assert code == 1
    assert data["findings"][0]["cause"] == "optim.not_updating"
    assert data["findings"][0]["verification"]["verdict"] == "gone"  # the fix, tried on a copy, made it learn
    assert any("holds none of the Adam's parameters" in note for note in data["notes"])


def test_a_script_that_never_steps_is_told_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diagnose", write(tmp_path, NEVER_STEPS)]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "called backward() 29 times and never optimizer.step()" in out


def test_a_script_that_raises_before_its_first_step(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diagnose", write(tmp_path, DATA + "digits()\nraise RuntimeError('no GPU here')\n")]) == 2
    assert "raised before its first optimizer step: RuntimeError: no GPU here" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("source", "seen", "expected"),
    [
        (torch.arange(6.0).reshape(2, 3), torch.arange(6.0).reshape(2, 3), View()),
        ((torch.zeros(2), torch.arange(6.0).reshape(2, 3)), torch.arange(6.0).reshape(2, 3), View(key=1)),
        (torch.arange(8.0).reshape(2, 2, 2), torch.arange(8.0).reshape(2, 4), View(shape=(4,))),
        (torch.tensor([[0.5], [-1.0]]), torch.sigmoid(torch.tensor([0.5, -1.0])), View(activation="sigmoid", shape=())),
        ({"y": torch.tensor([1, 0])}, torch.tensor([1.0, 0.0]), View(key="y", dtype=torch.float32)),
        (torch.tensor([[1.0, 2.0]]), torch.tensor([[2.0, 1.0]]), None),  # reordered: not a view torchmedic repeats
    ],
)
def test_find_view(source: object, seen: torch.Tensor, expected: View | None) -> None:
    activations = (None, "sigmoid", "softmax", "log_softmax")
    assert find_view(source, seen, activations) == expected
