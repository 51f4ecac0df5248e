"""Fine-tuning done right: pre-train on digits 0-4, save, load the backbone into a ten-class model with
strict=False (only the head's keys are missing), freeze the backbone, optimize the head.

expect: healthy
"""

import tempfile
from pathlib import Path

import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class Net(nn.Module):
    def __init__(self, classes: int) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU())
        self.head = nn.Linear(64, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def train(model: nn.Module, optimizer: torch.optim.Optimizer, loader: DataLoader, epochs: int) -> None:
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(epochs):
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: loss {loss.item():.3f}")


torch.manual_seed(0)
digits = load_digits()
x = torch.tensor(digits.data, dtype=torch.float32)
x = (x - x.mean(0)) / (x.std(0) + 1e-6)
y = torch.tensor(digits.target)
low = y < 5

pretrained = Net(classes=5)
train(
    pretrained,
    torch.optim.Adam(pretrained.parameters(), lr=1e-3),
    DataLoader(TensorDataset(x[low], y[low]), batch_size=32, shuffle=True),
    epochs=3,
)
checkpoint = Path(tempfile.mkdtemp()) / "backbone.pt"
torch.save({k: v for k, v in pretrained.state_dict().items() if not k.startswith("head.")}, checkpoint)

model = Net(classes=10)
result = model.load_state_dict(torch.load(checkpoint), strict=False)
print("missing:", result.missing_keys)
for p in model.backbone.parameters():
    p.requires_grad_(False)
optimizer = torch.optim.Adam(model.head.parameters(), lr=1e-2)
train(model, optimizer, DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True), epochs=4)
