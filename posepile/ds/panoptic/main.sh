#!/usr/bin/env bash
# CMU Panoptic Studio: H. Joo et al., "Panoptic Studio: A Massively Multiview System for Social Interaction
# Capture", TPAMI 2017. http://domedb.perception.cs.cmu.edu/
# Download the sequences of posepile/ds/panoptic/sequences.txt (the original's 66) that you want with the
# official toolbox (panoptic-toolbox: ./scripts/getData.sh <seq> 0 31) into $DATA_ROOT/panoptic/<seq>/.
# Listed sequences that are absent and sequences on disk that are not listed are logged (and shown by
# `posepile status`); only listed ones are built.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/panoptic"
py() { python -m posepile.ds.panoptic.main "$@"; }

# 1. Extract the 3D pose archives safely (skipped when done)
for sequence_dir in "$root"/*/; do
  extract_archives "$sequence_dir" "$sequence_dir" hdPose3d_stage1_coco19.tar
done

# 2. The original's selection: per frame, people with >= 6 valid joints matched to the remembered poses
#    (Hungarian, mean joint distance); kept when >= 3 joints moved >= 100 mm, or unmatched. Poses are read
#    from hdPose3d_stage1_coco19/ and hdPose3d_stage1_coco19/hd/. A sequence without its calibration (or with
#    a bad pose file) fails the build; SKIP_BROKEN=1 builds the others and lists the skipped ones.
py select-frames

# 3. One pass per HD video (body3DScene index = HD frame index): crops of every selected person with >= 6
#    joints in view, box = all valid joints x 1.25; with POSEPILE_DETECTOR set, detections are associated
#    with the people (Hungarian, IoU > 0.1, detection area < 2x the joint box; the detection box is used,
#    unmatched people are dropped). No full frames are written. SKIP_BROKEN=1 builds the
#    rest when a video is broken (listed).
py video $([[ "${SKIP_BROKEN:-0}" == 1 ]] && echo --skip-broken)

# 4. The dataset for get_dataset('panoptic') (19 joints, the file's COCO19 order with pelv last)
py assemble
