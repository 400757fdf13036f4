"""The sslkit `convnet` backbone and SimCLR projector in PyTorch, with sslkit's parameter names
(stem.conv.weight, stage2.down.bn.running_var, projector.0.weight, ...), so that weights move
between the two sides by name. Used by replay.py and train_torch.py."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Module()
            self.down.conv = nn.Conv2d(cin, cout, 1, stride, bias=False)
            self.down.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        sc = self.down.bn(self.down.conv(x)) if self.down is not None else x
        return F.relu(h + sc)


class ConvNet(nn.Module):
    def __init__(self, channels=3, widths=(32, 64, 128)):
        super().__init__()
        self.stem = nn.Module()
        self.stem.conv = nn.Conv2d(channels, widths[0], 3, 1, 1, bias=False)
        self.stem.bn = nn.BatchNorm2d(widths[0])
        cin = widths[0]
        for i, w in enumerate(widths):
            setattr(self, f"stage{i + 1}", Block(cin, w, 1 if i == 0 else 2))
            cin = w
        self.dim = cin

    def forward(self, x):
        h = F.relu(self.stem.bn(self.stem.conv(x)))
        for i in range(3):
            h = getattr(self, f"stage{i + 1}")(h)
        return h.mean(dim=(2, 3))


class Projector(nn.Module):
    """Linear (no bias) → BN → ReLU → Linear, named as sslkit's mlp: projector.0.*, projector.0.bn.*, projector.1.*."""

    def __init__(self, dim, hidden, out):
        super().__init__()
        self.l0 = nn.Linear(dim, hidden, bias=False)
        self.bn0 = nn.BatchNorm1d(hidden)
        self.l1 = nn.Linear(hidden, out)

    def forward(self, h):
        return self.l1(F.relu(self.bn0(self.l0(h))))


class SimCLR(nn.Module):
    def __init__(self, channels=3, hidden=256, out=128):
        super().__init__()
        self.backbone = ConvNet(channels)
        self.projector = Projector(self.backbone.dim, hidden, out)

    def forward(self, x):
        return self.projector(self.backbone(x))


class BYOL(nn.Module):
    """The online network: backbone, projector and predictor (the same MLP shape), as sslkit's byol."""

    def __init__(self, channels=3, hidden=256, out=128):
        super().__init__()
        self.backbone = ConvNet(channels)
        self.projector = Projector(self.backbone.dim, hidden, out)
        self.predictor = Projector(out, hidden, out)

    def forward(self, x):
        return self.predictor(self.projector(self.backbone(x)))


def sslkit_name(torch_name):
    """state_dict name → sslkit's parameter name."""
    n = torch_name.removeprefix("backbone.")
    for head in ("projector", "predictor"):
        n = n.replace(f"{head}.l0.", f"{head}.0.").replace(f"{head}.bn0.", f"{head}.0.bn.").replace(f"{head}.l1.", f"{head}.1.")
    return n


def nt_xent(z, t):
    z = F.normalize(z, dim=1)
    n = z.shape[0]
    sim = z @ z.t() / t
    sim.fill_diagonal_(-1e9)
    pos = torch.arange(n, device=z.device).roll(n // 2)
    return F.cross_entropy(sim, pos)


def load_sslkit(model, values, prefix=""):
    """Copies sslkit's values (name → numpy array) into the model; every tensor must be there.
    `prefix` picks another network's copy (BYOL's target: "teacher.")."""
    sd = model.state_dict()
    for k in sd:
        if k.endswith("num_batches_tracked"):
            continue
        v = values[prefix + sslkit_name(k)]
        sd[k].copy_(torch.from_numpy(v).reshape(sd[k].shape))


def torch_views(method, size, norm):
    """torchvision's transforms for sslkit's presets: crop 0.2-1 (ratio 3/4-4/3), flip, jitter
    0.4/0.4/0.4/0.1 p 0.8, grey 0.2; BYOL's asymmetric pair adds blur (kernel ~10% of the side,
    sigma 0.1-2; p 1 and 0.1) and solarisation (p 0 and 0.2) as the `byol` preset does."""
    # Imported here: the step bench (torch_simclr_step.py) needs no torchvision, so it runs on a
    # torch wheel whose torchvision is missing or built for another variant.
    import torchvision.transforms as T

    def view(blur_p, solarize_p):
        t = [T.RandomResizedCrop(size, scale=(0.2, 1.0)), T.RandomHorizontalFlip(),
             T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8), T.RandomGrayscale(0.2)]
        if blur_p > 0:
            t.append(T.RandomApply([T.GaussianBlur(max(3, round(size * 0.1) | 1), sigma=(0.1, 2.0))], p=blur_p))
        if solarize_p > 0:
            t.append(T.RandomSolarize(128, p=solarize_p))
        return T.Compose(t + [T.ToTensor(), norm])
    # The method's sslkit preset: `byol` (BYOL, VICReg, Barlow Twins) is the asymmetric pair, `simclr` the plain one.
    return [view(1.0, 0), view(0.1, 0.2)] if method in BYOL_PRESET else [view(0, 0), view(0, 0)]


BYOL_PRESET = {"byol", "vicreg", "barlow"}
