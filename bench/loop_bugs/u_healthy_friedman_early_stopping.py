"""A regression MLP on Friedman #1 data with a validation split, AdamW, gradient clipping and early stopping: the
best weights are kept as a copy of the state_dict and loaded back into the same model at the end.

expect: healthy
"""

import copy

import torch
from sklearn.datasets import make_friedman1
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def run_epoch(model, loader, loss_fn, optimizer=None):
    training = optimizer is not None
    model.train(training)
    total = 0.0
    with torch.set_grad_enabled(training):
        for xb, yb in loader:
            loss = loss_fn(model(xb), yb)
            if training:
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                optimizer.step()
            total += loss.item() * len(xb)
    return total / len(loader.dataset)


torch.manual_seed(0)
X, y = make_friedman1(n_samples=2400, n_features=10, noise=0.5, random_state=0)
X = torch.tensor(X, dtype=torch.float32)
y = torch.tensor(y, dtype=torch.float32).unsqueeze(1)  # (N, 1), like the model's output
X_mean, X_std, y_mean, y_std = X[:2000].mean(0), X[:2000].std(0), y[:2000].mean(), y[:2000].std()
X, y = (X - X_mean) / X_std, (y - y_mean) / y_std
train_loader = DataLoader(TensorDataset(X[:2000], y[:2000]), batch_size=32, shuffle=True)
val_loader = DataLoader(TensorDataset(X[2000:], y[2000:]), batch_size=200)

model = nn.Sequential(nn.Linear(10, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 1))
optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
loss_fn = nn.MSELoss()

best_val, best_state, patience, bad_epochs = float("inf"), None, 3, 0
for epoch in range(15):
    train_mse = run_epoch(model, train_loader, loss_fn, optimizer)
    val_mse = run_epoch(model, val_loader, loss_fn)
    print(f"epoch {epoch}: train mse {train_mse:.4f}, val mse {val_mse:.4f}")
    if val_mse < best_val:
        best_val, best_state, bad_epochs = val_mse, copy.deepcopy(model.state_dict()), 0
    else:
        bad_epochs += 1
        if bad_epochs >= patience:
            print("early stop")
            break
model.load_state_dict(best_state)
print(f"best val mse {best_val:.4f}, rmse in target units {best_val**0.5 * y_std.item():.3f}")
