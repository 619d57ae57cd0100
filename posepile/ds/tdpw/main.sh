#!/usr/bin/env bash
# 3DPW: T. von Marcard, R. Henschel, M. J. Black, B. Rosenhahn, G. Pons-Moll, "Recovering Accurate 3D
# Human Pose in The Wild Using IMUs and a Moving Camera", ECCV 2018.
# https://virtualhumans.mpi-inf.mpg.de/3DPW/  (registration and licence acceptance needed: download
# sequenceFiles.zip and imageFiles.zip by hand into $DATA_ROOT/tdpw/archives/)
# For the SMPL parameters of each example (`parameters`, in the example's camera frame), put the gendered SMPL
# models (https://smpl.is.tue.mpg.de/, registration: basicModel_f_lbs_10_207_0_v1.0.0.pkl and
# basicmodel_m_lbs_10_207_0_v1.0.0.pkl, or SMPL_FEMALE.pkl / SMPL_MALE.pkl) into $DATA_ROOT/body_models/smpl/;
# without them `parameters` stays empty (logged) and the joints are unaffected.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/tdpw"
py() { python -m posepile.ds.tdpw.main "$@"; }

# 1. Extract the downloaded archives safely (skipped when done)
extract_archives "$root/archives" "$root" '*.zip'

# 2. Person detection (optional; without it, boxes come from the projected joints). The original used
#    YOLOv4: POSEPILE_DETECTOR=darknet:yolov4.cfg,yolov4.weights
if [[ -n "${POSEPILE_DETECTOR:-}" ]]; then
  py detect --detector "$POSEPILE_DETECTOR"
fi

# 3. Crops of every valid (frame, actor); training frames thinned by adaptive selection (100 mm)
py crop

# 4. The dataset (24 SMPL joints, mm; the SMPL fits in each example's camera frame) for get_dataset('tdpw')
py assemble
