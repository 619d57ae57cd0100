#!/usr/bin/env bash
# Ego-Exo4D: K. Grauman, A. Westbury, L. Torresani, K. Kitani, J. Malik et al., "Ego-Exo4D: Understanding Skilled
# Human Activity from First- and Third-Person Perspectives", CVPR 2024 (arXiv:2311.18259).
# https://ego-exo4d-data.org ; docs https://docs.ego-exo4d-data.org ; code https://github.com/facebookresearch/Ego4d
#
# Registration: sign the Ego-Exo4D license agreement at https://ego4ddataset.com/egoexo-license ; the approval
# e-mails AWS credentials for the `egoexo` downloader (pip install ego4d; aws configure). Then download into
# $DATA_ROOT/egoexo4d:
#   egoexo -o "$DATA_ROOT/egoexo4d" --parts metadata annotations --benchmarks egopose
#   egoexo -o "$DATA_ROOT/egoexo4d" --parts takes take_trajectory --uids <the annotated take uids>
# so that takes.json, annotations/ego_pose/{train,val}/{body,hand}/automatic/<take_uid>.json,
# annotations/ego_pose/{train,val}/camera_pose/<take_uid>.json and takes/<take_name>/{frame_aligned_videos/*.mp4,
# trajectory/gopro_calibs.csv, trajectory/online_calibration.jsonl} exist (full-resolution takes; the original
# took every 5th annotated take). Every step is resumable.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
py() { python -m posepile.ds.egoexo4d.main "$@"; }

# 1. The download above (needs the license; not scripted here).

# 2. One pass per take and camera video (GoPro exo views and the Aria ego view): the automatic (pseudo-GT) body and
#    hand joints of single-person frames (61 = 17 COCO + neck + pelvis + 2 x 21 hand, m -> mm), per view the joints
#    in front of the camera, in the lens' valid field and on the frame (>= 6), the sampler (100 mm, buffer 200) on
#    the camera-frame joints, pinhole crops through the fisheye lenses (GoPro KB3, Aria Fisheye624; ego joints out
#    of the field NaN, ego crops inside the in-front field) around the projected joints x1.05, or with
#    $POSEPILE_DETECTOR the Hungarian-matched detection (IoU >= 0.2, holding >= 6 of the valid projected joints;
#    else the person is dropped). The test split is not used. SKIP_BROKEN=1 builds the rest when a video is broken
#    (listed).
options=()
if [[ "${SKIP_BROKEN:-0}" == 1 ]]; then options+=(--skip-broken); fi
py video ${options[@]+"${options[@]}"}

# 3. The dataset for get_dataset('egoexo4d') (train and val annotations)
py assemble
