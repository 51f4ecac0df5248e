"""An LSTM forecasts the next value of a noisy seasonal series from a window of 24; forward() ends in
`.squeeze()` (for "clean" predictions of shape (B,)) while the dataset yields targets of shape (B, 1). L1Loss
broadcasts them to (B, B), and the model learns to predict the median of the batch.

expect: loss.shape_broadcast
onset: 1
"""

import math

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset


class WindowDataset(Dataset):
    def __init__(self, series: torch.Tensor, window: int) -> None:
        self.series, self.window = series, window

    def __len__(self) -> int:
        return len(self.series) - self.window

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.series[i : i + self.window].unsqueeze(-1)  # (window, 1)
        y = self.series[i + self.window : i + self.window + 1]  # (1,)
        return x, y


class Forecaster(nn.Module):
    def __init__(self, hidden: int = 32) -> None:
        super().__init__()
        self.lstm = nn.LSTM(1, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)  # (B, T, H)
        return self.head(out[:, -1]).squeeze()  # (B,)


torch.manual_seed(0)
t = torch.arange(3000, dtype=torch.float32)
series = torch.sin(2 * math.pi * t / 50) + 0.5 * torch.sin(2 * math.pi * t / 7) + 0.1 * torch.randn(len(t))
train_set, val_set = WindowDataset(series[:2400], 24), WindowDataset(series[2400:], 24)
loader = DataLoader(train_set, batch_size=64, shuffle=True)
val_loader = DataLoader(val_set, batch_size=256)

model = Forecaster()
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
criterion = nn.L1Loss()

for epoch in range(5):
    model.train()
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = criterion(model(xb), yb)
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        mae = sum((model(xb) - yb.squeeze(1)).abs().sum().item() for xb, yb in val_loader) / len(val_set)
    print(f"epoch {epoch}: train loss {loss.item():.3f}, val MAE {mae:.3f}")
