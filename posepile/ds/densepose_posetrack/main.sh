#!/usr/bin/env bash
# DensePose-PoseTrack: N. Neverova, J. Thewlis, R. A. Güler, I. Kokkinos, A. Vedaldi, "Slim DensePose: Thrifty
# Learning from Sparse Annotations and Motion Cues", CVPR 2019. https://github.com/facebookresearch/DensePose
# (PoseTrack/README.md; annotations CC BY-NC 2.0). Frames: PoseTrack 2018 (https://posetrack.net/, see
# posepile/ds/posetrack/main.sh), extracted into $DATA_ROOT/posetrack/ (images/{train,val}/<sequence>/*.jpg).
# Manual download into $DATA_ROOT/densepose_posetrack/ (PoseTrack/get_DensePose_PoseTrack.sh of the repository):
#   densepose_posetrack_train2017.json, densepose_posetrack_val2017.json
# DensePose's UV charts: $DATA_ROOT/densepose_coco/UV_data/UV_Processed.mat (see posepile/ds/densepose_coco/main.sh)
# or $DENSEPOSE_UV_PATH.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/densepose_posetrack"

# 1. Check the manual download is in place (the crop stage names any single missing file)
if ! compgen -G "$root/densepose_posetrack_*2017.json" >/dev/null; then
  echo "no densepose_posetrack_{train,val}2017.json in $root: download them with" \
       "PoseTrack/get_DensePose_PoseTrack.sh (https://github.com/facebookresearch/DensePose)" >&2
  exit 1
fi

# 2. Crops of the kept people (visibility rule, > 6 of the 12 limb joints labelled) with their DensePose points
python -m posepile.ds.densepose_posetrack.main crop

# 3. The datasets densepose_posetrack (PoseTrack joints) and densepose_posetrack_like_coco (COCO joint names,
#    head and head top left out) for get_dataset() (train -> TRAIN, val -> VALID)
python -m posepile.ds.densepose_posetrack.main assemble
