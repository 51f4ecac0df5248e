"""A digits CNN trained under bf16 autocast with SGD at lr=1.0, a value copied from a large-batch ImageNet recipe
(lr = 0.1 * batch / 256 with batch 2560) into a run with batch 32: the first steps overshoot and the loss blows up.

expect: lr.too_high
onset: 1
"""

import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

config = {"lr": 1.0, "momentum": 0.9, "batch_size": 32, "epochs": 4}

torch.manual_seed(0)
digits = load_digits()
x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0  # (N, 1, 8, 8)
x = (x - x.mean()) / x.std()
y = torch.tensor(digits.target)
perm = torch.randperm(len(x))
train_idx, val_idx = perm[:1400], perm[1400:]
loader = DataLoader(TensorDataset(x[train_idx], y[train_idx]), batch_size=config["batch_size"], shuffle=True)

model = nn.Sequential(
    nn.Conv2d(1, 32, 3, padding=1),
    nn.ReLU(),
    nn.Conv2d(32, 32, 3, padding=1),
    nn.ReLU(),
    nn.MaxPool2d(2),
    nn.Conv2d(32, 64, 3, padding=1),
    nn.ReLU(),
    nn.MaxPool2d(2),
    nn.Flatten(),
    nn.Linear(64 * 2 * 2, 128),
    nn.ReLU(),
    nn.Linear(128, 10),
)
optimizer = torch.optim.SGD(model.parameters(), lr=config["lr"], momentum=config["momentum"])
criterion = nn.CrossEntropyLoss()

for epoch in range(config["epochs"]):
    model.train()
    losses = []
    for images, targets in loader:
        optimizer.zero_grad()
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
            loss = criterion(model(images), targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad(), torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        acc = (model(x[val_idx]).argmax(1) == y[val_idx]).float().mean().item()
    print(f"epoch {epoch}: mean loss {sum(losses) / len(losses):.3f}, val accuracy {acc:.3f}")
