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

# 3. Frames of the 8 training cameras from imageSequence/video_N.avi
py extract-frames

# 4. Optional person detection (boxes then follow 3DHP's union rule). The original's YOLOv4:
#    POSEPILE_DETECTOR=darknet:yolov4.cfg,yolov4.weights
if [[ -n "${POSEPILE_DETECTOR:-}" ]]; then py detect --detector "$POSEPILE_DETECTOR"; fi

# 5. Crops (training cameras from camera.calibration; test cameras from the .calib files). Add
#    --color-correct-test for the original's fix of the green-tinted test images.
py crop ${TDHP_COLOR_CORRECT:+--color-correct-test}

# 6. The dataset (train + test as TEST) for get_dataset('tdhp')
py assemble
