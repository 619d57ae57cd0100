#!/usr/bin/env bash
# ASPset-510: A. Nibali, J. Millward, Z. He, S. Morgan, "ASPset: An outdoor sports pose video dataset
# with 3D keypoint annotations", Image and Vision Computing 2021. Public domain (CC0).
# https://github.com/anibali/aspset-510 ; download with the repository's tool into $DATA_ROOT/aspset:
#   pip install git+https://github.com/anibali/aspset-510 && python -m aspset510.bin.download_data --data-dir "$DATA_ROOT/aspset"
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
py() { python -m posepile.ds.aspset.main "$@"; }

# 1. Frame selection on the mocap: train/val adaptive 100 mm, test every 5th frame (10 fps)
py select-frames

# 2. One pass per clip video (frame index = 50 fps mocap row): crops around the shipped person boxes
#    expanded x1.1 (world is y-down: crops are upright in that frame); no full frames are written. Person
#    masks on the crops with POSEPILE_SEGMENT=1 (the original segmented them). SKIP_BROKEN=1 builds the rest
#    when a video is broken (listed).
options=()
if [[ "${SKIP_BROKEN:-0}" == 1 ]]; then options+=(--skip-broken); fi
if [[ "${POSEPILE_SEGMENT:-0}" == 1 ]]; then options+=(--segmenter "${POSEPILE_SEGMENTER:-grabcut}"); fi
py video ${options[@]+"${options[@]}"}

# 3. The dataset for get_dataset('aspset')
py assemble
