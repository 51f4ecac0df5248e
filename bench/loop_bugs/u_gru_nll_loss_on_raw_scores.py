"""A GRU classifies generated accelerometer-like sequences into 4 activities; the loop uses `F.nll_loss` on the
raw scores of the head (the log_softmax was left out of forward). nll_loss only negates the score of the target
class, so the loss falls below zero without bound and the scores grow instead of separating the classes.

expect: loss.task_mismatch
onset: 1
"""

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_activities(n: int, length: int = 40) -> tuple[torch.Tensor, torch.Tensor]:
    activity = torch.randint(0, 4, (n,))  # still, walking, running, cycling
    freq = torch.tensor([0.0, 1.5, 3.0, 1.0])[activity]
    amp = torch.tensor([0.05, 1.0, 2.0, 0.6])[activity]
    t = torch.linspace(0, 4, length)
    phase = torch.rand(n, 1) * 2 * math.pi
    x = amp[:, None] * torch.sin(2 * math.pi * freq[:, None] * t + phase)
    y = amp[:, None] * torch.cos(2 * math.pi * freq[:, None] * t + phase) * (activity == 3).float()[:, None]
    signal = torch.stack([x, y], dim=-1) + 0.3 * torch.randn(n, length, 2)
    return signal, activity  # (N, T, 2), (N,)


class ActivityGRU(nn.Module):
    def __init__(self, hidden: int = 32, num_classes: int = 4) -> None:
        super().__init__()
        self.gru = nn.GRU(2, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, h = self.gru(x)  # h: (1, B, H)
        return self.fc(h[-1])


torch.manual_seed(0)
x_train, y_train = make_activities(2000)
x_test, y_test = make_activities(500)
loader = DataLoader(TensorDataset(x_train, y_train), batch_size=32, shuffle=True)

model = ActivityGRU()
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)

for epoch in range(4):
    model.train()
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = F.nll_loss(model(xb), yb)
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        acc = (model(x_test).argmax(1) == y_test).float().mean().item()
    print(f"epoch {epoch}: loss {loss.item():.2f}, test accuracy {acc:.3f}")
