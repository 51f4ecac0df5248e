"""A TensorFlow 1 model ported to PyTorch: `keep_prob=0.9` goes straight into `nn.Dropout`, whose argument is the
share to drop. Every hidden layer loses 90% of its units on each training step, and the 5-class tabular model
learns almost nothing.

expect: optim.over_regularized
onset: 1
"""

import torch
from sklearn.datasets import make_classification
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class MLP(nn.Module):
    def __init__(self, n_features: int, n_classes: int, hidden: int = 128, keep_prob: float = 0.9) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(n_features, hidden),
            nn.ReLU(),
            nn.Dropout(keep_prob),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Dropout(keep_prob),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Dropout(keep_prob),
            nn.Linear(hidden, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


torch.manual_seed(0)
X, y = make_classification(
    n_samples=4000, n_features=30, n_informative=15, n_classes=5, n_clusters_per_class=2, random_state=1
)
X = torch.tensor(X, dtype=torch.float32)
y = torch.tensor(y)
X = (X - X.mean(0)) / X.std(0)
X_train, y_train, X_test, y_test = X[:3200], y[:3200], X[3200:], y[3200:]
loader = DataLoader(TensorDataset(X_train, y_train), batch_size=64, shuffle=True)

model = MLP(30, 5)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
loss_fn = nn.CrossEntropyLoss()

for epoch in range(6):
    model.train()
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        test_acc = (model(X_test).argmax(1) == y_test).float().mean().item()
    print(f"epoch {epoch}: loss {loss.item():.3f}, test accuracy {test_acc:.3f}")
