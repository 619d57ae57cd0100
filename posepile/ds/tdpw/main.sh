#!/usr/bin/env bash
# 3DPW: T. von Marcard, R. Henschel, M. J. Black, B. Rosenhahn, G. Pons-Moll, "Recovering Accurate 3D
# Human Pose in The Wild Using IMUs and a Moving Camera", ECCV 2018.
# https://virtualhumans.mpi-inf.mpg.de/3DPW/  (registration and licence acceptance needed: download
# sequenceFiles.zip and imageFiles.zip by hand into $DATA_ROOT/tdpw/archives/)
# Each example's `parameters` is the released SMPL fit in the world frame (no body model needed to build).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/tdpw"
py() { python -m posepile.ds.tdpw.main "$@"; }

# 1. Extract the downloaded archives safely (skipped when done)
extract_archives "$root/archives" "$root" '*.zip'

# 2. Person detection (optional; without it, boxes come from the projected joints). The original used
#    YOLOv4: POSEPILE_DETECTOR=darknet:yolov4.cfg,yolov4.weights. With detections, as the original's parametric
#    builder, an actor is kept only when Hungarian-matched to a detection (IoU > 0.1), with the detection box.
if [[ -n "${POSEPILE_DETECTOR:-}" ]]; then
  py detect --detector "$POSEPILE_DETECTOR"
fi

# 3. Crops of every valid (frame, actor) of every split (no thinning, as the original)
py crop

# 4. The dataset (24 SMPL joints, mm, pelvis last; the SMPL fits in the world frame) for get_dataset('tdpw')
py assemble
