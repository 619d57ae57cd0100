#!/usr/bin/env bash
# GeneBody: W. Cheng, S. Xu, J. Piao, C. Qian, W. Wu, K.-Y. Lin, H. Li, "Generalizable Neural Performer: Learning
# Robust Radiance Fields for Human Novel View Synthesis", arXiv:2204.11798, 2022. https://generalizable-neural-performer.github.io/genebody.html
#
# Registration: fill in the GeneBody release agreement (linked from the page above); the download link is sent by
# e-mail. Download GeneBody-Train40 with the official tool (generalizable-neural-performer/gnr,
# genebody/download_tool.py) and place (or extract) it as $DATA_ROOT/genebody/GeneBody-Train40/ (genebody_split.npy
# and one folder per subject with annots.npy, image/, mask/, param/). The SMPL-X models (https://smpl-x.is.tue.mpg.de/,
# registration) go to $DATA_ROOT/body_models/smplx/ (SMPLX_{MALE,FEMALE}.npz: the hand mean and the joints for the
# frame selection). Every step is resumable.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/genebody"
py() { python -m posepile.ds.genebody.main "$@"; }

# 1. Extract a downloaded archive of the release, if one was downloaded into archives/ (safe, once)
if [[ -d "$root/archives" ]]; then extract_archives "$root/archives" "$root" '*.tar.gz'; fi

# 2. Crops of the selected frames (100 mm on the 55 scaled SMPL-X joints, per subject) x views, box and mask from
#    the shipped masks
py crop

# 3. The dataset for get_dataset('genebody') (SMPL-X with its scale, world frame; parametric only)
py assemble
