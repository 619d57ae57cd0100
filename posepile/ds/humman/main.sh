#!/usr/bin/env bash
# HuMMan: Z. Cai, D. Ren, A. Zeng, Z. Lin, T. Yu, W. Wang, X. Fan, Y. Gao, Y. Yu, L. Pan, F. Hong, M. Zhang,
# C. C. Loy, L. Yang, Z. Liu, "HuMMan: Multi-Modal 4D Human Dataset for Versatile Sensing and Modeling", ECCV 2022.
# https://caizhongang.github.io/projects/HuMMan/
#
# Registration: accept the HuMMan licence on OpenXLab (https://openxlab.org.cn/datasets/OpenXDLab/HuMMan); the
# toolbox (caizhongang/humman_toolbox, humman_recon/README.md) lists the files of release v1.0, reconstruction
# subset. Download recon_kinect_color_part_{1,2,3}.zip, recon_kinect_mask.zip, recon_smpl_params.zip and
# recon_cameras.zip into $DATA_ROOT/humman/, e.g.
#   openxlab dataset download --dataset-repo OpenXDLab/HuMMan --source-path /humman_release_v1.0_recon \
#     --target-path "$DATA_ROOT/humman"   (then move the zips into $DATA_ROOT/humman/)
# They are read in place: nothing is extracted. The neutral SMPL model (https://smpl.is.tue.mpg.de/, registration)
# goes to $DATA_ROOT/body_models/smpl/ (the joints for the frame selection). Every step is resumable.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
py() { python -m posepile.ds.humman.main "$@"; }

# 1. (Download, see above.) 2. Crops of the selected frames (100 mm on the 24 SMPL joints, per sequence) x Kinects,
#    cropped straight from the colour PNGs inside the zips, box and mask from the matting masks
py crop

# 3. The dataset for get_dataset('humman') (neutral SMPL, world frame; parametric only)
py assemble
