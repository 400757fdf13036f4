"""The PyTorch peer of bench/train-step.ts: the same SimCLR step (same networks, NT-Xent, AdamW)
on random data, timed the same way. Prints one JSON line: {"img_s": ..., "ms": ..., "min_ms": ..., "max_ms": ..., "rss_mb": ...}."""
import json, os, resource, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'parity'))
from sslkit_net import Block, nt_xent  # noqa: E402  (sslkit's basic block and NT-Xent)

backbone, batch, size, channels, threads, steps, proj_hidden = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
device = sys.argv[8] if len(sys.argv) > 8 else "cpu"
torch.set_num_threads(threads)
torch.manual_seed(0)


def net(name):
    if name.startswith('tv-resnet'):
        # torchvision's ImageNet ResNet, sslkit's tv-resnet18/50.
        import torchvision
        m = getattr(torchvision.models, name[3:])()
        dim = m.fc.in_features
        m.fc = nn.Identity()
        return m, dim
    if name == 'convnet':
        widths, blocks, stem = [32, 64, 128], [1, 1, 1], 32
    else:
        widths, blocks, stem = [64, 128, 256, 512], [2, 2, 2, 2], 64
    layers = [nn.Conv2d(channels, stem, 3, 1, 1, bias=False), nn.BatchNorm2d(stem), nn.ReLU()]
    cin = stem
    for s, (w, b) in enumerate(zip(widths, blocks)):
        for i in range(b):
            layers.append(Block(cin, w, 2 if (i == 0 and s > 0) else 1))
            cin = w
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers), cin


enc, dim = net(backbone)
proj = nn.Sequential(nn.Linear(dim, proj_hidden, bias=False), nn.BatchNorm1d(proj_hidden), nn.ReLU(), nn.Linear(proj_hidden, 128))
model = nn.Sequential(enc, proj).to(device)
opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-6)


v = torch.randn(2 * batch, channels, size, size, device=device)
sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
times = []
for i in range(steps + 2):
    t = time.perf_counter()
    loss = nt_xent(model(v), 0.2)
    opt.zero_grad()
    loss.backward()
    opt.step()
    sync()
    times.append(time.perf_counter() - t)
times = sorted(times[2:])
ms = times[len(times) // 2] * 1000
print(json.dumps({"ms": ms, "min_ms": times[0] * 1000, "max_ms": times[-1] * 1000, "img_s": 2 * batch / (ms / 1000), "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "torch": torch.__version__, "device": device}))
