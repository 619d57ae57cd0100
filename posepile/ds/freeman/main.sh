#!/usr/bin/env bash
# FreeMan: J. Wang, F. Yang, B. Li, W. Gou, D. Yan, A. Zeng, Y. Gao, J. Wang, Y. Jing, R. Zhang, "FreeMan: Towards
# Benchmarking 3D Human Pose Estimation under Real-World Conditions", CVPR 2024 (arXiv:2309.05073). CC BY-NC.
# https://wangjiongw.github.io/freeman ; toolkit https://github.com/wangjiongw/FreeMan_API
#
# Registration: request access with the form linked on the project page ("Request"); the release is hosted on
# HuggingFace behind that approval (log in with `huggingface-cli login`, a token of the approved account). Put the
# 30FPS folder (cameras/, keypoints3d/, videos/<session>/vframes/c0<k>.mp4, train.txt, validation.txt, test.txt)
# at $DATA_ROOT/freeman/30FPS (archives of it may be placed in $DATA_ROOT/freeman/archives/ instead). Every step
# is resumable.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/freeman"
py() { python -m posepile.ds.freeman.main "$@"; }

# 1. Extract downloaded archives (if any) safely, once
if [[ -d "$root/archives" ]]; then
  extract_archives "$root/archives" "$root" '*.tar.gz' '*.tar' '*.zip'
fi

# 2. One pass per view video (8 per session): the selected frames (100 mm on the world COCO-17 joints, cm -> mm),
#    crops with extreme perspective around the projected joints x1.15, or with $POSEPILE_DETECTOR the detection
#    of best IoU >= 0.5 (none: dropped). SKIP_BROKEN=1 builds the rest when a video is broken (listed).
options=()
if [[ "${SKIP_BROKEN:-0}" == 1 ]]; then options+=(--skip-broken); fi
if [[ "${POSEPILE_SEGMENT:-0}" == 1 ]]; then options+=(--segmenter "${POSEPILE_SEGMENTER:-grabcut}"); fi
py video ${options[@]+"${options[@]}"}

# 3. The dataset for get_dataset('freeman') (train and validation sessions)
py assemble
