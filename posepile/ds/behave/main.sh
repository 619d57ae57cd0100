#!/usr/bin/env bash
# BEHAVE: B. L. Bhatnagar, X. Xie, I. A. Petrov, C. Sminchisescu, C. Theobalt, G. Pons-Moll, "BEHAVE: Dataset
# and Method for Tracking Human Object Interactions", CVPR 2022. https://virtualhumans.mpi-inf.mpg.de/behave/
#
# Download (accept the licence on the website) Date01.zip ... Date07.zip and calibs.zip into
# $DATA_ROOT/behave/archives/ and split.json into $DATA_ROOT/behave/ (all from
# https://datasets.d2.mpi-inf.mpg.de/cvpr22behave/). The 24 SMPL joints need the gendered SMPL models
# (https://smpl.is.tue.mpg.de/, registration) in $DATA_ROOT/body_models/smpl/ (SMPL_MALE.pkl, SMPL_FEMALE.pkl or
# the basicmodel_{m,f}_lbs_10_207_0_v1.1.0.pkl files). The SMPL+H fits are stored as released, in the world
# frame (`parameters`); using them needs the SMPL+H models (https://mano.is.tue.mpg.de/). Every step is resumable.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/behave"
py() { python -m posepile.ds.behave.main "$@"; }

# 1. Extract the sequences (Date*.zip -> sequences/) and the calibrations (calibs.zip -> calibs/), safely, once
extract_archives "$root/archives" "$root/sequences" 'Date*.zip'
extract_archives "$root/archives" "$root" 'calibs.zip'
if [[ -f "$root/archives/split.json" && ! -f "$root/split.json" ]]; then cp "$root/archives/split.json" "$root/"; fi

# 2. Optional person detection (a box is then replaced by the best detection at IoU > 0.5).
#    The original's YOLOv4: POSEPILE_DETECTOR=darknet:yolov4.cfg,yolov4.weights
if [[ -n "${POSEPILE_DETECTOR:-}" ]]; then py detect --detector "$POSEPILE_DETECTOR"; fi

# 3. Crops of the selected frames (100 mm, buffer 100 per sequence) x 4 Kinects, with the person masks
py crop

# 4. The dataset for get_dataset('behave') (SMPL+H parameters in the world frame)
py assemble
