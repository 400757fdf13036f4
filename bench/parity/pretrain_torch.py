"""The starting encoder of bench/continue.ts: torchvision's ResNet-18 trained with labels
(cross-entropy, SGD) on a dumped data set (dump-data.ts), normalised with ImageNet's mean and std
as torchvision models are. Writes its backbone (fc removed) as OUT/pretrained.pt (state_dict),
OUT/pretrained.bn.onnx (torch.onnx, eval mode with BatchNorm kept: training=PRESERVE) and
OUT/pretrained.folded.onnx (torch.onnx's default eval export: BatchNorm folded into the convs).

usage: pretrain_torch.py DATA OUT [--epochs 5] [--threads 2] [--seed 0]
"""
import argparse, json, os, time
import numpy as np
import torch
import torch.nn as nn
import torchvision
import torchvision.transforms as T

ap = argparse.ArgumentParser()
ap.add_argument("data")
ap.add_argument("out")
ap.add_argument("--epochs", type=int, default=5)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--seed", type=int, default=0)
a = ap.parse_args()
torch.manual_seed(a.seed)
torch.set_num_threads(a.threads)
os.makedirs(a.out, exist_ok=True)
meta = json.load(open(f"{a.data}/meta.json"))
C, H, W = meta["c"], meta["h"], meta["w"]
x = torch.from_numpy(np.fromfile(f"{a.data}/train.u8", dtype=np.uint8).reshape(-1, C, H, W).copy())
y = torch.from_numpy(np.fromfile(f"{a.data}/train.labels", dtype=np.int32).astype(np.int64))
norm = T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
aug = T.Compose([T.RandomResizedCrop(H, scale=(0.5, 1.0), antialias=True), T.RandomHorizontalFlip()])

model = torchvision.models.resnet18(num_classes=len(meta["classes"]))
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True)
steps = a.epochs * (len(x) // 128)
sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=steps)
t0 = time.time()
for epoch in range(a.epochs):
    perm = torch.randperm(len(x))
    correct = 0
    for s in range(0, len(x) - 127, 128):
        idx = perm[s : s + 128]
        xb = norm(torch.stack([aug(im) for im in x[idx]]).float() / 255)
        out = model(xb)
        loss = nn.functional.cross_entropy(out, y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        correct += (out.argmax(1) == y[idx]).sum().item()
    print(json.dumps({"epoch": epoch + 1, "train_acc": correct / (len(x) // 128 * 128), "s": time.time() - t0}), flush=True)

model.fc = nn.Identity()
model.eval()
torch.save(model.state_dict(), os.path.join(a.out, "pretrained.pt"))
dummy = torch.zeros(1, C, H, W)
for form, mode in [("bn", torch.onnx.TrainingMode.PRESERVE), ("folded", torch.onnx.TrainingMode.EVAL)]:
    torch.onnx.export(model, dummy, os.path.join(a.out, f"pretrained.{form}.onnx"), input_names=["images"], output_names=["features"],
                      dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}}, opset_version=17, training=mode,
                      do_constant_folding=form == "folded")
print(json.dumps({"final": True, "train_s": time.time() - t0, "torch": torch.__version__}))
