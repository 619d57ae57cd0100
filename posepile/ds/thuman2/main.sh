#!/usr/bin/env bash
# THuman2.0: T. Yu, Z. Zheng, K. Guo, P. Liu, Q. Dai, Y. Liu, "Function4D: Real-time Human Volumetric Capture from
# Very Sparse Consumer RGBD Sensors", CVPR 2021. https://github.com/ytrock/THuman2.0-Dataset
# (the original's main.sh cites mRI by mistake). Sign the THuman2.0 agreement, then put into $DATA_ROOT/thuman2/:
#   THuman2.0_Release.zip (the 526 textured scans: THuman2.0_Release/<id>/<id>.obj, material0.mtl, material0.jpeg)
#   "THUman2.0 SMPL-X Paras.zip" (the owners' SMPL-X fits: <id>/smplx_param.pkl; it extracts into
#   "THUman2.0 SMPL-X Paras/").
# The 12 PCA hand components are expanded with the male SMPL-X model (https://smpl-x.is.tue.mpg.de/):
# SMPLX_MALE.npz in $DATA_ROOT/body_models/smplx/.
# Renderer: posepile.render (default: the numpy rasterizer; POSEPILE_RENDERER=opengl needs `pip install moderngl`,
# POSEPILE_RENDERER=blender needs `pip install bpy`, see posepile/render/__init__.py).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/thuman2"
py() { python -m posepile.ds.thuman2.main "$@"; }

# 1. Extract the archives safely (skipped when done)
extract_archives "$root" "$root" '*.zip'

# 2. Render each scan from 100 random views (512x512 over grey 127, alpha -> mask; field of view 30-70 deg,
#    elevation -30..60 deg, 5-15 coloured point lights + a disk area light). Shard with --shard i/n (or a Slurm
#    array); a rerun resumes at the next unrendered view. POSEPILE_RENDER_VIEWS changes the count.
py render

# 3. The dataset (all TRAIN, parametric-only: the SMPL-X fit with its scale, in the scan's frame) for
#    get_dataset('thuman2')
py assemble
