"""Per-view statistics of sslkit's augmented views (a float32 dump from view-stats.ts) beside
torchvision's views of the same images (train_torch.py's transforms), one table per view.

  python3 bench/parity/view_stats.py DATA_DIR VIEWS_F32 --preset byol --n 4096"""
import argparse, json
import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image
from sslkit_net import torch_views

ap = argparse.ArgumentParser()
ap.add_argument("data")
ap.add_argument("views")
ap.add_argument("--preset", default="byol")
ap.add_argument("--n", type=int, default=4096)
a = ap.parse_args()
meta = json.load(open(f"{a.data}/meta.json"))
C, H, W = meta["c"], meta["h"], meta["w"]
x = np.fromfile(f"{a.data}/train.u8", dtype=np.uint8).reshape(-1, C, H, W)[: a.n]
mean = np.array(meta["mean"], dtype=np.float32).reshape(1, C, 1, 1)
std = np.array(meta["std"], dtype=np.float32).reshape(1, C, 1, 1)
ours = np.fromfile(a.views, dtype=np.float32).reshape(2, a.n, C, H, W)

torch.manual_seed(0)
tv = torch_views("byol" if a.preset == "byol" else "simclr", H, T.Normalize(meta["mean"], meta["std"]))
theirs = np.zeros_like(ours)
for i in range(a.n):
    img = Image.fromarray(x[i].transpose(1, 2, 0).squeeze())
    for k in range(2):
        theirs[k, i] = tv[k](img).numpy()
plain = (x.astype(np.float32) / 255 - mean) / std


def stats(v, other):
    u = v * std + mean  # back to [0, 1]
    grey = np.abs(u - u.mean(1, keepdims=True)).max(axis=(1, 2, 3)) < 2e-3
    gx = np.diff(u, axis=3) ** 2
    return {
        "mean |v1 - v2|": np.abs(v - other).mean(),
        "mean |v - plain|": np.abs(v - plain).mean(),
        "grey views": grey.mean(),
        "per-view mean [0,1]": u.mean(axis=(1, 2, 3)).mean(),
        "per-view std [0,1]": u.std(axis=(1, 2, 3)).mean(),
        "std of per-view std": u.std(axis=(1, 2, 3)).std(),
        "gradient energy": gx.mean(),
        "pixels >= 0.5": (u >= 0.5).mean(),
        "saturation (max-min)": (u.max(1) - u.min(1)).mean(),
    }


print(f"preset {a.preset}, {a.n} images, views made by both sides of the same images")
for k in range(2):
    s, t = stats(ours[k], ours[1 - k]), stats(theirs[k], theirs[1 - k])
    print(f"\nview {k + 1}")
    print(f"| statistic | sslkit | torchvision |\n| --- | --- | --- |")
    for name in s:
        print(f"| {name} | {s[name]:.4f} | {t[name]:.4f} |")
