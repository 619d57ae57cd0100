#!/usr/bin/env bash
# PASCAL VOC 2012 occluders (synthetic-occlusion augmentation): M. Everingham, L. Van Gool, C. K. I. Williams,
# J. Winn, A. Zisserman, "The PASCAL Visual Object Classes (VOC) Challenge", IJCV 2010.
# http://host.robots.ox.ac.uk/pascal/VOC/voc2012/  (no registration; VOCtrainval_11-May-2012.tar, 1.9 GB)
# Place or download the tar into $DATA_ROOT/pascal_voc/ (POSEPILE_DOWNLOAD=1 with PASCAL_VOC_SHA256 set
# downloads it); it extracts to VOCdevkit/VOC2012/{Annotations,SegmentationObject,SegmentationClass,JPEGImages}.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/pascal_voc"

# 1. Download (optional) and extract safely
if [[ "${POSEPILE_DOWNLOAD:-0}" == 1 ]]; then
  mkdir -p "$root"
  download_verified "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar" \
    "${PASCAL_VOC_SHA256:?set PASCAL_VOC_SHA256 to the archive SHA-256 you trust}" "$root/VOCtrainval_11-May-2012.tar"
fi
if [[ ! -d "$root/VOCdevkit/VOC2012/SegmentationObject" && -f "$root/VOCtrainval_11-May-2012.tar" ]]; then
  extract_safely "$root/VOCtrainval_11-May-2012.tar" "$root"
fi

# 2. Occluders: segmented non-person, non-difficult, non-truncated objects of >= 500 px, rim softened to 0.75,
#    downscaled x0.5 -> occluders/<id>_<k>.png (RGBA) + occluders/index.json
python -m posepile.ds.pascal_voc.main occluders
