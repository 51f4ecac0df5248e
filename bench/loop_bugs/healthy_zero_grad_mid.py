"""zero_grad() between the forward pass and backward(), log-softmax outputs with NLLLoss, and a linear warmup.

expect: healthy
"""

import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
digits = load_digits()
x = torch.tensor(digits.data, dtype=torch.float32)
x = (x - x.mean(0)) / (x.std(0) + 1e-6)
y = torch.tensor(digits.target)
loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)

model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, 10), nn.LogSoftmax(dim=1))
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
warmup = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.01, total_iters=50)
loss_fn = nn.NLLLoss()

for epoch in range(5):
    for xb, yb in loader:
        log_probs = model(xb)
        loss = loss_fn(log_probs, yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        warmup.step()
    print(f"epoch {epoch}: loss {loss.item():.3f}")
