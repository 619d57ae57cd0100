#!/usr/bin/env bash
# CMU Panoptic Studio: H. Joo et al., "Panoptic Studio: A Massively Multiview System for Social Interaction
# Capture", TPAMI 2017. http://domedb.perception.cs.cmu.edu/
# Download each sequence of posepile/ds/panoptic/sequences.txt with the official toolbox
# (panoptic-toolbox: ./scripts/getData.sh <seq> 0 31, then extract hdPose3d_stage1_coco19.tar) into
# $DATA_ROOT/panoptic/<seq>/.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/panoptic"
py() { python -m posepile.ds.panoptic.main "$@"; }

# 1. Extract the 3D pose archives safely (skipped when done)
for sequence_dir in "$root"/*/; do
  extract_archives "$sequence_dir" "$sequence_dir" hdPose3d_stage1_coco19.tar
done

# 2. Adaptive selection per person (100 mm)
py select-frames

# 3. One pass per HD video (body3DScene index = HD frame index): crops of every selected person with >= 6
#    joints in view; with POSEPILE_DETECTOR set, detections are associated with the people (Hungarian,
#    IoU > 0.1, detection area < 2x the joint box). No full frames are written. SKIP_BROKEN=1 builds the
#    rest when a video is broken (listed).
py video $([[ "${SKIP_BROKEN:-0}" == 1 ]] && echo --skip-broken)

# 4. The dataset for get_dataset('panoptic')
py assemble
