#!/usr/bin/env bash
# PoseTrack 2018: M. Andriluka, U. Iqbal, E. Insafutdinov, L. Pishchulin, A. Milan, J. Gall, B. Schiele,
# "PoseTrack: A Benchmark for Human Pose Estimation and Tracking", CVPR 2018. https://posetrack.net/
# Registration needed (the site is often offline; mirrors are linked from the PoseTrack GitHub pages).
# Download and extract by hand into $DATA_ROOT/posetrack/ so that it holds
#   annotations/{train,val}/<sequence>.json   (PoseTrack 2018 JSON, one file per video)
#   images/{train,val}/<sequence>/<frame>.jpg (as each image's `file_name` in the JSON says)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/posetrack"

# 1. Check the manual download is in place
if [[ ! -d "$root/annotations" ]]; then
  echo "$root/annotations not found: download PoseTrack 2018 (https://posetrack.net/) and extract it there" >&2
  exit 1
fi

# 2. Crops of the labelled people in motion-selected frames of every track (train -> TRAIN, val -> VALID)
python -m posepile.ds.posetrack.main crop

# 3. The dataset for get_dataset('posetrack')
python -m posepile.ds.posetrack.main assemble
