"""An "is the digit even?" CNN with a one-unit head that ends in `nn.Softmax(dim=1)` "to get a probability",
trained with BCELoss: softmax over a single unit is 1.0 for every image, so every prediction is "even" and no
gradient reaches the weights.

expect: arch.softmax_single_unit
onset: 1
"""

import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class EvenOddNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(32 * 4 * 4, 64),
            nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Linear(64, 1), nn.Softmax(dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))  # (B, 1) probability of "even"


torch.manual_seed(0)
digits = load_digits()
images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
images = (images - images.mean()) / images.std()
is_even = torch.tensor(digits.target % 2 == 0, dtype=torch.float32).unsqueeze(1)
perm = torch.randperm(len(images))
train_idx, test_idx = perm[:1400], perm[1400:]
loader = DataLoader(TensorDataset(images[train_idx], is_even[train_idx]), batch_size=32, shuffle=True)

model = EvenOddNet()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
criterion = nn.BCELoss()

for epoch in range(4):
    model.train()
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = criterion(model(xb), yb)
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        acc = ((model(images[test_idx]) > 0.5).float() == is_even[test_idx]).float().mean().item()
    print(f"epoch {epoch}: loss {loss.item():.3f}, test accuracy {acc:.3f}")
