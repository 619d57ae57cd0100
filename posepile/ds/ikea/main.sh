#!/usr/bin/env bash
# IKEA ASM: Y. Ben-Shabat, X. Yu, F. Saleh, D. Campbell, C. Rodriguez-Opazo, H. Li, S. Gould, "The IKEA ASM
# Dataset: Understanding People Assembling Furniture through Actions, Objects and Pose", WACV 2021.
# https://ikeaasm.github.io/
# Download (request access on the website, then download manually) the RGB videos (scan_video.avi of dev1-3),
# the 3D pose annotations (pose3d/*.json) and the calibration (Calibration/camera_parameters.pkl); put the
# archives into $DATA_ROOT/ikea/archives/. They extract to
#   $DATA_ROOT/ikea/<furniture>/<recording>/<dev>/images/scan_video.avi, .../<dev>/pose3d/<frame>.json
#   $DATA_ROOT/ikea/Calibration/camera_parameters.pkl
# POSEPILE_DETECTOR=<spec> (the original's YOLOv4: darknet:yolov4.cfg,yolov4.weights): boxes become the
# detection of best IoU >= 0.3 with the joint box x1.2. SKIP_BROKEN=1: build the rest when a video is broken.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
py() { python -m posepile.ds.ikea.main "$@"; }
root="$DATA_ROOT/ikea"

# 1. Extract the archives (once; skipped when done)
if [[ -d "$root/archives" ]]; then extract_archives "$root/archives" "$root"; fi

# 2. Frame selection per camera recording: 100 mm in camera coordinates, >= 4 joints inside 1920x1080
py select

# 3. One pass per video: crops of the selected annotated frames (no full frames extracted)
options=()
if [[ -n "${POSEPILE_DETECTOR:-}" ]]; then options+=(--detector "$POSEPILE_DETECTOR"); fi
if [[ "${SKIP_BROKEN:-0}" == 1 ]]; then options+=(--skip-broken); fi
py video ${options[@]+"${options[@]}"}

# 4. The dataset (all TRAIN) for get_dataset('ikea')
py assemble
