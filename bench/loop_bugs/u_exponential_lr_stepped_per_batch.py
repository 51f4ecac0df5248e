"""A churn-style binary classifier on generated tabular data; `train_one_epoch()` takes the scheduler along and
steps it after every batch, but ExponentialLR(gamma=0.9) was tuned for 20 epochs, not 20 epochs of batches.

expect: lr.schedule_collapse
onset: 67  (0.9 ** 66 < 1e-3: from step 67 the LR is 1000x below its start)
"""

import torch
from sklearn.datasets import make_classification
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def train_one_epoch(model, loader, optimizer, scheduler, loss_fn):
    model.train()
    running = 0.0
    for features, labels in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(features).squeeze(1), labels)
        loss.backward()
        optimizer.step()
        scheduler.step()
        running += loss.item() * len(labels)
    return running / len(loader.dataset)


@torch.no_grad()
def evaluate(model, features, labels):
    model.eval()
    prob = torch.sigmoid(model(features).squeeze(1))
    return ((prob > 0.5).float() == labels).float().mean().item()


torch.manual_seed(0)
X, y = make_classification(n_samples=3000, n_features=20, n_informative=12, n_redundant=4, flip_y=0.02, random_state=0)
X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.2, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train = torch.tensor(scaler.transform(X_train), dtype=torch.float32)
X_val = torch.tensor(scaler.transform(X_val), dtype=torch.float32)
y_train = torch.tensor(y_train, dtype=torch.float32)
y_val = torch.tensor(y_val, dtype=torch.float32)
loader = DataLoader(TensorDataset(X_train, y_train), batch_size=64, shuffle=True)

model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.9)
loss_fn = nn.BCEWithLogitsLoss()

for epoch in range(8):
    train_loss = train_one_epoch(model, loader, optimizer, scheduler, loss_fn)
    print(
        f"epoch {epoch}: train loss {train_loss:.4f}, val accuracy {evaluate(model, X_val, y_val):.3f}, "
        f"lr {scheduler.get_last_lr()[0]:.1e}"
    )
