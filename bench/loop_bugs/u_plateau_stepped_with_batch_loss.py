"""A small CNN on 8x8 digits with ReduceLROnPlateau, stepped with the training loss of every batch instead of the
validation loss once per epoch (patience=3, factor=0.5, set for epochs): batch-to-batch noise looks like a plateau
every few batches and the LR is halved each time, so training stalls at a loss near 1.2.

expect: lr.schedule_collapse
onset: traced  (the first step at which the LR is 1000x below its start; the script prints it when
       LOOPBUG_TRACE=1, a run without torchmedic)
"""

import os

import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class DigitNet(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(32 * 2 * 2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(torch.relu(self.conv1(x)))  # (B, 16, 4, 4)
        x = self.pool(torch.relu(self.conv2(x)))  # (B, 32, 2, 2)
        return self.fc(x.flatten(1))


torch.manual_seed(0)
digits = load_digits()
images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
images = (images - 0.3) / 0.4
labels = torch.tensor(digits.target)
perm = torch.randperm(len(images))
train_idx, val_idx = perm[:1500], perm[1500:]
train_loader = DataLoader(TensorDataset(images[train_idx], labels[train_idx]), batch_size=32, shuffle=True)

model = DigitNet()
optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=3)
criterion = nn.CrossEntropyLoss()
trace = os.environ.get("LOOPBUG_TRACE") == "1"
start_lr = optimizer.param_groups[0]["lr"]

step = 0
for epoch in range(6):
    model.train()
    for batch_images, batch_labels in train_loader:
        if trace and optimizer.param_groups[0]["lr"] <= start_lr * 1e-3:
            print(f"ONSET {step + 1}")
            trace = False
        optimizer.zero_grad()
        loss = criterion(model(batch_images), batch_labels)
        loss.backward()
        optimizer.step()
        scheduler.step(loss.item())
        step += 1
    model.eval()
    with torch.no_grad():
        val_acc = (model(images[val_idx]).argmax(1) == labels[val_idx]).float().mean().item()
    print(
        f"epoch {epoch}: loss {loss.item():.3f}, val accuracy {val_acc:.3f}, lr {optimizer.param_groups[0]['lr']:.1e}"
    )
