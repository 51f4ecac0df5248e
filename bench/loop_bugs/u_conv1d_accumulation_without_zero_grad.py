"""A 1-d CNN regresses the frequency of noisy sine waves with gradient accumulation over 4 micro-batches; the
author read that accumulation means "don't zero the gradients" and never calls zero_grad() at all.

expect: optim.missing_zero_grad
onset: 2  (the first step sums 4 micro-batches as intended; from the second on, every old gradient is still there)
"""

import math

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_waves(n: int, length: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    freq = torch.rand(n, 1) * 4 + 1  # 1-5 cycles per window
    phase = torch.rand(n, 1) * 2 * math.pi
    t = torch.linspace(0, 1, length)
    waves = torch.sin(2 * math.pi * freq * t + phase) + 0.2 * torch.randn(n, length)
    return waves.unsqueeze(1), (freq - 3) / 1.15  # (N, 1, L), standardized target (N, 1)


class FreqNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(1, 16, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool1d(2),
            nn.Conv1d(16, 32, 5, padding=2),
            nn.ReLU(),
            nn.AdaptiveAvgPool1d(1),
        )
        self.head = nn.Linear(32, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


torch.manual_seed(0)
x_train, y_train = make_waves(2048)
x_val, y_val = make_waves(512)
loader = DataLoader(TensorDataset(x_train, y_train), batch_size=16, shuffle=True)

model = FreqNet()
optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
criterion = nn.MSELoss()
accum_steps = 4  # effective batch of 64

for epoch in range(3):
    model.train()
    for i, (xb, yb) in enumerate(loader):
        loss = criterion(model(xb), yb) / accum_steps
        loss.backward()
        if (i + 1) % accum_steps == 0:
            optimizer.step()
    model.eval()
    with torch.no_grad():
        val_mse = criterion(model(x_val), y_val).item()
    print(f"epoch {epoch}: val mse {val_mse:.3f}")
