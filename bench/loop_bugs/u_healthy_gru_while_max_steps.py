"""A GRU activity classifier trained for a fixed number of steps (`while step < max_steps`, the loader restarted
when it runs out), OneCycleLR stepped per batch over exactly max_steps, and validation every 100 steps that
switches to eval mode and back.

expect: healthy
"""

import math

import torch
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
    return torch.stack([x, y], dim=-1) + 0.3 * torch.randn(n, length, 2), activity  # (N, T, 2), (N,)


class ActivityGRU(nn.Module):
    def __init__(self, hidden: int = 48, num_classes: int = 4) -> None:
        super().__init__()
        self.gru = nn.GRU(2, hidden, batch_first=True)
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, h = self.gru(x)  # h: (1, B, H)
        return self.fc(self.dropout(h[-1]))


@torch.no_grad()
def validate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    acc = (model(x).argmax(1) == y).float().mean().item()
    model.train()
    return acc


torch.manual_seed(0)
x_train, y_train = make_activities(2000)
x_val, y_val = make_activities(500)
loader = DataLoader(TensorDataset(x_train, y_train), batch_size=32, shuffle=True, drop_last=True)

max_steps, eval_every = 400, 100
model = ActivityGRU()
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-2, total_steps=max_steps)
criterion = nn.CrossEntropyLoss()

model.train()
step, batches = 0, iter(loader)
while step < max_steps:
    try:
        xb, yb = next(batches)
    except StopIteration:
        batches = iter(loader)
        xb, yb = next(batches)
    optimizer.zero_grad(set_to_none=True)
    loss = criterion(model(xb), yb)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    scheduler.step()
    step += 1
    if step % eval_every == 0:
        print(f"step {step}: loss {loss.item():.3f}, val accuracy {validate(model, x_val, y_val):.3f}")
