#!/usr/bin/env bash
# MPI-INF-3DHP: D. Mehta et al., "Monocular 3D Human Pose Estimation In The Wild Using Improved CNN
# Supervision", 3DV 2017. https://vcai.mpi-inf.mpg.de/3dhp-dataset/
# Download with the official script after accepting the licence (edit conf.ig: ready_to_download=1,
# subjects and cameras), then put the test set (mpi_inf_3dhp_test_set.zip) in $DATA_ROOT/tdhp/archives/:
#   (cd "$DATA_ROOT/tdhp" && bash get_dataset.sh)
# The training download holds per S*/Seq*: annot.mat, camera.calibration, imageSequence/video_N.avi and the
# chroma-key mask videos FGmasks/video_N.avi (person) and ChairMasks/video_N.avi (chair, where shipped).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/tdhp"
py() { python -m posepile.ds.tdhp.main "$@"; }

# 1. Extract the test set archive safely (skipped when done)
extract_archives "$root/archives" "$root" '*.zip'

# 2. Training frames (redone when annot.mat or camera.calibration change; every file is checked): tdhp, as the
#    original: cameras 0-2 and 4-8, every 5th frame with all 17 joints in view, then adaptive 100 mm per camera
#    (S1-S7 train, S8 validation); 3DHP-full: every frame of all 14 cameras through the adaptive sampler
#    (100 mm, camera coordinates), >= 9 of the 28 joints in view
py select-frames

# 3. Person masks of the selected frames from the shipped chroma-key videos (FGmasks/video_N.avi, first
#    channel > 32) and the chair masks (ChairMasks/video_N.avi) where shipped: one light pass per mask video
py masks

# 4. Training crops, one pass per video (imageSequence/video_N.avi; frame i = annotation row i); no full frames
#    are written; the masks are reprojected into the crops; the original's 3DHP colour correction (gamma 0.67
#    and a lightness-proportional Lab white balance) is applied to every training crop. Box: all joints x 1.05,
#    not clipped (partly visible 3DHP-full people keep their scale). With a person detector boxes follow 3DHP's
#    union rule; the original's YOLOv4: POSEPILE_DETECTOR=darknet:yolov4.cfg,yolov4.weights. SKIP_BROKEN=1
#    builds the rest when a video is broken (listed). tdhp: the 8 training cameras; 3DHP-full (tdhp_full): all 14.
py video $([[ "${SKIP_BROKEN:-0}" == 1 ]] && echo --skip-broken)
if [[ "${TDHP_FULL:-1}" == 1 ]]; then
  py full-video $([[ "${SKIP_BROKEN:-0}" == 1 ]] && echo --skip-broken)
fi

# 5. Test set crops from its images (test cameras from the .calib files), uncorrected as in the original;
#    TDHP_COLOR_CORRECT=1 applies the training crops' colour correction to them too.
py crop-test $([[ "${TDHP_COLOR_CORRECT:-0}" == 1 ]] && echo --color-correct-test)

# 6. The datasets: tdhp (17 joints; S1-S7 TRAIN, S8 VALID, TS1-TS6 TEST) and tdhp_full (28 joints in MuCo's order) (when its crops exist; TDHP_FULL=0 skips them)
py assemble
