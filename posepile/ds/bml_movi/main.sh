#!/usr/bin/env bash
# BML-MoVi: S. Ghorbani, K. Mahdaviani, A. Thaler, K. Kording, D. J. Cook, G. Blohm, N. F. Troje, "MoVi: A
# large multi-purpose human motion and video dataset", PLoS ONE 16(6): e0253157, 2021.
# https://www.biomotionlab.ca/movi/ (data on Scholars Portal Dataverse; toolbox github.com/saeed1262/MoVi-Toolbox)
# Download (accept the licence on the Dataverse page, then download manually) the videos (F/S1/S2 rounds, PG1,
# PG2, CP1, CP2), the V3D mocap (F_Subjects_1_45, F_Subjects_46_90, S) and the toolbox's camera files
# (Camera_patameters/Extrinsics_PG*.npz, cameraParams_PG*.npz) into $DATA_ROOT/bml_movi/archives/; the
# camera files go to $DATA_ROOT/bml_movi/Calib/. Videos end up directly in $DATA_ROOT/bml_movi/.
# The CP cameras are not calibrated in the release: put per-frame 2D keypoints of each CP video (from any
# pose estimator; format in main.py) into $DATA_ROOT/bml_movi/keypoints2d/<video stem>.npz. CP videos
# without them are skipped (logged). MOVI_CP_OFFSET_RANGE="LO HI" (s) narrows the time-offset search.
# POSEPILE_DETECTOR=<spec>: boxes become the detection of best IoU with the joint box x1.05.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
py() { python -m posepile.ds.bml_movi.main "$@"; }
root="$DATA_ROOT/bml_movi"

# 1. Extract the archives (once; skipped when done)
if [[ -d "$root/archives" ]]; then extract_archives "$root/archives" "$root"; fi

# 2. CP cameras: time offset (alignment of the 2D keypoints with the projected mocap) and extrinsics
#    (RANSAC PnP, fixed intrinsics; CP2 per frame)
range_options=()
if [[ -n "${MOVI_CP_OFFSET_RANGE:-}" ]]; then
  read -r lo hi <<< "$MOVI_CP_OFFSET_RANGE"
  range_options=(--offset-range "$lo" "$hi")
fi
py calibrate-cp ${range_options[@]+"${range_options[@]}"}

# 3. Frame selection per video (100 mm, buffer 500; camera roll <= 7 degrees)
py select

# 4. One pass per video: crops of the selected frames
options=()
if [[ -n "${POSEPILE_DETECTOR:-}" ]]; then options+=(--detector "$POSEPILE_DETECTOR"); fi
if [[ "${SKIP_BROKEN:-0}" == 1 ]]; then options+=(--skip-broken); fi
py video ${options[@]+"${options[@]}"}

# 5. The dataset (all TRAIN) for get_dataset('bml_movi')
py assemble
