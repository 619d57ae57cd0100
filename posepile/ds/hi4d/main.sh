#!/usr/bin/env bash
# Hi4D: Y. Yin, C. Guo, M. Kaufmann, J. J. Zarate, J. Song, O. Hilliges, "Hi4D: 4D Instance Segmentation of Close
# Human Interaction", CVPR 2023. https://hi4d.ait.ethz.ch/ (toolkit: https://github.com/yifeiyin04/Hi4D)
#
# Register on https://hi4d.ait.ethz.ch/ (licence) and download the pair archives (pairXX.tar.gz) into
# $DATA_ROOT/hi4d/archives/; they extract to $DATA_ROOT/hi4d/<pairXX>/<actionXX>/{meta.npz, cameras/, images/,
# seg/, smpl/} (the layout of the toolkit's dataset.md; the textured scans in frames/ are not needed). Building
# needs no body model (the SMPL fits are stored as released, with the file's joints_3d for the selection); using
# the parameters needs the SMPL models (https://smpl.is.tue.mpg.de/). Every step is resumable.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/hi4d"
py() { python -m posepile.ds.hi4d.main "$@"; }

# 1. Extract the archives safely, once
extract_archives "$root/archives" "$root"

# 2. Optional person detection (people then matched to detections by Hungarian IoU of their instance masks with
#    the detection boxes, >= 0.1, as the original). The original's YOLOv4: POSEPILE_DETECTOR=darknet:...
if [[ -n "${POSEPILE_DETECTOR:-}" ]]; then py detect --detector "$POSEPILE_DETECTOR"; fi

# 3. Crops of the person x frame x camera views (>= 6 joints in the box; 100 mm sampler per camera, buffer 100)
#    with the union person mask
py crop

# 4. The dataset for get_dataset('hi4d') (parametric-only: SMPL in the world frame, JointInfo([], []))
py assemble
