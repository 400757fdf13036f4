"""The PyTorch side of bench/parity: trains sslkit's `convnet` with SimCLR, BYOL, VICReg, SimSiam,
Barlow Twins or MoCo v2 on the images dump-data.ts wrote (the same ones sslkit trains on), with
torchvision's transforms as the method's sslkit preset describes them, then scores kNN on backbone
features (cosine, weights exp(s/0.1), k = 200 and 20, the training images as memory) the way
`sslkit eval` does. Prints a JSON line per epoch and a final one.

Each method is written from its paper and official code, with sslkit's heads:
- SimSiam: Chen & He, "Exploring Simple Siamese Representation Learning", CVPR 2021;
  github.com/facebookresearch/simsiam (main_simsiam.py, simsiam/builder.py). The CIFAR
  projector has two layers (the paper's CIFAR appendix), its output BN without affine.
- Barlow Twins: Zbontar et al., ICML 2021; github.com/facebookresearch/barlowtwins (main.py:
  BarlowTwins.forward, off_diagonal). The batch-normalised cross-correlation without the
  paper's 1/batch-size per-GPU scaling (one device: c = z1ᵀz2 / B).
- MoCo v2: Chen et al., "Improved Baselines with Momentum Contrastive Learning", 2020, and He et
  al., CVPR 2020; github.com/facebookresearch/moco (moco/builder.py), with the symmetrised loss
  of MoCo v3 / the CIFAR demo (colab moco_cifar10_demo): queries against the other view's key and a
  FIFO queue of past keys; one device, so no shuffled BN.

  python3 bench/parity/train_torch.py DATA_DIR --method simclr --epochs 10 [--init torch|kaiming-fan-out]
      [--schedule constant|cosine] [--init-from INIT_DIR]"""
import argparse, json, math, time, resource
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision.transforms as T
from PIL import Image
from sslkit_net import ConvNet, nt_xent, torch_views

ap = argparse.ArgumentParser()
ap.add_argument("data")
ap.add_argument("--method", default="simclr", choices=["simclr", "byol", "vicreg", "simsiam", "barlow", "moco"])
ap.add_argument("--epochs", type=int, default=10)
ap.add_argument("--batch", type=int, default=256)
ap.add_argument("--lr", type=float, default=1e-3)
ap.add_argument("--wd", type=float, default=1e-6)
ap.add_argument("--schedule", default="constant", choices=["constant", "cosine"])
ap.add_argument("--init", default="torch", choices=["torch", "kaiming-fan-out"])
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--workers", type=int, default=2)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--hidden", type=int, default=256)
ap.add_argument("--out-dim", type=int, default=128)
ap.add_argument("--pred-hidden", type=int, default=128, help="SimSiam's predictor bottleneck")
ap.add_argument("--lambda", dest="lambd", type=float, default=5e-3, help="Barlow Twins' off-diagonal weight")
ap.add_argument("--queue", type=int, default=4096, help="MoCo's queue length")
ap.add_argument("--temperature", type=float, default=0.2)
ap.add_argument("--ema", type=float, default=0.99, help="BYOL's and MoCo's EMA momentum at the start (cosine to 1)")
# Continued pretraining (bench/continue.ts): start from a torchvision ResNet-18 state_dict
# (pretrain_torch.py), normalise as it was trained (ImageNet's mean and std), write the result.
ap.add_argument("--resnet18-state")
ap.add_argument("--export-onnx")
a = ap.parse_args()
torch.manual_seed(a.seed)
np.random.seed(a.seed)
torch.set_num_threads(a.threads)
meta = json.load(open(f"{a.data}/meta.json"))
C, H, W = meta["c"], meta["h"], meta["w"]


def load(split):
    x = np.fromfile(f"{a.data}/{split}.u8", dtype=np.uint8).reshape(-1, C, H, W)
    y = np.fromfile(f"{a.data}/{split}.labels", dtype=np.int32)
    return x, y


xtr, ytr = load("train")
xte, yte = load("test")
norm = T.Normalize(*(([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]) if a.resnet18_state else (meta["mean"], meta["std"])))


views = torch_views(a.method, H, norm)


class Pairs(torch.utils.data.Dataset):
    def __len__(self):
        return len(xtr)

    def __getitem__(self, i):
        img = Image.fromarray(xtr[i].transpose(1, 2, 0).squeeze())
        return tuple(v(img) for v in views)


