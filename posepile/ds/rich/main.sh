#!/usr/bin/env bash
# RICH: C.-H. P. Huang, H. Yi, M. Hoschle, M. Safroshkin, T. Alexiadis, S. Polikovsky, D. Scharstein,
# M. J. Black, "Capturing and Inferring Dense Full-Body Human-Scene Contact", CVPR 2022. https://rich.is.tue.mpg.de/
#
# Register on https://rich.is.tue.mpg.de/ and download into $DATA_ROOT/rich/archives/: scan_calibration.zip,
# train_body.zip, val_body.zip and the train/val image archives listed by download_train.sh / download_val.sh
# (they extract to {train,val}/<sequence>/cam_<cc>/<frame>_<cc>.<png|bmp|jpg>). The 127 joints need the SMPL-X
# models (https://smpl-x.is.tue.mpg.de/, registration) SMPLX_MALE.npz and SMPLX_FEMALE.npz in
# $DATA_ROOT/body_models/smplx/. Every step is resumable.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/rich"
py() { python -m posepile.ds.rich.main "$@"; }

# 1. Extract the archives safely, once; the body and calibration zips hold ps/project/multi-ioi/rich_release/
extract_archives "$root/archives" "$root"
release="$root/ps/project/multi-ioi/rich_release"
if [[ -d "$release" ]]; then
  for item in "$release"/*; do
    target="$root/$(basename "$item")"
    if [[ -e "$target" ]]; then
      echo "main.sh: $target exists; leaving $item in place" >&2
    else
      mv "$item" "$target"
    fi
  done
fi

# 2. PNG/BMP images -> JPEG q85 next to them (as the original's downloader)
py to-jpeg

# 3. Optional person detection (a box is then replaced by the best detection at IoU > 0.5).
#    The original's YOLOv4: POSEPILE_DETECTOR=darknet:yolov4.cfg,yolov4.weights
if [[ -n "${POSEPILE_DETECTOR:-}" ]]; then py detect --detector "$POSEPILE_DETECTOR"; fi

# 4. Crops of the selected subject x frame (the first camera's image frames; 100 mm, buffer 100 per subject)
#    x static cameras (min side 100 px)
py crop

# 5. A person mask per crop (the original segmented every crop with DeepLabV3): POSEPILE_SEGMENTER, default
#    grabcut (onnx:MODEL or tf:DIR for a semantic segmentation network)
py segment --segmenter "${POSEPILE_SEGMENTER:-grabcut}"

# 6. The datasets for get_dataset('rich') (127 joints) and get_dataset('rich_body') (42 joints)
py assemble
