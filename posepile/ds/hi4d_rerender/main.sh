#!/usr/bin/env bash
# Hi4D re-rendered: Y. Yin, C. Guo, M. Kaufmann, J. J. Zarate, J. Song, O. Hilliges, "Hi4D: 4D Instance Segmentation
# of Close Human Interaction", CVPR 2023. https://hi4d.ait.ethz.ch/ (toolkit: https://github.com/yifeiyin04/Hi4D)
#
# The same release as the hi4d recipe: register on https://hi4d.ait.ethz.ch/ (licence), download the pair archives
# (pairXX.tar.gz) into $DATA_ROOT/hi4d/archives/; they extract to $DATA_ROOT/hi4d/<pairXX>/<actionXX>/ with
# meta.npz, smpl/<frame>.npz and the textured scans frames/mesh-f<frame>.obj + MatLib-F<frame>.mtl +
# Atlas-F<frame>.png, which this recipe renders. The views are aimed at one person's SMPL mesh: the SMPL models
# (https://smpl.is.tue.mpg.de/) SMPL_FEMALE.pkl / SMPL_MALE.pkl in $DATA_ROOT/body_models/smpl/.
# Renderer: posepile.render (default: the numpy rasterizer; POSEPILE_RENDERER=opengl or blender, see
# posepile/render/__init__.py).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/hi4d"
py() { python -m posepile.ds.hi4d_rerender.main "$@"; }

# 1. Extract the archives safely, once (shared with the hi4d recipe)
extract_archives "$root/archives" "$root"

# 2. Per sequence, 1000 views: a random frame and person; the camera aimed at that person (field of view 30-70 deg,
#    elevation -30..60 deg, 5-15 coloured point lights + a disk area light), the whole textured scan rendered at
#    512x512 over grey 127 (alpha -> mask). Shard with --shard i/n (or a Slurm array); a rerun resumes at the next
#    unrendered view. POSEPILE_RENDER_VIEWS changes the count.
py render

# 3. The dataset (all TRAIN, parametric-only: each visible person's SMPL fit in the world frame) for
#    get_dataset('hi4d_rerender')
py assemble
