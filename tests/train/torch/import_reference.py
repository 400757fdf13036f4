"""Reference for the import-fidelity tests (tests/train/import.test.ts): torchvision encoders with
random weights exported by torch.onnx, and PyTorch's forward values and autograd gradients of a
fixed loss, for sslkit's imported graph to match.

usage: import_reference.py OUT_DIR [SIZE]

For each model it writes MODEL.bn.onnx (eval mode, BatchNorm kept: training=PRESERVE, names as
in the module), MODEL.folded.onnx (the default eval export: BatchNorm folded into the convs) and,
as raw little-endian float32: x.bin (the input), r.bin (the loss weights: loss = sum(y * r)),
MODEL.eval.y.bin / MODEL.train.y.bin and the gradients MODEL.{eval,train}.grad.NAME.bin for the
input ('input') and every parameter (eval mode only, one file MODEL.onnx, for ConvNeXt-Tiny
and a small ViT), plus MODEL.sgd.NAME.bin (parameters after one SGD step with
momentum 0.9, weight decay 1e-4 on weights of rank > 1, lr 0.1, train mode), listed in manifest.json
with the state_dict names and shapes of torchvision's ResNet-18 and ResNet-50.
"""
import copy
import json
import os
import sys

import torch
import torchvision

out = sys.argv[1]
size = int(sys.argv[2]) if len(sys.argv) > 2 else 64
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)


def save(name, t):
    t.detach().contiguous().float().numpy().tofile(os.path.join(out, name))
    return name


def randomize_bn(m):
    # Non-trivial running statistics and affine parameters, so that eval mode differs from train mode.
    g = torch.Generator().manual_seed(1)
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            c = mod.num_features
            mod.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
            mod.running_var.copy_(torch.rand(c, generator=g) * 0.5 + 0.75)
            mod.weight.data.copy_(torch.rand(c, generator=g) * 0.5 + 0.75)
            mod.bias.data.copy_(torch.randn(c, generator=g) * 0.1)


MODELS = {
    "resnet18": lambda: torchvision.models.resnet18(),
    "mobilenet_v3_small": lambda: torchvision.models.mobilenet_v3_small(),
}

x = torch.randn(4, 3, size, size)
save("x.bin", x)
manifest = {"size": size, "batch": 4, "torch": torch.__version__, "torchvision": torchvision.__version__, "models": {}}
r = None
for name, make in MODELS.items():
    model = make()
    # The encoder: everything up to the pooled features.
    if hasattr(model, "fc"):
        model.fc = torch.nn.Identity()
    else:
        model.classifier = torch.nn.Identity()
    randomize_bn(model)
    model.eval()
    for form, mode in [("bn", torch.onnx.TrainingMode.PRESERVE), ("folded", torch.onnx.TrainingMode.EVAL)]:
        torch.onnx.export(
            model,
            x,
            os.path.join(out, f"{name}.{form}.onnx"),
            input_names=["images"],
            output_names=["features"],
            dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}},
            opset_version=17,
            training=mode,
            do_constant_folding=True,
        )
    entry = {"params": [n for n, _ in model.named_parameters()], "buffers": [n for n, _ in model.named_buffers() if "num_batches" not in n]}
    with torch.no_grad():
        dim = model(x).shape[1]
    r = torch.randn(4, dim, generator=torch.Generator().manual_seed(2))
    save(f"{name}.r.bin", r)
    for mode in ["eval", "train"]:
        m = copy.deepcopy(model)
        m.train(mode == "train")
        xi = x.clone().requires_grad_(True)
        y = m(xi)
        (y * r).sum().backward()
        save(f"{name}.{mode}.y.bin", y)
        save(f"{name}.{mode}.grad.input.bin", xi.grad)
        for n, p in m.named_parameters():
            save(f"{name}.{mode}.grad.{n}.bin", p.grad)
        if mode == "train":
            for n, b in m.named_buffers():
                if "num_batches" not in n:
                    save(f"{name}.train.buffer.{n}.bin", b)
    # One SGD step in train mode: lr 0.1, momentum 0.9, weight decay 1e-4 on the convolution and
    # linear weights only (sslkit decays no biases or norm parameters).
    m = copy.deepcopy(model)
    m.train()
    decay = [p for p in m.parameters() if p.dim() > 1]
    rest = [p for p in m.parameters() if p.dim() <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": 1e-4}, {"params": rest, "weight_decay": 0}], lr=0.1, momentum=0.9)
    (m(x) * r).sum().backward()
    opt.step()
    for n, p in m.named_parameters():
        save(f"{name}.sgd.{n}.bin", p)
    entry["dim"] = dim
    manifest["models"][name] = entry

# Models without BatchNorm whose train mode is random (stochastic depth): eval mode only, one form.
EVAL_ONLY = {
    "convnext_tiny": lambda: torchvision.models.convnext_tiny(),
    "vit_tiny": lambda: torchvision.models.vision_transformer.VisionTransformer(
        image_size=size, patch_size=16, num_layers=2, num_heads=2, hidden_dim=64, mlp_dim=128),
}
for name, make in EVAL_ONLY.items():
    model = make()
    if hasattr(model, "heads"):
        model.heads = torch.nn.Identity()
    else:
        model.classifier[2] = torch.nn.Identity()
    model.eval()
    torch.onnx.export(model, x, os.path.join(out, f"{name}.onnx"), input_names=["images"], output_names=["features"],
                      dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}}, opset_version=17)
    xi = x.clone().requires_grad_(True)
    y = model(xi)
    r = torch.randn(*y.shape, generator=torch.Generator().manual_seed(2))
    save(f"{name}.r.bin", r)
    (y * r).sum().backward()
    save(f"{name}.eval.y.bin", y)
    save(f"{name}.eval.grad.input.bin", xi.grad)
    for n, p in model.named_parameters():
        save(f"{name}.eval.grad.{n}.bin", p.grad)
    manifest["models"][name] = {"params": [n for n, _ in model.named_parameters()], "buffers": [], "dim": y.shape[1]}

# sslkit's tv-resnet backbones name their parameters as torchvision does: the state_dicts to match.
manifest["state_dicts"] = {
    name: {k: list(v.shape) for k, v in make().state_dict().items() if "num_batches" not in k and not k.startswith("fc.")}
    for name, make in [("resnet18", torchvision.models.resnet18), ("resnet50", torchvision.models.resnet50)]
}
json.dump(manifest, open(os.path.join(out, "manifest.json"), "w"), indent=1)
