#!/usr/bin/env bash
# 3DOH50K: T. Zhang, B. Huang, Y. Wang, "Object-Occluded Human Shape and Pose Estimation from a Single
# Color Image", CVPR 2020. https://www.yangangwang.com/papers/ZHANG-OOH-2020-03.html
# Download (licence form) 3DOH50K trainset and testset archives into $DATA_ROOT/tdoh/archives/.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/tdoh"

# 1. Extract the archives safely (skipped when done)
extract_archives "$root/archives" "$root" '*.zip' '*.tar.gz'

# 2. Crops (shipped boxes; joints in mm by the x1000/7 rule, camera frame)
python -m posepile.ds.tdoh.main crop

# 3. The dataset for get_dataset('tdoh')
python -m posepile.ds.tdoh.main assemble
