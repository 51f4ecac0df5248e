"""Churn prediction with the imbalance handled: cross-entropy weighted by inverse class frequency.

expect: healthy
"""

import torch
from sklearn.datasets import make_classification
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
features, churned = make_classification(
    n_samples=4000,
    n_features=20,
    n_informative=4,
    n_redundant=2,
    weights=[0.93, 0.07],
    class_sep=0.5,
    flip_y=0.02,
    random_state=0,
)
x = torch.tensor(features, dtype=torch.float32)
x = (x - x.mean(0)) / x.std(0)
y = torch.tensor(churned)
loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True)

counts = torch.bincount(y)
model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 2))
optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
loss_fn = nn.CrossEntropyLoss(weight=counts.sum() / (len(counts) * counts.float()))

for epoch in range(8):
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
    print(f"epoch {epoch}: loss {loss.item():.3f}")
