#!/usr/bin/env bash
# MPII Human Pose: M. Andriluka, L. Pishchulin, P. Gehler, B. Schiele, "2D Human Pose Estimation: New
# Benchmark and State of the Art Analysis", CVPR 2014. http://human-pose.mpi-inf.mpg.de/
# Download (after accepting the licence) mpii_human_pose_v1.tar.gz and mpii_human_pose_v1_u12_2.zip into
# $DATA_ROOT/mpii/archives/.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/mpii"

# 1. Extract the archives safely (skipped when done); the annotation .mat goes to $root
extract_archives "$root/archives" "$root" '*.tar.gz' '*.zip'
if [[ -f "$root/mpii_human_pose_v1_u12_2/mpii_human_pose_v1_u12_1.mat" && ! -f "$root/mpii_human_pose_v1_u12_1.mat" ]]; then
  cp "$root/mpii_human_pose_v1_u12_2/mpii_human_pose_v1_u12_1.mat" "$root/"
fi

# 2. Crops of every annotated training person (box: objpos, side 200 * scale px)
python -m posepile.ds.mpii.main crop

# 3. The dataset for get_dataset('mpii')
python -m posepile.ds.mpii.main assemble
