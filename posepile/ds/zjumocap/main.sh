#!/usr/bin/env bash
# ZJU-MoCap: S. Peng, Y. Zhang, Y. Xu, Q. Wang, Q. Shuai, H. Bao, X. Zhou, "Neural Body: Implicit Neural
# Representations with Structured Latent Codes for Novel View Synthesis of Dynamic Humans", CVPR 2021.
# https://github.com/zju3dv/neuralbody/blob/master/INSTALL.md#zju-mocap-dataset
#
# Registration: fill in the ZJU-MoCap agreement form linked there; the download link is sent by e-mail. Put the
# downloaded archives (CoreView_*.tar.gz) into $DATA_ROOT/zjumocap/archives/ (or the extracted CoreView_* folders
# into $DATA_ROOT/zjumocap/). The neutral SMPL model (https://smpl.is.tue.mpg.de/ or SMPLify's
# basicModel_neutral_lbs_10_207_0_v1.0.0.pkl, registration) goes to $DATA_ROOT/body_models/smpl/ (the rest pelvis for
# folding Rh/Th into the root, and the joints for the frame selection). Every step is resumable.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/zjumocap"
py() { python -m posepile.ds.zjumocap.main "$@"; }

# 1. Extract the sequences (archives/CoreView_*.tar.gz -> CoreView_*/), safely, once
extract_archives "$root/archives" "$root" 'CoreView_*.tar.gz' 'CoreView_*.tar' 'CoreView_*.zip'

# 2. Crops of the selected frames (100 mm on the 24 SMPL joints, per sequence) x cameras, box and mask from the
#    shipped masks (mask/ and mask_cihp/ united)
py crop

# 3. The dataset for get_dataset('zjumocap') (neutral SMPL, Rh/Th folded into the root, world frame)
py assemble
