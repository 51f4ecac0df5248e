"""A `Trainer` class for a multi-label digits model (is it even? at least 5? prime? does it have a closed loop?):
BCEWithLogitsLoss on 4 independent outputs, `model.train()` at the start of every epoch, evaluation in eval mode,
and ReduceLROnPlateau stepped once per epoch with the validation loss.

expect: healthy
"""

import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def digit_attributes(d: torch.Tensor) -> torch.Tensor:
    even = d % 2 == 0
    large = d >= 5
    prime = (d == 2) | (d == 3) | (d == 5) | (d == 7)
    loop = (d == 0) | (d == 6) | (d == 8) | (d == 9)
    return torch.stack([even, large, prime, loop], dim=1).float()  # (N, 4)


class Trainer:
    def __init__(self, model: nn.Module, lr: float = 1e-3) -> None:
        self.model = model
        self.criterion = nn.BCEWithLogitsLoss()
        self.optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(self.optimizer, factor=0.5, patience=2)

    def train_one_epoch(self, loader: DataLoader) -> float:
        self.model.train()
        total, count = 0.0, 0
        for xb, yb in loader:
            self.optimizer.zero_grad()
            loss = self.criterion(self.model(xb), yb)
            loss.backward()
            self.optimizer.step()
            total, count = total + loss.item() * len(xb), count + len(xb)
        return total / count

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        self.model.eval()
        logits = self.model(x)
        return self.criterion(logits, y).item(), ((logits > 0).float() == y).all(1).float().mean().item()

    def fit(self, loader: DataLoader, val: tuple[torch.Tensor, torch.Tensor], epochs: int) -> None:
        for epoch in range(epochs):
            train_loss = self.train_one_epoch(loader)
            val_loss, exact = self.evaluate(*val)
            self.scheduler.step(val_loss)
            print(f"epoch {epoch}: train {train_loss:.3f}, val {val_loss:.3f}, exact-match accuracy {exact:.3f}")


torch.manual_seed(0)
digits = load_digits()
x = torch.tensor(digits.data, dtype=torch.float32)
x = (x - x.mean(0)) / (x.std(0) + 1e-6)
y = digit_attributes(torch.tensor(digits.target))
perm = torch.randperm(len(x))
train_idx, val_idx = perm[:1450], perm[1450:]
loader = DataLoader(TensorDataset(x[train_idx], y[train_idx]), batch_size=32, shuffle=True)

model = nn.Sequential(
    nn.Linear(64, 256), nn.ReLU(), nn.Dropout(0.3), nn.Linear(256, 128), nn.ReLU(), nn.Dropout(0.3), nn.Linear(128, 4)
)
Trainer(model).fit(loader, (x[val_idx], y[val_idx]), epochs=8)
