"""The loop calls `scheduler.step()` where `optimizer.step()` belongs (a mix-up of two lines that read alike):
backward runs every batch and no update ever happens.

expect: optim.not_updating
onset: 0
"""

import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def main() -> None:
    torch.manual_seed(0)
    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32)
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    y = torch.tensor(digits.target)
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)

    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=5 * len(loader))
    criterion = nn.CrossEntropyLoss()

    for epoch in range(3):
        running = 0.0
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = criterion(model(xb), yb)
            loss.backward()
            scheduler.step()
            running += loss.item()
        print(f"epoch {epoch}: loss {running / len(loader):.3f}")


if __name__ == "__main__":
    main()
