#!/usr/bin/env bash
# HUMAN4D: A. Chatzitofis, L. Saroglou, P. Boutis, P. Drakoulis, N. Zioulis, S. Subramanyam, B. Kevelham,
# C. Charbonnier, P. Cesar, D. Zarpalas et al., "HUMAN4D: A Human-Centric Multimodal Dataset for Motions and
# Immersive Media", IEEE Access 8, 176241-176262, 2020. https://tofis.github.io/human4d_dataset/
# Download (request access via the project page, then download manually) and unpack so that the frames are
#   $DATA_ROOT/human4d/S<k>/<timestamp>/Dump/color/<i>_<camera>_color_<t>.png
# next to S<k>/<timestamp>/Dump/gposes3d/*.npy, S<k>/device_repository.json, S<k>/offsets.txt and
# S<k>/pose/<camera>.extrinsics. The frames are stored rotated (people on their side): detection runs on the
# upright view, the calibrated cameras describe the stored frames, and the crops come out upright.
# The colour camera as the official toolkit: .extrinsics = depth sensor pose, then the device repository's
# colour-depth rotation/translation and the colour intrinsics.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
py() { python -m posepile.ds.human4d.main "$@"; }

# 1. Poses (gposes3d/<i - offset1>.npy as the toolkit, mm, 32 joints) and adaptive selection per camera
#    (100 mm, buffer of the last 100 kept poses)
py select

# 2. Optional person detection on the selected frames (upright view). Then the box is the detection of best
#    IoU with the joint box x1.2 (frames whose best IoU is < 0.5 are dropped). The original's YOLOv4:
#    POSEPILE_DETECTOR=darknet:yolov4.cfg,yolov4.weights (without a detector: the joint box x1.2)
if [[ -n "${POSEPILE_DETECTOR:-}" ]]; then py detect --detector "$POSEPILE_DETECTOR"; fi

# 3. Crops (boxes with a longer side under 30 px are dropped)
py crop

# 4. The dataset (all TRAIN) for get_dataset('human4d')
py assemble
