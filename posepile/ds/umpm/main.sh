#!/usr/bin/env bash
# UMPM: N. P. van der Aa, X. Luo, G. J. Giezeman, R. T. Tan, R. C. Veltkamp, "Utrecht Multi-Person Motion (UMPM)
# benchmark: a multi-person dataset with synchronized video and motion capture data for evaluation of
# articulated human motion and interaction", Workshop on Human Interaction in Computer Vision (HICV), in
# conjunction with ICCV 2011. https://www2.projects.science.uu.nl/umpm/
#
# Download needs registration: request a username and password on the UMPM website, then download every zip
# listed in https://www2.projects.science.uu.nl/umpm/data/urls.txt (HTTP basic auth, e.g.
#   sed 's/\r$//' urls.txt | xargs -n1 wget --http-user="$user" --http-password="$password")
# into $DATA_ROOT/umpm/archives/: one zip per sequence (<sequence>.json, Video/<sequence>_<f|s|r|l>.avi.xz,
# Groundtruth/<sequence>_vm.c3d, ...) and umpm_camcalib1.zip (Calib/*.ini). The videos are ~1 TB uncompressed.
# POSEPILE_DETECTOR=<spec> (e.g. the original's YOLOv4 as darknet:CFG,WEIGHTS): people are matched to detections
# (Hungarian, IoU >= 0.5) and unmatched people dropped, as the original; without a detector the box is the
# joint box x1.15. POSEPILE_SEGMENT=1: person masks. SKIP_BROKEN=1: build the rest when a video is missing or
# corrupt (listed). Every step is resumable.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/umpm"
py() { python -m posepile.ds.umpm.main "$@"; }

# 1. Extract the zips safely into $DATA_ROOT/umpm (skipped when done)
extract_archives "$root/archives" "$root" '*.zip'

# 2. Decompress Video/*.avi.xz (skipped for videos already decompressed)
py decompress

# 3. One pass per video: per camera and person, adaptive selection (100 mm, buffer 300, mean-subtracted pose;
#    video frame i = mocap sample 2i), crops around each person (sequence files read tolerantly)
options=()
if [[ -n "${POSEPILE_DETECTOR:-}" ]]; then options+=(--detector "$POSEPILE_DETECTOR"); fi
if [[ "${SKIP_BROKEN:-0}" == 1 ]]; then options+=(--skip-broken); fi
if [[ "${POSEPILE_SEGMENT:-0}" == 1 ]]; then options+=(--segmenter "${POSEPILE_SEGMENTER:-grabcut}"); fi
py video ${options[@]+"${options[@]}"}

# 4. The dataset for get_dataset('umpm'), with the original's plausibility filter (NaN mode)
py assemble
