#!/usr/bin/env bash
# SAIL-VOS: Y.-T. Hu, H.-S. Chen, K. Hui, J.-B. Huang, A. G. Schwing, "SAIL-VOS: Semantic Amodal Instance Level
# Video Object Segmentation - A Synthetic Dataset and Baselines", CVPR 2019; SAIL-VOS 3D: Y.-T. Hu, J. Wang,
# R. A. Yeh, A. G. Schwing, "SAIL-VOS 3D: A Synthetic Dataset and Baselines for Object Detection and 3D Mesh
# Reconstruction from Video Data", CVPR 2021. https://sailvos.web.illinois.edu/_site/index.html
# Download: register on the project page (terms of use), then run its download_sailvos.sh in $DATA_ROOT/sailvos/.
# The human pose files are not public: ask the SAIL-VOS maintainers for sailvos_pose_training.tar and
# sailvos_pose_val.tar. Put all archives (.tar, .zip, also the per-sequence zips inside the pose tars once those
# are extracted) into $DATA_ROOT/sailvos/archives/; they extract to $DATA_ROOT/sailvos/<sequence>/{images,
# visible,<object id>_<class>_<name>}/ (already extracted folders there are used as they are).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/sailvos"
py() { python -m posepile.ds.sailvos.main "$@"; }

# 1. Extract the archives safely (skipped when done)
extract_archives "$root/archives" "$root" '*.tar' '*.tar.gz' '*.zip'

# 2. BMP frames -> JPEG quality 85 (each BMP deleted once its JPEG is written; rerun-safe)
py convert

# 3. Visibility maps visible/<frame>.npy -> .npz (~500x smaller; the reader takes either)
py compress

# 4. Per sequence: adaptive selection (a commonly valid joint moved >= 100 mm since the last kept file), a camera
#    per object and frame estimated from the raw 2D-3D bones (horizontal FOV in [30, 100] deg, principal point at
#    the image centre), masks and filters (visible-mask box min side > 50 px, occlusion <= 0.75, > 5 valid
#    joints, RMS spread 100-3000 mm)
py prepare

# 5. Optional person detection; then each person gets the detection of a Hungarian match (IoU > 0.1, detection
#    area <= 2x the visible-mask box) and unmatched people are dropped. The original's YOLOv4:
#    POSEPILE_DETECTOR=darknet:yolov4.cfg,yolov4.weights (without a detector: the visible-mask box)
if [[ -n "${POSEPILE_DETECTOR:-}" ]]; then py detect --detector "$POSEPILE_DETECTOR"; fi

# 6. Crops (world frame re-centred per sequence on the mean camera position)
py crop

# 7. The dataset (all as TRAIN) for get_dataset('sailvos')
py assemble
