"""A digits CNN with BatchNorm trained under bf16 autocast with the usual mixed-precision recipe copied from a GPU
script: a GradScaler around backward and step, gradients unscaled before clipping, StepLR once per epoch.

expect: healthy
"""

import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

device = "cpu"
torch.manual_seed(0)
digits = load_digits()
images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0  # (N, 1, 8, 8)
images = (images - images.mean()) / images.std()
targets = torch.tensor(digits.target)
perm = torch.randperm(len(images))
train_idx, val_idx = perm[:1400], perm[1400:]
train_loader = DataLoader(TensorDataset(images[train_idx], targets[train_idx]), batch_size=64, shuffle=True)
val_loader = DataLoader(TensorDataset(images[val_idx], targets[val_idx]), batch_size=256)

model = nn.Sequential(
    nn.Conv2d(1, 32, 3, padding=1),
    nn.BatchNorm2d(32),
    nn.ReLU(),
    nn.MaxPool2d(2),
    nn.Conv2d(32, 64, 3, padding=1),
    nn.BatchNorm2d(64),
    nn.ReLU(),
    nn.AdaptiveAvgPool2d(1),
    nn.Flatten(),
    nn.Linear(64, 10),
).to(device)
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.3)
scaler = torch.amp.GradScaler(device)
criterion = nn.CrossEntropyLoss()

for epoch in range(8):
    model.train()
    for xb, yb in train_loader:
        xb, yb = xb.to(device), yb.to(device)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device, dtype=torch.bfloat16):
            loss = criterion(model(xb), yb)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), max_norm=5.0)
        scaler.step(optimizer)
        scaler.update()
    scheduler.step()
    model.eval()
    correct = 0
    with torch.no_grad(), torch.autocast(device_type=device, dtype=torch.bfloat16):
        for xb, yb in val_loader:
            correct += (model(xb).argmax(1) == yb).sum().item()
    print(f"epoch {epoch}: loss {loss.item():.3f}, val accuracy {correct / len(val_idx):.3f}")
