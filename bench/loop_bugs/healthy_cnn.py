"""A CNN with BatchNorm and dropout, validated every epoch (eval mode, then back to train mode), with a cosine
schedule stepped per batch that reaches 0 at the last step.

expect: healthy
"""

import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
digits = load_digits()
x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
x = (x - x.mean()) / x.std()
y = torch.tensor(digits.target)
perm = torch.randperm(len(x))
train, val = perm[:1437], perm[1437:]
loader = DataLoader(TensorDataset(x[train], y[train]), batch_size=32, shuffle=True)
val_loader = DataLoader(TensorDataset(x[val], y[val]), batch_size=128)

model = nn.Sequential(
    nn.Conv2d(1, 16, 3, padding=1),
    nn.BatchNorm2d(16),
    nn.ReLU(),
    nn.MaxPool2d(2),
    nn.Conv2d(16, 32, 3, padding=1),
    nn.BatchNorm2d(32),
    nn.ReLU(),
    nn.MaxPool2d(2),
    nn.Flatten(),
    nn.Dropout(0.3),
    nn.Linear(32 * 2 * 2, 10),
)
epochs = 6
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * len(loader))
loss_fn = nn.CrossEntropyLoss()

for epoch in range(epochs):
    model.train()
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
        scheduler.step()
    model.eval()
    correct = 0
    with torch.no_grad():
        for xb, yb in val_loader:
            correct += (model(xb).argmax(1) == yb).sum().item()
    print(f"epoch {epoch}: loss {loss.item():.3f}, val accuracy {correct / len(val):.3f}")
