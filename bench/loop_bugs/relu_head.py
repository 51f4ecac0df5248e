"""The classifier's layers were built in a loop that appends a ReLU after every Linear, the last one included.

expect: arch.output_activation
onset: 1
"""

import itertools

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

sizes = [64, 128, 64, 10]
layers: list[nn.Module] = []
for n_in, n_out in itertools.pairwise(sizes):
    layers += [nn.Linear(n_in, n_out), nn.ReLU()]
model = nn.Sequential(*layers)
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
loss_fn = nn.CrossEntropyLoss()

for epoch in range(4):
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
    print(f"epoch {epoch}: loss {loss.item():.3f}")
