"""A checkpoint saved from a DataParallel model ('module.' prefix) is loaded with strict=False: nothing matches,
so the "pretrained" model trains from its random init.

expect: init.pretrained_not_loaded
onset: 1  (the load happens before the first step)
"""

import tempfile
from pathlib import Path

import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_model() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))


torch.manual_seed(0)
checkpoint = Path(tempfile.mkdtemp()) / "pretrained.pt"
torch.save(nn.DataParallel(make_model()).state_dict(), checkpoint)  # what a multi-GPU run saves

digits = load_digits()
x = torch.tensor(digits.data, dtype=torch.float32)
x = (x - x.mean(0)) / (x.std(0) + 1e-6)
y = torch.tensor(digits.target)
loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)

model = make_model()
model.load_state_dict(torch.load(checkpoint), strict=False)  # "strict=False because of the head"
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
loss_fn = nn.CrossEntropyLoss()

for epoch in range(3):
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
    print(f"epoch {epoch}: loss {loss.item():.3f}")
