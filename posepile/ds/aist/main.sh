#!/usr/bin/env bash
# AIST++: R. Li, S. Yang, D. A. Ross, A. Kanazawa, "AI Choreographer: Music Conditioned 3D Dance Generation with
# AIST++", ICCV 2021. https://google.github.io/aistplusplus_dataset/
# AIST Dance DB: S. Tsuchida, S. Fukayama, M. Hamasaki, M. Goto, "AIST Dance Video Database: Multi-genre,
# Multi-dancer, and Multi-camera Database for Dance Information Processing", ISMIR 2019.
# https://aistdancedb.ongaaccel.jp/
#
# Manual download (accept the terms on both sites):
#   - the annotations https://storage.cloud.google.com/aist_plusplus_public/20210308/fullset.zip (needs a Google
#     login, so a browser) into $DATA_ROOT/aist/archives/fullset.zip;
#   - the 10M refined videos listed in
#     https://aistdancedb.ongaaccel.jp/data/video_refined/10M/refined_10M_all_video_url.csv into $DATA_ROOT/aist/videos/ (e.g. xargs -n 1 -P 4 wget -nc --directory-prefix=videos/ < that CSV).
# Every step below is resumable.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/aist"
py() { python -m posepile.ds.aist.main "$@"; }

# 1. Extract fullset.zip safely and rename aist_plusplus_final/ to annotations/ (skipped when done)
extract_archives "$root/archives" "$root" '*.zip'
if [[ -d "$root/aist_plusplus_final" && ! -e "$root/annotations" ]]; then
  mv "$root/aist_plusplus_final" "$root/annotations"
fi

# 2. Adaptive selection (100 mm) on each sequence's world pose (keypoints3d_optim, cm -> mm, + neck and pelvis),
#    ignore_list.txt left out; per video the selected frames, after checking it is 60 fps (frame i = row i)
py select

# 3. One pass per video: crops (box = projected joints x1.15, further expansion 0.8), each segmented
#    (POSEPILE_SEGMENTER, default grabcut; the original used DeepLabV3). SKIP_BROKEN=1 builds the rest when a
#    video is missing or corrupt (listed).
options=(--segmenter "${POSEPILE_SEGMENTER:-grabcut}")
if [[ "${SKIP_BROKEN:-0}" == 1 ]]; then options+=(--skip-broken); fi
py video "${options[@]}"

# 4. The dataset (official pose splits) for get_dataset('aist')
py assemble
