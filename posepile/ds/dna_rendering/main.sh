#!/usr/bin/env bash
# DNA-Rendering: W. Cheng, R. Chen, S. Fan, W. Yin, K. Chen, Z. Cai, J. Wang, Y. Gao, Z. Yu, Z. Lin, D. Ren, L. Yang,
# Z. Liu, C. C. Loy, C. Qian, W. Wu, D. Lin, B. Dai, K.-Y. Lin, "DNA-Rendering: A Diverse Neural Actor Repository
# for High-Fidelity Human-centric Rendering", ICCV 2023. https://dna-rendering.github.io/
#
# Apply for access on https://dna-rendering.github.io/ (OpenXDLab; licence) and download the parts into
# $DATA_ROOT/dna_rendering/: dna_rendering_part<k>_main/<seq>.smc and dna_rendering_part<k>_annotations/
# <seq>_annots.smc (SMC = HDF5; they are read in place with h5py, nothing is extracted). The fits need the SMPL-X
# models SMPLX_MALE.npz, SMPLX_FEMALE.npz (https://smpl-x.is.tue.mpg.de/, registration) in
# $DATA_ROOT/body_models/smplx/. Needs the h5py package. Every step is resumable.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
py() { python -m posepile.ds.dna_rendering.main "$@"; }

# 1. Crops of the frames selected per camera (100 mm on the camera-frame SMPL-X joints, buffer 200) x 60 cameras,
#    JPEG bytes and masks read from the SMC files; box = the released mask's box
py crop

# 2. The dataset for get_dataset('dna_rendering') (131 keypoints + SMPL-X parameters; plausibility-filtered)
py assemble
