"""Replays the steps written by replay-dump.ts in PyTorch: same initial weights, same batches, same
learning rates, AdamW as sslkit configures it (decay on conv/linear weights only); for BYOL the
same target network and target momentum per step. Prints both loss curves side by side and the
largest difference.

  python3 bench/parity/replay.py /tmp/sslkit-replay [--decay-all] [--separate-bn] [--knn DATA_DIR]

With --knn (the folder dump-data.ts wrote), the replayed model is scored like sslkit scores its
runs: kNN on backbone features, BatchNorm statistics re-estimated on plain training images."""
import json, sys
import numpy as np
import torch
import copy
import torch.nn as nn
import torch.nn.functional as F
from sslkit_net import BYOL, SimCLR, load_sslkit, nt_xent, sslkit_name

d = sys.argv[1]
args = sys.argv[2:]
flags = set(args)
knn_data = args[args.index("--knn") + 1] if "--knn" in args else None
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
byol = meta.get("method") == "byol"
if byol:
    model = BYOL(hidden=int(meta["hp"]["proj_hidden"]), out=int(meta["hp"]["proj_out"]))
    # The target: backbone and projector, sslkit's teacher.* values; its BatchNorm uses batch statistics (train mode).
    target = nn.ModuleDict({"backbone": copy.deepcopy(model.backbone), "projector": copy.deepcopy(model.projector)})
    load_sslkit(model, values)
    load_sslkit(target, values, "teacher.")
    for p in target.parameters():
        p.requires_grad = False
else:
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
    x = v.reshape(2 * B, 3, 32, 32)
    if byol:
        p1, p2 = model(x).chunk(2)
        with torch.no_grad():
            t1, t2 = target["projector"](target["backbone"](x)).chunk(2)
        cos = lambda p, t: 2 - 2 * F.cosine_similarity(p, t, dim=1).mean()
        loss = 0.5 * (cos(p1, t2) + cos(p2, t1))
    elif "--separate-bn" in flags:
        loss = nt_xent(torch.cat([model(v[0]), model(v[1])]), meta["hp"]["temperature"])
    else:
        loss = nt_xent(model(x), meta["hp"]["temperature"])
    opt.zero_grad()
    loss.backward()
    opt.step()
    if byol:
        m = s["momentum"]
        with torch.no_grad():
            online = {"backbone": model.backbone, "projector": model.projector}
            for name, part in target.items():
                for pt, ps in zip(part.parameters(), online[name].parameters()):
                    pt.mul_(m).add_(ps, alpha=1 - m)
    worst = max(worst, abs(loss.item() - s["loss"]))
    print(f"{i}\t{s['loss']:.5f}\t{loss.item():.5f}\t{loss.item() - s['loss']:+.5f}")
print(f"largest loss difference over {len(meta['steps'])} steps: {worst:.2e}")

if knn_data:
    import torch.nn as nn
    import torch.nn.functional as F
    import torchvision.transforms as T

    meta_d = json.load(open(f"{knn_data}/meta.json"))
    load = lambda s: (np.fromfile(f"{knn_data}/{s}.u8", dtype=np.uint8).reshape(-1, 3, 32, 32), np.fromfile(f"{knn_data}/{s}.labels", dtype=np.int32))
    xtr, ytr = load("train")
    xte, yte = load("test")
    norm = T.Normalize(meta_d["mean"], meta_d["std"])
    bb = model.backbone
    with torch.no_grad():
        for m in bb.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.reset_running_stats()
                m.momentum = None
        bb.train()
        idx = np.linspace(0, len(xtr) - 1, 2048).astype(int)
        for s in range(0, 2048, 256):
            bb(norm(torch.from_numpy(xtr[idx[s : s + 256]]).float() / 255))
        bb.eval()
        feats = lambda x: torch.cat([F.normalize(bb(norm(torch.from_numpy(x[s : s + 500]).float() / 255)), dim=1) for s in range(0, len(x), 500)])
        M, Q, L = feats(xtr), feats(xte), torch.from_numpy(ytr).long()
        for k in (200, 20):
            c = 0
            for s in range(0, len(Q), 1000):
                sim, nn_idx = (Q[s : s + 1000] @ M.T).topk(k, dim=1)
                votes = torch.zeros(len(nn_idx), 10).scatter_add_(1, L[nn_idx], (sim / 0.1).exp())
                c += (votes.argmax(1).numpy() == yte[s : s + 1000]).sum()
            print(f"PyTorch trained on sslkit's batches: kNN k={k} {100 * c / len(Q):.2f}%")
