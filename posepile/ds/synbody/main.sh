#!/usr/bin/env bash
# SynBody: Z. Yang, Z. Cai, H. Mei, S. Liu, Z. Chen, W. Xiao, Y. Wei, Z. Qing, C. Wei, B. Dai, W. Wu, C. Qian, D. Lin,
# Z. Liu, L. Yang, "SynBody: Synthetic Dataset with Layered Human Models for 3D Human Perception and Modeling",
# ICCV 2023. https://synbody.github.io/ (data: https://huggingface.co/datasets/caizhongang/SynBody)
#
# This recipe builds the HumanNeRF subset (100 sequences x 8 cameras, SMPL refits, masks), the part the original
# PosePile uses (its humannerf_subset.py; NLF's section synbody_humannerf). The main SynBody set has no recipe in
# the original (its main.py is empty) and none here.
# Registration: none (the Hugging Face dataset is public, licence CC BY-NC-SA 4.0). Download the four zips the
# recipe reads (about 47 GB; smplx.zip is not needed) into $DATA_ROOT/synbody/HumanNeRF-subset/, e.g.
#   huggingface-cli download caizhongang/SynBody --repo-type dataset --local-dir "$DATA_ROOT/synbody" \
#     --include 'HumanNeRF-subset/camera_params.zip' 'HumanNeRF-subset/smpl.zip' 'HumanNeRF-subset/mask.zip' \
#     'HumanNeRF-subset/img.zip'
# They are read in place: nothing is extracted. The layout inside the zips is inferred (no SynBody file was
# available to check it): the original's rules (../shared/docs/nlf-era-facts.md §1.1) and an independent user of
# the release; see posepile/ds/synbody/main.py. A member that does not match is a one-line error naming it.
# The gendered SMPL models (https://smpl.is.tue.mpg.de/, registration; SMPL_{MALE,FEMALE,NEUTRAL}.pkl) go to
# $DATA_ROOT/body_models/smpl/ (the joints for the frame selection). Every step is resumable.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
py() { python -m posepile.ds.synbody.main "$@"; }

# 1. (Download, see above.) 2. Crops of the selected frames (100 mm on the 24 SMPL joints, per sequence) x cameras,
#    cropped straight from the JPEGs inside img.zip, box and mask from mask.zip (views without a mask skipped)
py crop

# 3. The dataset for get_dataset('synbody') (gendered SMPL, world frame; parametric only)
py assemble
