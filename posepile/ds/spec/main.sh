#!/usr/bin/env bash
# SPEC: M. Kocabas, C.-H. P. Huang, J. Tesch, L. Müller, O. Hilliges, M. J. Black, "SPEC: Seeing People in the
# Wild with an Estimated Camera", ICCV 2021. https://spec.is.tue.mpg.de/ (code: https://github.com/mkocabas/SPEC)
# Register on the website (licence), download spec-syn.zip into $DATA_ROOT/spec/archives/ (it extracts to
# $DATA_ROOT/spec/spec-syn/{annotations/{train,test}.npz, images}). The SMPL joints need the neutral SMPL model
# (https://smpl.is.tue.mpg.de/ or SMPLify's basicModel_neutral_lbs_10_207_0_v1.0.0.pkl) in
# $DATA_ROOT/body_models/smpl/.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/spec"
py() { python -m posepile.ds.spec.main "$@"; }

# 1. Extract the archives safely (skipped when done)
extract_archives "$root/archives" "$root" '*.zip'

# 2. SMPL joints of (pose, shape) placed by PnP against 14 OpenPose GT joints (shipped intrinsics), scaled by the
#    RMS-spread ratio of S and the SMPL joints; into the world frame with cam_rotmat
py prepare

# 3. Optional person detection (the original: YOLOv4, POSEPILE_DETECTOR=darknet:yolov4.cfg,yolov4.weights); then
#    Hungarian match at IoU >= 0.3, unmatched people dropped (without a detector: projected joints x1.15)
if [[ -n "${POSEPILE_DETECTOR:-}" ]]; then py detect --detector "$POSEPILE_DETECTOR"; fi

# 4. Crops (boxes with a side < 100 px dropped; extreme_perspective as the original)
py crop

# 5. The dataset (train TRAIN, test TEST) for get_dataset('spec'); `parameters` = the placed SMPL fit in the
#    world frame with its scale (joints = scale * model(pose, shape, trans), metres)
py assemble
