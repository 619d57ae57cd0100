#!/usr/bin/env bash
# InterCap: Y. Huang, O. Taheri, M. J. Black, D. Tzionas, "InterCap: Joint Markerless 3D Tracking of Humans and
# Objects in Interaction", GCPR 2022. https://intercap.is.tue.mpg.de/ (toolkit: https://github.com/YinghaoHuang91/InterCap)
#
# Register on https://intercap.is.tue.mpg.de/ (licence) and download the RGBD_Images zips and the SMPL-X fits
# (Res_Individuals) into $DATA_ROOT/intercap/archives/; they extract to
# $DATA_ROOT/intercap/RGBD_Images/<subject>/<motion>/Seg_<k>/Frames_Cam<1..6>/color/<frame>.jpg and
# $DATA_ROOT/intercap/Res_Individuals/<subject>/<motion>/Seg_<k>/res_1.pkl. The camera calibrations are the
# toolkit's Data/calibration_{first,second,third}/ folders: put them under $DATA_ROOT/intercap/Data/ (e.g.
# `git clone https://github.com/YinghaoHuang91/InterCap` and copy its Data/calibration_* there). The fits need the
# SMPL-X models SMPLX_MALE.npz and SMPLX_FEMALE.npz (https://smpl-x.is.tue.mpg.de/, registration; with the hand
# PCA arrays) in $DATA_ROOT/body_models/smplx/. Every step is resumable.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/intercap"
py() { python -m posepile.ds.intercap.main "$@"; }

# 1. Extract the archives safely, once
extract_archives "$root/archives" "$root" '*.zip'

# 2. Optional person detection (then a view keeps the detection of best IoU >= 0.1 with the joint box x1.1, or is
#    dropped, as the original). The original's YOLOv4: POSEPILE_DETECTOR=darknet:yolov4.cfg,yolov4.weights
if [[ -n "${POSEPILE_DETECTOR:-}" ]]; then py detect --detector "$POSEPILE_DETECTOR"; fi

# 3. Crops of the frames selected per segment (100 mm on the 55 SMPL-X joints, buffer 100) x 6 Kinects
py crop

# 4. A person mask per crop (the original segmented every crop): POSEPILE_SEGMENTER, default grabcut
py segment --segmenter "${POSEPILE_SEGMENTER:-grabcut}"

# 5. The dataset for get_dataset('intercap') (parametric-only: SMPL-X in the world frame, JointInfo([], []))
py assemble
