"""Fine-tuning: a backbone is pre-trained on digits 0-4, the fine-tuning optimizer is built, then the head is
replaced for ten classes. The new head is in no optimizer and stays at its random init.

expect: optim.not_updating
onset: 1  (of the fine-tuning optimizer; the bench counts its steps after the 100 pre-training steps)
"""

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

model = Net(classes=5)
pretrain = DataLoader(TensorDataset(x[low], y[low]), batch_size=32, shuffle=True)
train(model, torch.optim.Adam(model.parameters(), lr=1e-3), pretrain, epochs=3)

optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
model.head = nn.Linear(64, 10)  # the new task has ten classes
train(model, optimizer, DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True), epochs=5)
