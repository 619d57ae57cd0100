#!/usr/bin/env bash
# BEDLAM: M. J. Black, P. Patel, J. Tesch, J. Yang, "BEDLAM: A Synthetic Dataset of Bodies Exhibiting Detailed
# Lifelike Animated Motion", CVPR 2023. https://bedlam.is.tue.mpg.de ; https://github.com/pixelite1201/BEDLAM
#
# Registration: register on https://bedlam.is.tue.mpg.de (and https://smpl-x.is.tue.mpg.de for the model), then
# download from its download page, into $DATA_ROOT/bedlam/archives/: the training labels all_npz_12_training.zip,
# and per scene the mp4 and mask archives (<scene>_mp4.tar, <scene>_masks.tar). The neutral SMPL-X model
# (SMPLX_NEUTRAL.npz) goes to $DATA_ROOT/body_models/smplx/ (the frame selection runs on its joints). Every step is
# resumable.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/bedlam"
py() { python -m posepile.ds.bedlam.main "$@"; }

# 1. Extract the labels, videos and masks safely, once
extract_archives "$root/archives" "$root" '*.zip' '*.tar' '*.tar.gz'

# 2. One pass per sequence mp4: per body the sampler (100 mm, camera frame), boxes of at least 100 px (the labels'
#    box, or with $POSEPILE_DETECTOR the Hungarian-matched detection, IoU >= 0.5), the people mask (not the
#    environment mask) on each crop; closeup scenes keep the stored frame, their camera is turned instead.
#    SKIP_BROKEN=1 builds the rest when a video is broken (listed).
options=()
if [[ "${SKIP_BROKEN:-0}" == 1 ]]; then options+=(--skip-broken); fi
py video ${options[@]+"${options[@]}"}

# 3. The dataset for get_dataset('bedlam') (parametric: neutral SMPL-X in the world frame of each camera)
py assemble
