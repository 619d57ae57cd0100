#!/usr/bin/env bash
# COCO-WholeBody: S. Jin, L. Xu, J. Xu, C. Wang, W. Liu, C. Qian, W. Ouyang, P. Luo, "Whole-Body Human Pose
# Estimation in the Wild", ECCV 2020. https://github.com/jin-s13/COCO-WholeBody  (133 keypoints on COCO 2017)
# Manual download (links in the README above, no registration) into $DATA_ROOT/coco_wb/:
#   coco_wholebody_train_v1.0.json, coco_wholebody_val_v1.0.json
# The images are the COCO 2017 ones shared with the coco recipe: $DATA_ROOT/coco/{train,val}2017/
# (run posepile/ds/coco/main.sh with POSEPILE_DOWNLOAD=1, or extract train2017.zip / val2017.zip there).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/coco_wb"

# 1. Check the annotation files and the COCO images are in place
if ! compgen -G "$root/coco_wholebody_*_v1.0.json" >/dev/null &&
    ! compgen -G "$DATA_ROOT/coco/annotations/coco_wholebody_*_v1.0.json" >/dev/null; then
  echo "no coco_wholebody_{train,val}_v1.0.json in $root (or $DATA_ROOT/coco/annotations):" \
    "download them from https://github.com/jin-s13/COCO-WholeBody" >&2
  exit 1
fi
if [[ ! -d "$DATA_ROOT/coco/train2017" && ! -d "$DATA_ROOT/coco/val2017" ]]; then
  echo "COCO 2017 images not found in $DATA_ROOT/coco/{train,val}2017: see posepile/ds/coco/main.sh" >&2
  exit 1
fi

# 2. Crops of every non-crowd person with a labelled keypoint (annotation box, masks from the polygons)
python -m posepile.ds.coco_wb.main crop

# 3. The dataset for get_dataset('coco_wb') (train2017 -> TRAIN, val2017 -> VALID)
python -m posepile.ds.coco_wb.main assemble
