"""A config flag `weight_decay: 1` (meant as "on") goes straight into Adam: the L2 pull outweighs the data and
shrinks every weight towards zero, until the output is the same for every digit.

expect: optim.over_regularized
onset: traced  (the first step at which the outputs vary across the training set 10x less than at init; the
       script prints it when LOOPBUG_TRACE=1, a run without torchmedic)
"""

import os

import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
digits = load_digits()
x = torch.tensor(digits.data, dtype=torch.float32)
x = (x - x.mean(0)) / (x.std(0) + 1e-6)
y = torch.tensor(digits.target)
loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)

config = {"lr": 1e-3, "weight_decay": 1}
model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"], weight_decay=config["weight_decay"])
loss_fn = nn.CrossEntropyLoss()
trace = os.environ.get("LOOPBUG_TRACE") == "1"
with torch.no_grad():
    spread_at_init = model(x).std(0).mean()

step = 0
for epoch in range(6):
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
        step += 1
        if trace:
            with torch.no_grad():
                if model(x).std(0).mean() < 0.1 * spread_at_init:
                    print(f"ONSET {step}")
                    trace = False
    print(f"epoch {epoch}: loss {loss.item():.3f}")
