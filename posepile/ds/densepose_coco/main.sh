#!/usr/bin/env bash
# DensePose-COCO: R. A. Güler, N. Neverova, I. Kokkinos, "DensePose: Dense Human Pose Estimation In The Wild",
# CVPR 2018. https://github.com/facebookresearch/DensePose  (annotations CC BY-NC 4.0; images: COCO 2014)
# Manual download (no registration) into $DATA_ROOT/densepose_coco/:
#   densepose_coco_2014_train.json           DensePoseData/get_DensePose_COCO.sh of the repository above
#                                           (https://dl.fbaipublicfiles.com/densepose/densepose_coco_2014_train.json)
#   UV_data/UV_Processed.mat                 DensePoseData/get_densepose_uv.sh (DensePose's SMPL UV charts; the
#                                           densepose_posetrack recipe reads it from here too)
# The images are COCO's train2014 (http://images.cocodataset.org/zips/train2014.zip) extracted into
# $DATA_ROOT/coco/ (so $DATA_ROOT/coco/train2014/COCO_train2014_*.jpg).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/densepose_coco"

# 1. Check the manual download is in place (the crop stage names any single missing file)
if [[ ! -f "$root/densepose_coco_2014_train.json" ]]; then
  echo "$root/densepose_coco_2014_train.json not found: download it with DensePoseData/get_DensePose_COCO.sh" \
       "(https://github.com/facebookresearch/DensePose)" >&2
  exit 1
fi

# 2. Crops of the kept people (COCO visibility rule, > 6 of the 12 limb joints labelled) with their DensePose
#    points mapped to image pixels and onto SMPL (vertex triplets + barycentric coordinates)
python -m posepile.ds.densepose_coco.main crop

# 3. The dataset for get_dataset('densepose_coco') (train2014 -> TRAIN)
python -m posepile.ds.densepose_coco.main assemble