def mlp(dims, last_bn=False):
    """sslkit's mlp(): Linear (no bias) → BN → ReLU per hidden layer, then a Linear with bias, or
    with `last_bn` a Linear without bias and a BN without affine (SimSiam's projector)."""
    layers = []
    for i in range(len(dims) - 1):
        last = i == len(dims) - 2
        layers.append(nn.Linear(dims[i], dims[i + 1], bias=last and not last_bn))
        if not last:
            layers += [nn.BatchNorm1d(dims[i + 1]), nn.ReLU()]
        elif last_bn:
            layers.append(nn.BatchNorm1d(dims[i + 1], affine=False))
    return nn.Sequential(*layers)


if a.resnet18_state:
    import torchvision
    backbone = torchvision.models.resnet18()
    backbone.fc = nn.Identity()
    backbone.load_state_dict(torch.load(a.resnet18_state))
    backbone.dim = 512
else:
    backbone = ConvNet(C)
if a.init == "kaiming-fan-out" and not a.resnet18_state:
    for m in backbone.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
d = backbone.dim
if a.method == "simclr":
    proj = mlp([d, a.hidden, a.out_dim])
    model = nn.ModuleDict({"backbone": backbone, "proj": proj})
elif a.method in ("byol", "moco"):
    import copy
    proj = mlp([d, a.hidden, a.out_dim])
    model = nn.ModuleDict({"backbone": backbone, "proj": proj})
    if a.method == "byol":
        pred = mlp([a.out_dim, a.hidden, a.out_dim])
        model["pred"] = pred
    else:
        # The queue starts as random unit rows, as sslkit's buffer 'unit-rows'.
        queue = F.normalize(torch.randn(a.queue, a.out_dim), dim=1)
    target = nn.ModuleDict({"backbone": copy.deepcopy(backbone), "proj": copy.deepcopy(proj)})
    for p in target.parameters():
        p.requires_grad = False
elif a.method == "simsiam":
    proj = mlp([d, a.hidden, a.hidden], last_bn=True)
    pred = mlp([a.hidden, a.pred_hidden, a.hidden])
    model = nn.ModuleDict({"backbone": backbone, "proj": proj, "pred": pred})
elif a.method == "barlow":
    proj = mlp([d, a.hidden, a.hidden, a.hidden])
    model = nn.ModuleDict({"backbone": backbone, "proj": proj})
else:
    proj = mlp([d, a.hidden, a.hidden, a.hidden])
    model = nn.ModuleDict({"backbone": backbone, "proj": proj})

decay = [p for n, p in model.named_parameters() if p.dim() > 1]
rest = [p for n, p in model.named_parameters() if p.dim() <= 1]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.wd}, {"params": rest, "weight_decay": 0}], lr=a.lr)
loader = torch.utils.data.DataLoader(Pairs(), batch_size=a.batch, shuffle=True, drop_last=True, num_workers=a.workers, persistent_workers=a.workers > 0)
total = a.epochs * len(loader)


def vicreg(z1, z2):
    inv = F.mse_loss(z1, z2)
    std = lambda z: torch.sqrt(z.var(dim=0) + 1e-4)
    var = F.relu(1 - std(z1)).mean() + F.relu(1 - std(z2)).mean()
    def cov(z):
        z = z - z.mean(0)
        c = (z.T @ z) / (z.shape[0] - 1)
        return (c.pow(2).sum() - c.diagonal().pow(2).sum()) / z.shape[1]
    return 25 * inv + 25 * var + cov(z1) + cov(z2)


def barlow(z1, z2):
    n = z1.shape[0]
    bn = lambda z: (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + 1e-5)
    c = bn(z1).T @ bn(z2) / n
    on = (torch.diagonal(c) - 1).pow(2).sum()
    off = c.pow(2).sum() - torch.diagonal(c).pow(2).sum()
    return on + a.lambd * off


def moco_nce(q, k):
    pos = (q * k).sum(1, keepdim=True)
    logits = torch.cat([pos, q @ queue.T], 1) / a.temperature
    return F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long))


@torch.no_grad()
def knn():
    model.eval()
    def feats(x):
        out = []
        for s in range(0, len(x), 500):
            t = torch.from_numpy(x[s : s + 500]).float() / 255
            out.append(F.normalize(backbone(norm(t)), dim=1))
        return torch.cat(out)
    m, q = feats(xtr), feats(xte)
    labels = torch.from_numpy(ytr).long()
    res = {}
    for k in (200, 20):
        correct = 0
        for s in range(0, len(q), 1000):
            sim, idx = (q[s : s + 1000] @ m.T).topk(k, dim=1)
            w = (sim / 0.1).exp()
            votes = torch.zeros(len(idx), len(meta["classes"])).scatter_add_(1, labels[idx], w)
            correct += (votes.argmax(1).numpy() == yte[s : s + 1000]).sum()
        res[f"knn{k}"] = correct / len(q)
    model.train()
    return res


