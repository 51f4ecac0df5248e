"""A regression MLP on Friedman #1 data rolls back to its best checkpoint whenever the validation loss gets worse,
with `model = copy.deepcopy(best_model)`: the optimizer still holds the parameters of the model it was built over,
so from the first rollback on it updates a model nobody uses, and the new one never changes.

expect: optim.not_updating
onset: traced  (the first step after the first rollback; the script prints it when LOOPBUG_TRACE=1, a run without
       torchmedic)
"""

import copy
import os

import torch
from sklearn.datasets import make_friedman1
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
X, y = make_friedman1(n_samples=2400, n_features=10, noise=0.5, random_state=0)
X = torch.tensor(X, dtype=torch.float32)
y = torch.tensor(y, dtype=torch.float32).unsqueeze(1)
X = (X - X.mean(0)) / X.std(0)
y = (y - y.mean()) / y.std()
X_train, y_train, X_val, y_val = X[:2000], y[:2000], X[2000:], y[2000:]
loader = DataLoader(TensorDataset(X_train, y_train), batch_size=32, shuffle=True)

model = nn.Sequential(nn.Linear(10, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 1))
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
loss_fn = nn.MSELoss()
trace = os.environ.get("LOOPBUG_TRACE") == "1"

best_val, best_model, step = float("inf"), copy.deepcopy(model), 0
for epoch in range(12):
    model.train()
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
        step += 1
    model.eval()
    with torch.no_grad():
        val_loss = loss_fn(model(X_val), y_val).item()
    if val_loss < best_val:
        best_val, best_model = val_loss, copy.deepcopy(model)
    else:
        model = copy.deepcopy(best_model)  # roll back to the best weights and keep going
        if trace:
            print(f"ONSET {step + 1}")
            trace = False
    print(f"epoch {epoch}: train loss {loss.item():.3f}, val mse {val_loss:.3f} (best {best_val:.3f})")
