#!/usr/bin/env bash
# EgoHumans: R. Khirodkar, A. Bansal, L. Ma, R. Newcombe, M. Vo, K. Kitani, "EgoHumans: An Egocentric 3D
# Multi-Human Benchmark", ICCV 2023 (arXiv:2305.16487).
# https://rawalkhirodkar.github.io/egohumans ; toolkit and download notes https://github.com/rawalkhirodkar/egohumans
#
# Registration: none; the sequences are on Google Drive (link in the toolkit's assets/DOWNLOAD.md, ~550 GB in all).
# Download the <sequence>.tar.gz files you want and extract each into its group folder as DOWNLOAD.md says
# (tar -xzf 004_tagging.tar.gz --strip-components=8), so that
#   $DATA_ROOT/egohumans/<group, e.g. 01_tagging>/<sequence, e.g. 004_tagging>/{colmap/workplace, ego/aria*/calib,
#   ego/aria*/images/rgb, exo/cam*/images, processed_data/poses3d}
# (the archives nest 8 empty parent folders: hence --strip-components=8). Every step is resumable.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
py() { python -m posepile.ds.egohumans.main "$@"; }

# 1. Optional person detections in the frames of the selected people ($POSEPILE_DETECTOR; the original used
#    YOLOv4, darknet:CFG,WEIGHTS). Without one the box is the projected valid joints x1.05.
if [[ -n "${POSEPILE_DETECTOR:-}" ]]; then
  py detect --detector "$POSEPILE_DETECTOR"
fi

# 2. Crops of the selected people (ego and exo views): fisheye (OPENCV_FISHEYE k1..k4) lenses, ego joints behind
#    the camera or beyond 500 px of the 1408 px frame's centre NaN, >= 6 valid joints, sampler 100 mm per camera,
#    ego crops inside that circle. SKIP_BROKEN=1 builds the rest when a frame is broken (listed).
options=()
if [[ "${SKIP_BROKEN:-0}" == 1 ]]; then options+=(--skip-broken); fi
py crop ${options[@]+"${options[@]}"}

# 3. The dataset for get_dataset('egohumans') (all TRAIN)
py assemble
