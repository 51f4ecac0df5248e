"""One rank of the DDP test (launched by tests/test_ddp.py through torchrun): trains a DistributedDataParallel MLP
under the monitor on CPU (gloo) and writes what it measured, with a plain-torch oracle of its own last batch."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from torchmedic.monitor import Monitor
from torchmedic.monitor.events import compact


def main(out: Path, zero_grad: bool, steps: int, stop: bool) -> None:
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = DistributedDataParallel(nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3)))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    gen = torch.Generator().manual_seed(1 + rank)  # each rank sees its own data
    last: dict[str, object] = {}
    stop_on = "optim.missing_zero_grad" if stop else None
    with Monitor(model, optimizer, every=5, log_dir=out / "logs", stop_on=stop_on) as monitor:
        for step in range(1, steps + 1):
            x = torch.randn(12, 8, generator=gen) + rank
            y = torch.randint(0, 3, (12,), generator=gen)
            if zero_grad:
                optimizer.zero_grad()
            out_ = model(x)
            loss = F.cross_entropy(out_, y)
            loss.backward()
            optimizer.step()
            monitor.log(loss=loss, outputs=out_, targets=y)
            if rank == 0 and step % 7 == 0:  # evaluation on rank 0 only, as many scripts do
                with torch.no_grad():
                    model(torch.randn(4, 8, generator=gen))  # no buffers: no collective in forward
            last = {
                "step": step,
                "loss": loss.item(),
                "input_mean": x.mean().item(),
                "target_hist": torch.bincount(y, minlength=3).tolist(),
            }
    report = {
        "rank": rank,
        "steps": monitor.step,
        "findings": [f.to_dict() for f in monitor.findings],
        "signals": compact(monitor.signals),
        "last": last,
    }
    (out / f"rank{rank}.json").write_text(json.dumps(report))
    dist.barrier()  # neither rank tears gloo down while the other still talks to it (an abort at exit otherwise)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]), zero_grad=sys.argv[2] == "zero_grad", steps=int(sys.argv[3]), stop=sys.argv[4] == "stop")
