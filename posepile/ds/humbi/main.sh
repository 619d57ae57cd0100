#!/usr/bin/env bash
# HUMBI: Z. Yu, J. S. Yoon, I. K. Lee, P. Venkatesh, J. Park, J. Yu, H. S. Park, "HUMBI: A Large Multiview
# Dataset of Human Body Expressions", CVPR 2020. https://humbi-data.net/ (code: https://github.com/zhixuany/HUMBI)
#
# Download needs registration: request access on https://humbi-data.net/, accept the terms, then download the
# "Body" bundles (images + reconstruction) from the links you receive. Put the archives in
# $DATA_ROOT/humbi/archives/ (they extract to subject_<n>/body/...). For the 24 SMPL joints, place the neutral
# SMPL model (https://smpl.is.tue.mpg.de/, registration) at
# $DATA_ROOT/body_models/smpl/basicModel_neutral_lbs_10_207_0_v1.0.0.pkl (or SMPL_NEUTRAL.pkl,
# basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl); each example also gets the SMPL fit in the world frame
# (`parameters`). Without it those joints are NaN, `parameters` is empty, and only the 25 OpenPose `_coco`
# joints (the ones the paper's mixes use) are filled.
# Every step below is resumable.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/humbi"
py() { python -m posepile.ds.humbi.main "$@"; }

# 1. Extract the downloaded body bundles safely (skipped when done)
extract_archives "$root/archives" "$root" '*.zip' '*.tar.gz' '*.tar'

# 2. List the JPEGs that do not decode (skipped later, not fatal; the release has ~600)
py find-broken

# 3. Optional person detection (the box then becomes its hull with the best-IoU detection if IoU > 0.5).
#    The original's YOLOv4: POSEPILE_DETECTOR=darknet:yolov4.cfg,yolov4.weights
if [[ -n "${POSEPILE_DETECTOR:-}" ]]; then py detect --detector "$POSEPILE_DETECTOR"; fi

# 4. Crops of every snapshot x camera (no motion-based selection; joint box x1.05, clipped to 1920x1080)
py crop

# 5. The dataset for get_dataset('humbi')
py assemble
