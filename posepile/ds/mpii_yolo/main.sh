#!/usr/bin/env bash
# MPII Human Pose, all annotated people with detector boxes ("MPII-yolo" of the original PosePile):
# M. Andriluka, L. Pishchulin, P. Gehler, B. Schiele, "2D Human Pose Estimation: New Benchmark and State of the
# Art Analysis", CVPR 2014. http://human-pose.mpi-inf.mpg.de/
# Same raw files as the mpii recipe: after accepting the licence, download mpii_human_pose_v1.tar.gz and
# mpii_human_pose_v1_u12_2.zip into $DATA_ROOT/mpii/archives/ (or run posepile/ds/mpii/main.sh first).
# Detector: $POSEPILE_DETECTOR (default 'hog', offline). The original used YOLO:
#   POSEPILE_DETECTOR=darknet:yolov4.cfg,yolov4.weights. 'gt' / 'gt:1.25' gives boxes of the labelled joints.
# Changing the detector: delete $DATA_ROOT/mpii/posepile_work/person_detections.pkl and crops_yolo/.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/mpii"

# 1. Extract the archives safely (skipped when done); the annotation .mat goes to $root
extract_archives "$root/archives" "$root" '*.tar.gz' '*.zip'
mat="mpii_human_pose_v1_u12_1.mat"
if [[ -f "$root/mpii_human_pose_v1_u12_2/$mat" && ! -f "$root/$mat" ]]; then
  cp "$root/mpii_human_pose_v1_u12_2/$mat" "$root/"
fi

# 2. Person detections in the training images with annotated people (skipped when the file exists)
python -m posepile.ds.mpii_yolo.main detect --detector "${POSEPILE_DETECTOR:-hog}"

# 3. Crops of the people matched to a detection (score > 0.5, Hungarian IoU >= 0.1, > 6 of 16 joints valid)
python -m posepile.ds.mpii_yolo.main crop

# 4. The datasets for get_dataset(): 'mpii_yolo' (10 limb joints, > 6 of them valid) and 'mpii_yolo_alljoints'
#    (all 16 joints, > 6 valid; the variant of the original's 2D mix, used by huge2d_common)
python -m posepile.ds.mpii_yolo.main assemble
