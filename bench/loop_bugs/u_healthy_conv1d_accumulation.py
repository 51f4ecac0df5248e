"""A 1-d CNN classifies waveform shapes (sine, square, sawtooth, triangle) with gradient accumulation over 4
micro-batches in a `train_one_epoch()` helper: the loss is divided by the accumulation count and the gradients are
cleared after each optimizer step.

expect: healthy
"""

import math

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_waves(n: int, length: int = 96) -> tuple[torch.Tensor, torch.Tensor]:
    kind = torch.randint(0, 4, (n,))
    freq = torch.rand(n, 1) * 3 + 2
    phase = torch.rand(n, 1)
    cycle = (freq * torch.linspace(0, 1, length) + phase) % 1.0  # position in the cycle, (N, L)
    shapes = torch.stack(
        [
            torch.sin(2 * math.pi * cycle),
            torch.where(cycle < 0.5, 1.0, -1.0),
            2 * cycle - 1,
            1 - 4 * (cycle - 0.5).abs(),
        ]
    )  # (4, N, L)
    waves = shapes[kind, torch.arange(n)] + 0.3 * torch.randn(n, length)
    return waves.unsqueeze(1), kind


def train_one_epoch(model, loader, optimizer, criterion, accum_steps):
    model.train()
    total = 0.0
    optimizer.zero_grad()
    for i, (xb, yb) in enumerate(loader):
        loss = criterion(model(xb), yb)
        (loss / accum_steps).backward()
        if (i + 1) % accum_steps == 0:
            optimizer.step()
            optimizer.zero_grad()
        total += loss.item()
    return total / len(loader)


@torch.no_grad()
def accuracy(model, x, y):
    model.eval()
    return (model(x).argmax(1) == y).float().mean().item()


torch.manual_seed(0)
x_train, y_train = make_waves(2048)
x_val, y_val = make_waves(512)
loader = DataLoader(TensorDataset(x_train, y_train), batch_size=16, shuffle=True)

model = nn.Sequential(
    nn.Conv1d(1, 16, 7, padding=3),
    nn.ReLU(),
    nn.MaxPool1d(2),
    nn.Conv1d(16, 32, 5, padding=2),
    nn.ReLU(),
    nn.AdaptiveAvgPool1d(1),
    nn.Flatten(),
    nn.Linear(32, 4),
)
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-2)
criterion = nn.CrossEntropyLoss()

for epoch in range(3):
    train_loss = train_one_epoch(model, loader, optimizer, criterion, accum_steps=4)
    print(f"epoch {epoch}: train loss {train_loss:.3f}, val accuracy {accuracy(model, x_val, y_val):.3f}")
