#!/usr/bin/env bash
# MADS: W. Zhang, Z. Liu, L. Zhou, H. Leung, A. B. Chan, "Martial Arts, Dancing and Sports Dataset: a Challenging
# Stereo and Multi-View Dataset for 3D Human Pose Estimation", Image and Vision Computing 61:22-39, 2017.
# https://visal.cs.cityu.edu.hk/research/mads/
#
# Download (manual; the project page links a Google Drive folder): the multi-view part MADS_multiview.zip, a
# split zip (MADS_multiview.zip + MADS_multiview.z01, .z02, ...), into $DATA_ROOT/mads/archives/. It extracts
# to multi_view_data/<action>/{<sequence>_C<c>.avi, <sequence>_GT.mat, Calib_Cam<c>.mat}.
# POSEPILE_DETECTOR=<spec> (e.g. the original's YOLOv4 as darknet:CFG,WEIGHTS): boxes become the detection of
# best IoU with the joint box x1.2. POSEPILE_SEGMENT=1: person masks. SKIP_BROKEN=1: build the rest when a
# video is missing or corrupt (listed). Every step is resumable.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/mads"
py() { python -m posepile.ds.mads.main "$@"; }

# 1. Join the split zip (needs the zip tool) and extract it safely (skipped when done)
if compgen -G "$root/archives/*.z01" > /dev/null; then
  for first in "$root"/archives/*.zip; do
    joined="$root/archives/joined/$(basename "$first")"
    if [[ ! -f "$joined" ]]; then
      command -v zip > /dev/null || { echo "joining $first needs the zip tool (apt-get install zip)" >&2; exit 1; }
      mkdir -p "$root/archives/joined"
      partial="$root/archives/joined/.partial-$(basename "$first")"
      rm -f "$partial"
      zip -s 0 "$first" --out "$partial"
      mv "$partial" "$joined"
    fi
  done
  extract_archives "$root/archives/joined" "$root" '*.zip'
else
  extract_archives "$root/archives" "$root" '*.zip'
fi

# 2. One pass per video: frames with ground truth, adaptive selection (100 mm, v1 with validity check),
#    crops around the joint box x1.2 (or the best detection)
options=()
if [[ -n "${POSEPILE_DETECTOR:-}" ]]; then options+=(--detector "$POSEPILE_DETECTOR"); fi
if [[ "${SKIP_BROKEN:-0}" == 1 ]]; then options+=(--skip-broken); fi
if [[ "${POSEPILE_SEGMENT:-0}" == 1 ]]; then options+=(--segmenter "${POSEPILE_SEGMENTER:-grabcut}"); fi
py video ${options[@]+"${options[@]}"}

# 3. The dataset for get_dataset('mads')
py assemble
