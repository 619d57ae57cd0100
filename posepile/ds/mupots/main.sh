#!/usr/bin/env bash
# MuPoTS-3D: D. Mehta et al., "Single-Shot Multi-Person 3D Pose Estimation From Monocular RGB", 3DV 2018.
# https://vcai.mpi-inf.mpg.de/projects/SingleShotMultiPerson/  (licence form: download
# MultiPersonTestSet.zip by hand into $DATA_ROOT/mupots/archives/)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/mupots"
py() { python -m posepile.ds.mupots.main "$@"; }

# 1. Extract the test set safely (skipped when done)
extract_archives "$root/archives" "$root" '*.zip'

# 2. Intrinsics per sequence (not shipped): least squares from annot2/annot3, leaving out the joints whose
#    2D annotation disagrees with the 3D one (the spine of TS1/TS2); RMS residual logged, > 5 px is an error
py calibrate

# 3. Crops of every annotated person in every frame
py crop

# 4. The dataset (TEST split) for get_dataset('mupots')
py assemble
