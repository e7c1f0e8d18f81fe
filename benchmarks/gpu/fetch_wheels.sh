#!/usr/bin/env bash
# Download here, pinned, the wheels the GPU machine's image lacks, into benchmarks/gpu/wheels/
# (ignored by git), and the checkout's commit in wheels/COMMIT: the device call carries that folder
# and run.sh installs it there, offline.
#
# The image (/work/.library/device/KINDS.md) has Python 3.12, torch 2.11 (cu130), transformers
# 5.17, lightning 2.6.6, huggingface_hub 1.33, safetensors 0.8, accelerate, onnx, onnxruntime
# (CPU), opencv-python-headless, matplotlib, pytest, numpy, pillow, pyyaml, regex, requests,
# filelock, zipp, typing-extensions. It lacks what is pinned below (all pure Python, < 5 MiB).
#   bash benchmarks/gpu/fetch_wheels.sh
set -euo pipefail
cd "$(dirname "$0")"

WHEELS=(
    diffusers==0.42.1          # the painter's UNet, VAE and schedulers (needs huggingface-hub>=1.32, safetensors>=0.8)
    importlib-metadata==8.7.0  # imported by diffusers; later releases need lazy-importer, also absent there
    jsonargparse==4.53.0       # LightningCLI's parser
    docstring-parser==0.18.0   # jsonargparse[signatures], which LightningCLI requires
    typeshed-client==2.15.0    # jsonargparse[signatures]
)

rm -rf wheels
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d wheels "${WHEELS[@]}"
# The commit the results will name: the device's copy of the tree has no git.
git rev-parse --short HEAD > wheels/COMMIT
ls -l wheels
du -sh wheels
