#!/usr/bin/env bash
# SLOPER4D: Y. Dai, Y. Lin, X. Lin, C. Wen, L. Xu, H. Yi, S. Shen, Y. Ma, C. Wang, "SLOPER4D: A Scene-Aware Dataset
# for Global 4D Human Pose Estimation in Urban Environments", CVPR 2023.
# http://www.lidarhumanmotion.net/sloper4d/ ; toolkit https://github.com/climbingdaily/SLOPER4D
#
# Registration: request the data on the project page (http://www.lidarhumanmotion.net/sloper4d/, CC BY-NC-SA 4.0
# licence agreement); put the downloaded sequence archives into $DATA_ROOT/sloper4d/archives/ (or extract them so
# that $DATA_ROOT/sloper4d/<seq>/<seq>_labels.pkl and <seq>/rgb_data/<seq>.MP4 exist). The SMPL model files
# (https://smpl.is.tue.mpg.de, registration) go to $DATA_ROOT/body_models/smpl/ (the frame selection and the
# joints-in-box check run on its joints). Every step is resumable.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/sloper4d"
py() { python -m posepile.ds.sloper4d.main "$@"; }

# 1. Extract downloaded sequence archives (if any) safely, once
extract_archives "$root/archives" "$root" '*.zip' '*.tar.gz' '*.tgz' '*.tar'

# 2. One pass per sequence MP4: label row i is frame round(t_i x fps) (t from its file name); frames with the
#    whole body in front of the camera and >= 6 joints in the provided box, then the sampler (100 mm, buffer 100,
#    camera frame); crops in the provided box through the distorted camera (extreme perspective).
#    SKIP_BROKEN=1 builds the rest when a video is broken (listed).
options=()
if [[ "${SKIP_BROKEN:-0}" == 1 ]]; then options+=(--skip-broken); fi
py video ${options[@]+"${options[@]}"}

# 3. The dataset for get_dataset('sloper4d') (parametric: SMPL in the world frame, z up; training)
py assemble
