"""A linear warmup to a peak learning rate copied from a large-batch recipe: training goes well for ~70 steps,
then the growing LR pushes the second layer's ReLU units below zero for every input, and they die.

expect: lr.too_high
onset: traced  (the first step at which half of a hidden layer's units are dead on the whole training set;
       the script prints it when LOOPBUG_TRACE=1, a run without torchmedic)
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

model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10))
optimizer = torch.optim.SGD(model.parameters(), lr=1.0, momentum=0.9)
warmup = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / 300))
loss_fn = nn.CrossEntropyLoss()
trace = os.environ.get("LOOPBUG_TRACE") == "1"

step = 0
for epoch in range(6):
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
        warmup.step()
        step += 1
        if trace:
            with torch.no_grad():
                h1 = model[1](model[0](x))
                h2 = model[3](model[2](h1))
            dead = max((h1.amax(0) <= 0).float().mean(), (h2.amax(0) <= 0).float().mean())
            if dead >= 0.5:
                print(f"ONSET {step}")
                trace = False
    print(f"epoch {epoch}: loss {loss.item():.3f}")
