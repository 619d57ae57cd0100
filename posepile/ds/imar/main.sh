#!/usr/bin/env bash
# The IMAR lab's mocap datasets (one recipe, three datasets: fit3d, chi3d, humansc3d).
#   Fit3D: M. Fieraru, M. Zanfir, S. C. Pirlea, V. Olaru, C. Sminchisescu, "AIFit: Automatic 3D
#     Human-Interpretable Feedback Models for Fitness Training", CVPR 2021. https://fit3d.imar.ro/
#   CHI3D: M. Fieraru, M. Zanfir, E. Oneata, A. Popa, V. Olaru, C. Sminchisescu, "Three-Dimensional
#     Reconstruction of Human Interactions", CVPR 2020. https://ci3d.imar.ro/
#   HumanSC3D: M. Fieraru, M. Zanfir, E. Oneata, A. Popa, V. Olaru, C. Sminchisescu, "Learning Complex 3D
#     Human Self-Contact", AAAI 2021. https://sc3d.imar.ro/
#
# Download needs registration on each website (manual): for each dataset you want, put <name>_train.tar.gz
# into $DATA_ROOT/<name>/archives/ and <name>_info.json into $DATA_ROOT/<name>/ (name = fit3d, chi3d or
# humansc3d). The test archives have no ground truth and are not used.
#
# Usage: main.sh [fit3d] [chi3d] [humansc3d]   (no argument: every one of the three whose
# $DATA_ROOT/<name> folder exists). Each step is resumable; the video step takes --shard i/n.
# POSEPILE_DETECTOR=<spec> (e.g. the original's YOLOv4 as darknet:CFG,WEIGHTS): boxes become the detection
# of best IoU >= 0.5 with the joint box x1.2 (else the joint box x1.2). POSEPILE_SEGMENT=1: person masks.
# SKIP_BROKEN=1: build the rest when a video is missing or corrupt (listed).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
py() { python -m posepile.ds.imar.main "$@"; }

names=("$@")
if [[ ${#names[@]} -eq 0 ]]; then
  for name in fit3d chi3d humansc3d; do
    if [[ -d "$DATA_ROOT/$name" ]]; then names+=("$name"); fi
  done
fi
if [[ ${#names[@]} -eq 0 ]]; then
  echo "none of $DATA_ROOT/{fit3d,chi3d,humansc3d} exists: download a dataset first (see the header)" >&2
  exit 1
fi

options=()
if [[ -n "${POSEPILE_DETECTOR:-}" ]]; then options+=(--detector "$POSEPILE_DETECTOR"); fi
if [[ "${SKIP_BROKEN:-0}" == 1 ]]; then options+=(--skip-broken); fi
if [[ "${POSEPILE_SEGMENT:-0}" == 1 ]]; then options+=(--segmenter "${POSEPILE_SEGMENTER:-grabcut}"); fi

for name in "${names[@]}"; do
  root="$DATA_ROOT/$name"
  # 1. Extract the train archive(s) safely (skipped when done)
  extract_archives "$root/archives" "$root" '*train*.tar.gz' '*train*.tgz' '*train*.tar' '*train*.zip'

  # 2. Frame selection: video frame i = mocap frame 4i (200 Hz mocap, 50 fps video); per camera and person,
  #    adaptive selection (100 mm, buffer 10 000)
  py select-frames --dataset "$name"

  # 3. One pass per video: crops around the joint box x1.2 (or the best detection), lens model undone
  py video --dataset "$name" ${options[@]+"${options[@]}"}

  # 4. The dataset for get_dataset('<name>')
  py assemble --dataset "$name"
done
