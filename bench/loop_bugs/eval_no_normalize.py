"""Training inputs are standardized; the evaluation at the end of every epoch feeds raw pixels.

expect: data.train_infer_mismatch
onset: 45  (the first evaluation, after 45 batches)
"""

import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
digits = load_digits()
raw = torch.tensor(digits.data, dtype=torch.float32)
y = torch.tensor(digits.target)
perm = torch.randperm(len(raw))
train, test = perm[:1437], perm[1437:]
mean, std = raw[train].mean(0), raw[train].std(0) + 1e-6
loader = DataLoader(TensorDataset((raw[train] - mean) / std, y[train]), batch_size=32, shuffle=True)
test_loader = DataLoader(TensorDataset(raw[test], y[test]), batch_size=64)  # forgot the normalization here

model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
loss_fn = nn.CrossEntropyLoss()

for epoch in range(6):
    model.train()
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
    model.eval()
    correct = 0
    with torch.no_grad():
        for xb, yb in test_loader:
            correct += (model(xb).argmax(1) == yb).sum().item()
    print(f"epoch {epoch}: loss {loss.item():.3f}, test accuracy {correct / len(test):.3f}")
