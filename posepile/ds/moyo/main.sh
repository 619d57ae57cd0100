#!/usr/bin/env bash
# MOYO: S. Tripathi, L. Muller, C.-H. P. Huang, O. Taheri, M. J. Black, D. Tzionas, "3D Human Pose Estimation via
# Intuitive Physics", CVPR 2023. https://moyo.is.tue.mpg.de/ (toolkit: https://github.com/sha2nkt/moyo_toolkit)
#
# Register on https://moyo.is.tue.mpg.de/register.php (licence). Clone the toolkit into $DATA_ROOT/moyo/moyo_toolkit
# (it holds the subject's rest mesh data/v_templates/220923_yogi_03596_minimal_simple_female/mesh.ply and the
# download lists) and download with its scripts, into $DATA_ROOT/moyo/MOYO/<session dir>/: cameras.zip, mosh.zip
# (put them in $DATA_ROOT/moyo/archives/<session dir>/ to have step 1 extract them) and the image zips of
# images/train/ and images/val/ (kept as zips: the recipe reads the JPEGs in place). The fits need the SMPL-X model
# SMPLX_FEMALE.npz with its full 300-column shape space (https://smpl-x.is.tue.mpg.de/, registration) in
# $DATA_ROOT/body_models/smplx/. Every step is resumable.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/moyo"
py() { python -m posepile.ds.moyo.main "$@"; }

# 1. Extract the camera and MoSh zips of each session safely, once (the image zips stay zipped)
if [[ -d "$root/archives" ]]; then
  for session_dir in "$root/archives"/*/; do
    [[ -d "$session_dir" ]] || continue
    extract_archives "$session_dir" "$root/MOYO/$(basename "$session_dir")" 'cameras.zip' 'mosh.zip'
  done
fi

# 2. Crops of the image frames kept (T-pose frames dropped; fit 2i for image i; 100 mm sampler per image zip on the
#    camera-frame joints, buffer 200), box = projected joints x1.05
py crop

# 3. A person mask per crop (the original segmented every crop): POSEPILE_SEGMENTER, default grabcut
py segment --segmenter "${POSEPILE_SEGMENTER:-grabcut}"

# 4. The dataset for get_dataset('moyo') (parametric-only: SMPL-X female, 128 betas, world frame)
py assemble
