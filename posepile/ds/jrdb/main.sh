#!/usr/bin/env bash
# JRDB-Pose: E. Vendrow, D. T. Le, J. Cai, H. Rezatofighi, "JRDB-Pose: A Large-scale Dataset for Multi-Person
# Pose Estimation and Tracking", CVPR 2023 (on JRDB: R. Martin-Martin et al., TPAMI 2021).
# https://jrdb.erc.monash.edu/ (registration and the JRDB terms required).
# Download the 2022 train set with the pose labels and extract it into $DATA_ROOT/jrdb/ so that it holds
#   train_dataset/calibration/cameras.yaml
#   train_dataset/images/image_{0,2,4,6,8}/<sequence>/<frame:06d>.jpg   (and image_stitched/ for the panoramas)
#   train_dataset/labels/labels_2d_pose_coco/*.json            (per-camera JRDB-Pose labels, COCO style)
#   train_dataset/labels/labels_2d_pose_stitched_coco/*.json   (labels of the stitched panoramas)
# The per-camera labels are used when present (JRDB_LABELS=auto), else the stitched ones; JRDB_LABELS=camera or
# stitched forces one. Optional detector boxes: POSEPILE_DETECTOR=hog|darknet:CFG,WEIGHTS|... (the original
# used YOLOv4); without it the box is the keypoint box expanded 1.15x.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/jrdb/train_dataset"

# 1. Check the manual download is in place
if [[ ! -d "$root/labels" || ! -f "$root/calibration/cameras.yaml" ]]; then
  echo "$root/labels or calibration/cameras.yaml not found: download JRDB-Pose (https://jrdb.erc.monash.edu/)" >&2
  exit 1
fi

# 2. Optional: person detections in the labelled frames (skipped when done)
if [[ -n "${POSEPILE_DETECTOR:-}" ]]; then
  python -m posepile.ds.jrdb.main detect --detector "$POSEPILE_DETECTOR" --labels "${JRDB_LABELS:-auto}"
fi

# 3. Crops of the people in the motion-selected frames of every track (labels: frame index + 2 = image index)
python -m posepile.ds.jrdb.main crop --labels "${JRDB_LABELS:-auto}"

# 4. The dataset for get_dataset('jrdb')
python -m posepile.ds.jrdb.main assemble
