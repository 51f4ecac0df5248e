"""A wine-cultivar classifier with a hand-written Dataset: `__getitem__(self, index)` reads `self.features[idx]`,
and `idx` is the global left over from the loop that printed a few samples, so every item returns the same
wine (with its own, correct label). The model sees one input and can only learn the class frequencies.

expect: data.low_variability
onset: 1
"""

import torch
from sklearn.datasets import load_wine
from torch import nn
from torch.utils.data import DataLoader, Dataset

torch.manual_seed(0)
wine = load_wine()
features = torch.tensor(wine.data, dtype=torch.float32)
features = (features - features.mean(0)) / features.std(0)
labels = torch.tensor(wine.target)

for idx in range(3):
    print(f"sample {idx}: alcohol {wine.data[idx, 0]:.2f}, class {wine.target_names[wine.target[idx]]}")


class WineDataset(Dataset):
    def __init__(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        self.features, self.labels = features, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.features[idx], self.labels[index]


perm = torch.randperm(len(labels))
train_idx, test_idx = perm[:140], perm[140:]
loader = DataLoader(WineDataset(features[train_idx], labels[train_idx]), batch_size=16, shuffle=True)

model = nn.Sequential(nn.Linear(13, 32), nn.ReLU(), nn.Linear(32, 3))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
criterion = nn.CrossEntropyLoss()

for epoch in range(20):
    model.train()
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = criterion(model(xb), yb)
        loss.backward()
        optimizer.step()
    if epoch % 5 == 4:
        model.eval()
        with torch.no_grad():
            acc = (model(features[test_idx]).argmax(1) == labels[test_idx]).float().mean().item()
        print(f"epoch {epoch}: loss {loss.item():.3f}, test accuracy {acc:.3f}")
