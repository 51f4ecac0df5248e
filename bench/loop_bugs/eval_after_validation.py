"""Validation switches to eval mode every epoch, but train mode is only set once, before the first epoch.

expect: mode.eval_during_training
onset: 46  (the first step of epoch 2: 45 batches per epoch)
"""

import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
digits = load_digits()
x = torch.tensor(digits.data, dtype=torch.float32)
x = (x - x.mean(0)) / (x.std(0) + 1e-6)
y = torch.tensor(digits.target)
perm = torch.randperm(len(x))
train, val = perm[:1437], perm[1437:]
loader = DataLoader(TensorDataset(x[train], y[train]), batch_size=32, shuffle=True)

model = nn.Sequential(nn.Linear(64, 128), nn.BatchNorm1d(128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, 10))
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
loss_fn = nn.CrossEntropyLoss()

model.train()
for epoch in range(6):
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(x[val]).argmax(1) == y[val]).float().mean()
    print(f"epoch {epoch}: loss {loss.item():.3f}, val accuracy {accuracy:.3f}")
