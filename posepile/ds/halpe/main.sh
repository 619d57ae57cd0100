#!/usr/bin/env bash
# Halpe-FullBody: H.-S. Fang, J. Li, H. Tang, C. Xu, H. Zhu, Y. Xiu, Y.-L. Li, C. Lu, "AlphaPose: Whole-Body
# Regional Multi-Person Pose Estimation and Tracking in Real-Time", TPAMI 2022.
# https://github.com/Fang-Haoshu/Halpe-FullBody  (136 keypoints on the HICO-DET training images)
# Manual download into $DATA_ROOT/halpe/:
#   halpe_train_v1.json (linked from the Halpe-FullBody README), and
#   the HICO-DET images (Y.-W. Chao et al., "Learning to Detect Human-Object Interactions", WACV 2018;
#   http://www-personal.umich.edu/~ywchao/hico/), extracted so that
#   hico_20160224_det/images/train2015/HICO_train2015_*.jpg exists.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/halpe"

# 1. Extract the HICO-DET archive if it was downloaded but not yet extracted
if [[ ! -d "$root/hico_20160224_det/images/train2015" && -f "$root/hico_20160224_det.tar.gz" ]]; then
  extract_safely "$root/hico_20160224_det.tar.gz" "$root"
fi
if [[ ! -f "$root/halpe_train_v1.json" ]]; then
  echo "$root/halpe_train_v1.json not found: download it from https://github.com/Fang-Haoshu/Halpe-FullBody" >&2
  exit 1
fi

# 2. Crops of every training person that passes the visibility and size checks (TRAIN only)
python -m posepile.ds.halpe.main crop

# 3. The dataset for get_dataset('halpe')
python -m posepile.ds.halpe.main assemble
