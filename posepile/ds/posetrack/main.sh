#!/usr/bin/env bash
# PoseTrack 2018: M. Andriluka, U. Iqbal, E. Insafutdinov, L. Pishchulin, A. Milan, J. Gall, B. Schiele,
# "PoseTrack: A Benchmark for Human Pose Estimation and Tracking", CVPR 2018. https://posetrack.net/
# Registration needed (the site is often offline; mirrors are linked from the PoseTrack GitHub pages).
# Download and extract by hand into $DATA_ROOT/posetrack/ so that it holds
#   posetrack_data/annotations/{train,val}/<sequence>.json  (the label archive as it extracts; PoseTrack 2018
#                                                           JSON, one file per video; annotations/{train,val}/
#                                                           directly under $DATA_ROOT/posetrack works too)
#   images/{train,val}/<sequence>/<frame>.jpg                (as each image's `file_name` in the JSON says)
# Optional detector boxes (the original: YOLOv4, POSEPILE_DETECTOR=darknet:yolov4.cfg,yolov4.weights; or hog,
# onnx:MODEL, tf:DIR): people are then matched to detections (Hungarian, IoU >= 0.1), unmatched ones dropped,
# and the detection is the box. Without it (or with 'gt') the box is the annotation bbox.
# Frame selection: POSETRACK_SELECTION=frobenius (default, the original's rule) or per_joint.
# Changing the detector: delete $DATA_ROOT/posetrack/posepile_work/person_detections.pkl.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/posetrack"

# 1. Check the manual download is in place
if [[ ! -d "$root/annotations" && ! -d "$root/posetrack_data/annotations" ]]; then
  echo "$root/posetrack_data/annotations (or $root/annotations) not found: download PoseTrack 2018" \
       "(https://posetrack.net/) and extract it there" >&2
  exit 1
fi

# 2. Optional: person detections in the labelled frames (skipped when done)
if [[ -n "${POSEPILE_DETECTOR:-}" ]]; then
  python -m posepile.ds.posetrack.main detect --detector "$POSEPILE_DETECTOR"
fi

# 3. Crops of the people in motion-selected frames of every track (train -> TRAIN, val -> VALID)
python -m posepile.ds.posetrack.main crop --selection "${POSETRACK_SELECTION:-frobenius}"

# 4. The dataset for get_dataset('posetrack')
python -m posepile.ds.posetrack.main assemble