@torch.no_grad()
def reestimate_bn():
    """sslkit's evaluation convention: BatchNorm statistics re-estimated on plain training images
    (a strided 2048, batches of 256, averaged), instead of the running ones from augmented batches."""
    for m in backbone.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the batches
    backbone.train()
    idx = np.linspace(0, len(xtr) - 1, 2048).astype(int)
    for s in range(0, 2048, 256):
        backbone(norm(torch.from_numpy(xtr[idx[s : s + 256]]).float() / 255))


@torch.no_grad()
def precise_bn():
    """kNN with reestimate_bn()'s statistics; the model keeps its own."""
    import copy
    saved = copy.deepcopy(backbone.state_dict())
    reestimate_bn()
    r = knn()
    backbone.load_state_dict(saved)
    return r


print(json.dumps({"epoch": 0, **knn()}), flush=True)
step, t0, losses = 0, time.time(), []
for epoch in range(a.epochs):
    te = time.time()
    for v1, v2 in loader:
        lr = a.lr if a.schedule == "constant" else 0.5 * a.lr * (1 + math.cos(math.pi * step / total))
        for g in opt.param_groups:
            g["lr"] = lr
        x = torch.cat([v1, v2])
        if a.method == "simclr":
            loss = nt_xent(proj(backbone(x)), a.temperature)
        elif a.method == "simsiam":
            z = proj(backbone(x))
            p1, p2 = pred(z).chunk(2)
            z1, z2 = z.detach().chunk(2)
            neg_cos = lambda p, t: -F.cosine_similarity(p, t, dim=1).mean()
            loss = 0.5 * (neg_cos(p1, z2) + neg_cos(p2, z1))
        elif a.method == "barlow":
            z1, z2 = proj(backbone(x)).chunk(2)
            loss = barlow(z1, z2)
        elif a.method == "moco":
            q1, q2 = F.normalize(proj(backbone(x)), dim=1).chunk(2)
            with torch.no_grad():
                keys = F.normalize(target["proj"](target["backbone"](x)), dim=1)
            k1, k2 = keys.chunk(2)
            loss = 0.5 * (moco_nce(q1, k2) + moco_nce(q2, k1))
        elif a.method == "byol":
            p1, p2 = pred(proj(backbone(x))).chunk(2)
            with torch.no_grad():
                t1, t2 = target["proj"](target["backbone"](x)).chunk(2)
            cos = lambda p, t: 2 - 2 * F.cosine_similarity(p, t, dim=1).mean()
            loss = 0.5 * (cos(p1, t2) + cos(p2, t1))
        else:
            z1, z2 = proj(backbone(x)).chunk(2)
            loss = vicreg(z1, z2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if a.method == "moco":
            # FIFO: this step's keys (both views) in, the oldest out.
            queue = torch.cat([keys, queue])[: a.queue]
        if a.method in ("byol", "moco"):
            m = 1 - (1 - a.ema) * 0.5 * (1 + math.cos(math.pi * step / total))
            with torch.no_grad():
                for pt, ps in zip(target.parameters(), nn.ModuleDict({"backbone": backbone, "proj": proj}).parameters()):
                    pt.mul_(m).add_(ps, alpha=1 - m)
                for bt, bs in zip(target.buffers(), nn.ModuleDict({"backbone": backbone, "proj": proj}).buffers()):
                    bt.copy_(bs)
        losses.append(loss.item())
        step += 1
    print(json.dumps({"epoch": epoch + 1, "loss_mean": float(np.mean(losses[-len(loader):])), "time_s": time.time() - te}), flush=True)
r = knn()
r["precise_bn"] = precise_bn()
if a.export_onnx:
    # As trained (running BatchNorm statistics), and with sslkit's convention (statistics
    # re-estimated on plain training images) beside it as X.precise-bn.onnx.
    def export(file):
        backbone.eval()
        torch.onnx.export(backbone, torch.zeros(1, C, H, W), file, input_names=["images"], output_names=["features"],
                          dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}}, opset_version=17)
    export(a.export_onnx)
    reestimate_bn()
    export(a.export_onnx.replace(".onnx", ".precise-bn.onnx"))
print(json.dumps({"final": True, "method": a.method, "epochs": a.epochs, **r, "train_s": time.time() - t0, "views_s": 2 * a.batch * step / (time.time() - t0),
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "torch": torch.__version__, "losses": losses}))
