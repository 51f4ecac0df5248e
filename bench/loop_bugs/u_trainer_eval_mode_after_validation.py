"""A `Trainer` class calls `model.train()` once in its constructor, then `fit()` evaluates the untrained model
as a baseline: `evaluate()` switches to eval mode and nothing switches back. The deep BatchNorm CNN trains with
the running statistics of its init (BatchNorm is a no-op) and without dropout: at lr=0.1 it stays at chance,
then diverges.

expect: mode.eval_during_training
onset: 1
"""

import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU())


class Trainer:
    def __init__(self, model, train_loader, val_data, lr=0.1):
        self.model = model
        self.train_loader = train_loader
        self.val_x, self.val_y = val_data
        self.optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True)
        self.criterion = nn.CrossEntropyLoss()
        self.model.train()

    def train_one_epoch(self):
        total = 0.0
        for xb, yb in self.train_loader:
            self.optimizer.zero_grad()
            loss = self.criterion(self.model(xb), yb)
            loss.backward()
            self.optimizer.step()
            total += loss.item()
        return total / len(self.train_loader)

    @torch.no_grad()
    def evaluate(self):
        self.model.eval()
        logits = self.model(self.val_x)
        return self.criterion(logits, self.val_y).item(), (logits.argmax(1) == self.val_y).float().mean().item()

    def fit(self, epochs):
        val_loss, val_acc = self.evaluate()
        print(f"before training: val loss {val_loss:.3f}, val accuracy {val_acc:.3f}")
        for epoch in range(epochs):
            train_loss = self.train_one_epoch()
            val_loss, val_acc = self.evaluate()
            print(f"epoch {epoch}: train loss {train_loss:.3f}, val loss {val_loss:.3f}, val accuracy {val_acc:.3f}")


torch.manual_seed(0)
digits = load_digits()
x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0  # (N, 1, 8, 8)
x = (x - x.mean()) / x.std()
y = torch.tensor(digits.target)
perm = torch.randperm(len(x))
train_idx, val_idx = perm[:1500], perm[1500:]
loader = DataLoader(TensorDataset(x[train_idx], y[train_idx]), batch_size=32, shuffle=True)

model = nn.Sequential(
    conv_block(1, 32),
    conv_block(32, 32),
    conv_block(32, 32),
    nn.MaxPool2d(2),
    conv_block(32, 64),
    conv_block(64, 64),
    conv_block(64, 64),
    nn.MaxPool2d(2),
    nn.Flatten(),
    nn.Dropout(0.5),
    nn.Linear(64 * 2 * 2, 10),
)
Trainer(model, loader, (x[val_idx], y[val_idx]), lr=0.1).fit(epochs=5)
