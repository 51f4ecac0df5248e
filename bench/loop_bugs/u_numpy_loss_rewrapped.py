"""A tumour classifier (breast-cancer data, binary head) with a class-weighted log loss written in NumPy "to match
the sklearn metric"; backward() complained that the result has no grad_fn, so it is re-wrapped with
`torch.tensor(..., requires_grad=True)`. The graph is cut: backward() runs and no parameter ever gets a gradient.

expect: optim.not_updating
onset: 1
"""

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def weighted_log_loss(probs: torch.Tensor, targets: torch.Tensor, pos_weight: float) -> torch.Tensor:
    p = np.clip(probs.detach().numpy(), 1e-7, 1 - 1e-7)
    t = targets.numpy()
    value = -np.mean(pos_weight * t * np.log(p) + (1 - t) * np.log(1 - p))
    return torch.tensor(value, requires_grad=True)


torch.manual_seed(0)
data = load_breast_cancer()
X_train, X_test, y_train, y_test = train_test_split(data.data, data.target, test_size=0.25, random_state=0)
mean, std = X_train.mean(0), X_train.std(0)
X_train = torch.tensor((X_train - mean) / std, dtype=torch.float32)
X_test = torch.tensor((X_test - mean) / std, dtype=torch.float32)
y_train = torch.tensor(y_train, dtype=torch.float32)
y_test = torch.tensor(y_test, dtype=torch.float32)
pos_weight = float((y_train == 0).sum() / (y_train == 1).sum())
loader = DataLoader(TensorDataset(X_train, y_train), batch_size=32, shuffle=True)

model = nn.Sequential(nn.Linear(30, 32), nn.ReLU(), nn.Linear(32, 1))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

for epoch in range(15):
    model.train()
    for xb, yb in loader:
        optimizer.zero_grad()
        probs = torch.sigmoid(model(xb)).squeeze(1)
        loss = weighted_log_loss(probs, yb, pos_weight)
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        acc = ((torch.sigmoid(model(X_test)).squeeze(1) > 0.5).float() == y_test).float().mean().item()
    print(f"epoch {epoch}: loss {loss.item():.3f}, test accuracy {acc:.3f}")
