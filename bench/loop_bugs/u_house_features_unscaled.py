"""A binary "above the median price?" classifier on generated house listings fed the raw columns: square feet in
the thousands, year built near 2000, lot size in the tens of thousands, the listing date as a unix timestamp. The
first layer's outputs are in the billions, the logits saturate, and the model stays at a coin flip.

expect: data.unnormalized
onset: 1
"""

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def make_listings(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    sqft = torch.empty(n).uniform_(600, 4500)
    bedrooms = torch.randint(1, 6, (n,)).float()
    year = torch.randint(1920, 2024, (n,)).float()
    lot = torch.empty(n).uniform_(2000, 40000)
    distance_km = torch.empty(n).uniform_(0.5, 40)
    listed_at = torch.empty(n, dtype=torch.float64).uniform_(1.60e9, 1.72e9)  # unix time of the listing
    price = 150 * sqft + 8000 * bedrooms + 900 * (year - 1920) + 2 * lot - 4000 * distance_km
    price = price + torch.randn(n) * 40000
    features = torch.stack([sqft, bedrooms, year, lot, distance_km, listed_at.float()], dim=1)
    return features, (price > price.median()).float()


torch.manual_seed(0)
features, expensive = make_listings(3000)
train = TensorDataset(features[:2400], expensive[:2400])
loader = DataLoader(train, batch_size=64, shuffle=True)
x_val, y_val = features[2400:], expensive[2400:]

model = nn.Sequential(nn.Linear(6, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 1))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
loss_fn = nn.BCEWithLogitsLoss()

for epoch in range(8):
    model.train()
    total = 0.0
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(xb).squeeze(1), yb)
        loss.backward()
        optimizer.step()
        total += loss.item()
    model.eval()
    with torch.no_grad():
        val_acc = ((model(x_val).squeeze(1) > 0) == y_val.bool()).float().mean().item()
    print(f"epoch {epoch}: train loss {total / len(loader):.3f}, val accuracy {val_acc:.3f}")
