#!/usr/bin/env bash
# JTA (Joint Track Auto): M. Fabbri, F. Lanzi, S. Calderara, A. Palazzi, R. Vezzani, R. Cucchiara, "Learning to
# Detect and Track Visible and Occluded Body Joints in a Virtual World", ECCV 2018.
# https://github.com/fabbrimatteo/JTA-Dataset (download form: https://aimagelab.ing.unimore.it/jta)
# Request the dataset through the form (non-commercial research licence), then put the downloaded archive
# (e.g. jta_dataset.zip, unpacking to annotations/ and videos/ with train/val/test folders) into
# $DATA_ROOT/jta/archives/.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/jta"
py() { python -m posepile.ds.jta.main "$@"; }

# 1. Extract the archive safely (skipped when done)
extract_archives "$root/archives" "$root" '*.zip'

# 2. Optional person detection in the frames with a visible person (the original's YOLOv4:
#    POSEPILE_DETECTOR=darknet:yolov4.cfg,yolov4.weights), one file per sequence
if [[ -n "${POSEPILE_DETECTOR:-}" ]]; then py detect --detector "$POSEPILE_DETECTOR"; fi

# 3. Crops, one pass per video (frame i = annotation frame i+1). With a detector, as the original: per frame the
#    people are Hungarian-matched to the detections (IoU > 0.1, det area < 2x the visible-joint box, det longer
#    side > 100 px), then the matched people with >= 5 visible joints go through adaptive 100 mm per person id;
#    the detection is the box. Without one: people with >= 5 visible joints and a visible-joint box whose longer
#    side exceeds 100 px, then adaptive 100 mm. SKIP_BROKEN=1 builds the rest when a video is broken (listed).
py video $([[ "${SKIP_BROKEN:-0}" == 1 ]] && echo --skip-broken)

# 4. The dataset (train / val / test from the folder names) for get_dataset('jta')
py assemble
