#!/usr/bin/env bash
# MPI-INF-3DHP: D. Mehta et al., "Monocular 3D Human Pose Estimation In The Wild Using Improved CNN
# Supervision", 3DV 2017. https://vcai.mpi-inf.mpg.de/3dhp-dataset/
# Download with the official script after accepting the licence (edit conf.ig: ready_to_download=1,
# subjects and cameras), then put the test set (mpi_inf_3dhp_test_set.zip) in $DATA_ROOT/tdhp/archives/:
#   (cd "$DATA_ROOT/tdhp" && bash get_dataset.sh)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/tdhp"
py() { python -m posepile.ds.tdhp.main "$@"; }

# 1. Extract the test set archive safely (skipped when done)
extract_archives "$root/archives" "$root" '*.zip'

# 2. Training frames: every 5th, then adaptive 100 mm
py select-frames

# 3. Training crops, one pass per video (imageSequence/video_N.avi of the 8 training cameras; frame i =
#    annotation row i); no full frames are written. With a person detector boxes follow 3DHP's union rule;
#    the original's YOLOv4: POSEPILE_DETECTOR=darknet:yolov4.cfg,yolov4.weights. SKIP_BROKEN=1 builds the
#    rest when a video is broken (listed).
py video $([[ "${SKIP_BROKEN:-0}" == 1 ]] && echo --skip-broken)

# 4. Test set crops from its images (test cameras from the .calib files). TDHP_COLOR_CORRECT=1 applies the
#    original's fix of the green-tinted test images.
py crop-test $([[ "${TDHP_COLOR_CORRECT:-0}" == 1 ]] && echo --color-correct-test)

# 5. The dataset (train + test as TEST) for get_dataset('tdhp')
py assemble
