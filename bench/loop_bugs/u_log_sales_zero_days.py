"""Daily store sales regressed in log space (`torch.log(sales)`), on generated data where the store was closed on
two days and sold nothing: log(0) = -inf. The first batch holding such a day makes the loss inf, the
gradients NaN, and every weight NaN from then on.

expect: data.nonfinite
onset: traced  (the first step whose batch holds a closed day; the script prints it when LOOPBUG_TRACE=1, a run
       without torchmedic)
"""

import os

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
n_days = 1500
weekday = torch.arange(n_days) % 7
promo = (torch.rand(n_days) < 0.3).float()
temperature = 15 + 10 * torch.sin(torch.arange(n_days) * 2 * torch.pi / 365) + 3 * torch.randn(n_days)
base = 200 * (1 + 0.4 * (weekday >= 5).float()) * (1 + 0.5 * promo) * (1 + 0.02 * (temperature - 15))
sales = torch.poisson(base)
sales[torch.tensor([458, 1190])] = 0.0  # closed: stocktaking and a burst pipe

features = torch.cat(
    [nn.functional.one_hot(weekday, 7).float(), promo[:, None], ((temperature - 15) / 8)[:, None]], dim=1
)
target = torch.log(sales)
loader = DataLoader(TensorDataset(features, target), batch_size=32, shuffle=True)

model = nn.Sequential(nn.Linear(9, 32), nn.ReLU(), nn.Linear(32, 1))
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
loss_fn = nn.MSELoss()
trace = os.environ.get("LOOPBUG_TRACE") == "1"

step = 0
for epoch in range(5):
    for xb, yb in loader:
        step += 1
        if trace and not torch.isfinite(yb).all():
            print(f"ONSET {step}")
            trace = False
        optimizer.zero_grad()
        loss = loss_fn(model(xb).squeeze(1), yb)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        rmse = (model(features).squeeze(1) - target).pow(2).mean().sqrt().item()
    print(f"epoch {epoch}: loss {loss.item():.4f}, rmse on log sales {rmse:.4f}")
