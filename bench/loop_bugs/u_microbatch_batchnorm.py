"""A 1-d CNN with BatchNorm sorts noisy vibration signals into 5 frequency bands; "to save memory" it runs
micro-batches of 2 and accumulates 16 of them per optimizer step. The gradient matches a batch of 32, but
BatchNorm still normalizes each micro-batch of 2 with its own mean and std: its running statistics do not match
what it trained on, and the model in eval mode predicts poorly.

expect: mode.bn_small_batch
onset: 1
"""

import math

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_signals(n: int, length: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    band = torch.randint(0, 5, (n,))
    freq = 2 + 3 * band.float() + torch.rand(n) * 2  # cycles per window
    t = torch.linspace(0, 1, length)
    amp = 0.5 + torch.rand(n, 1) * 4  # sensor gain differs per recording
    signal = amp * torch.sin(2 * math.pi * freq[:, None] * t + torch.rand(n, 1) * 6.28)
    return (signal + torch.randn(n, length)).unsqueeze(1), band


def block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv1d(c_in, c_out, 5, padding=2), nn.BatchNorm1d(c_out), nn.ReLU(), nn.MaxPool1d(2))


torch.manual_seed(0)
x_train, y_train = make_signals(1600)
x_val, y_val = make_signals(400)
micro_batch, accumulation = 2, 16
loader = DataLoader(TensorDataset(x_train, y_train), batch_size=micro_batch, shuffle=True)

model = nn.Sequential(
    block(1, 16),
    block(16, 32),
    block(32, 32),
    nn.AdaptiveAvgPool1d(1),
    nn.Flatten(),
    nn.Linear(32, 64),
    nn.BatchNorm1d(64),
    nn.ReLU(),
    nn.Linear(64, 5),
)
optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
criterion = nn.CrossEntropyLoss()

for epoch in range(2):
    model.train()
    optimizer.zero_grad()
    for i, (xb, yb) in enumerate(loader):
        loss = criterion(model(xb), yb) / accumulation
        loss.backward()
        if (i + 1) % accumulation == 0:
            optimizer.step()
            optimizer.zero_grad()
    model.eval()
    with torch.no_grad():
        val_acc = (model(x_val).argmax(1) == y_val).float().mean().item()
    print(f"epoch {epoch}: val accuracy {val_acc:.3f}")
