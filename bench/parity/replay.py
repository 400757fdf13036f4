"""Replays the steps written by replay-dump.ts in PyTorch: same initial weights, same batches, same
learning rates, AdamW as sslkit configures it (decay on conv/linear weights only). Prints both
loss curves side by side and the largest difference.

  python3 bench/parity/replay.py /tmp/sslkit-replay [--decay-all] [--separate-bn]"""
import json, sys
import numpy as np
import torch
from sslkit_net import SimCLR, load_sslkit, nt_xent, sslkit_name

d = sys.argv[1]
flags = set(sys.argv[2:])
torch.manual_seed(0)
torch.set_num_threads(2)
manifest = json.load(open(f"{d}/init.json"))
flat = np.fromfile(f"{d}/init.f32", dtype=np.float32)
values, off = {}, 0
for m in manifest:
    values[m["name"]] = flat[off : off + m["size"]]
    off += m["size"]
meta = json.load(open(f"{d}/steps.json"))
B = meta["batch"]
model = SimCLR(hidden=int(meta["hp"]["proj_hidden"]))
load_sslkit(model, values)
decay = [p for n, p in model.named_parameters() if n.endswith("weight") and p.dim() > 1]
rest = [p for n, p in model.named_parameters() if not (n.endswith("weight") and p.dim() > 1)]
groups = [{"params": decay + rest, "weight_decay": 1e-6}] if "--decay-all" in flags else [{"params": decay, "weight_decay": 1e-6}, {"params": rest, "weight_decay": 0}]
opt = torch.optim.AdamW(groups, lr=1e-3, eps=1e-8)
views = np.memmap(f"{d}/views.f32", dtype=np.float32, mode="r").reshape(len(meta["steps"]), 2, B, 3, 32, 32)
print("step\tsslkit\tpytorch\tdiff")
worst = 0
for i, s in enumerate(meta["steps"]):
    for g in opt.param_groups:
        g["lr"] = s["lr"]
    v = torch.from_numpy(np.array(views[i]))
    if "--separate-bn" in flags:
        z = torch.cat([model(v[0]), model(v[1])])
    else:
        z = model(v.reshape(2 * B, 3, 32, 32))
    loss = nt_xent(z, meta["hp"]["temperature"])
    opt.zero_grad()
    loss.backward()
    opt.step()
    worst = max(worst, abs(loss.item() - s["loss"]))
    print(f"{i}\t{s['loss']:.5f}\t{loss.item():.5f}\t{loss.item() - s['loss']:+.5f}")
print(f"largest loss difference over {len(meta['steps'])} steps: {worst:.2e}")
