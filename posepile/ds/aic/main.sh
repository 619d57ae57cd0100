#!/usr/bin/env bash
# AI Challenger keypoints: J. Wu, H. Zheng, B. Zhao, Y. Li, B. Yan, R. Liang, W. Wang, S. Zhou, G. Lin, Y. Fu,
# Y. Wang, Y. Wang, "AI Challenger: A Large-scale Dataset for Going Deeper in Image Understanding",
# arXiv:1711.06475, 2017. https://github.com/AIChallenger/AI_Challenger_2017 (the official site is offline).
# Manual download into $DATA_ROOT/aic/ (registration was required; mirrors exist):
#   AI_Challenger.tar.gz          the images, members ./train/images/<sha1>.jpg (NOT extracted: streamed)
#   annotations/aic_train.json    the COCO-style keypoint conversion (images, annotations: keypoints 14 x
#                                 [x, y, v], v 0 unlabelled / 1 occluded / 2 visible, bbox [x, y, w, h])
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/aic"

# 1. Check the manual download is in place
for f in AI_Challenger.tar.gz annotations/aic_train.json; do
  if [[ ! -f "$root/$f" ]]; then
    echo "$root/$f not found: download AI Challenger keypoints (see the header of $0)" >&2
    exit 1
  fi
done

# 2. Crops of the people with >= 14/3 visible and >= 7 labelled joints, decoded straight from the tar members
python -m posepile.ds.aic.main crop

# 3. The dataset for get_dataset('aic')
python -m posepile.ds.aic.main assemble
