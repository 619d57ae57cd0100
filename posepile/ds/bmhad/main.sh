#!/usr/bin/env bash
# Berkeley MHAD: F. Ofli, R. Chaudhry, G. Kurillo, R. Vidal, R. Bajcsy, "Berkeley MHAD: A Comprehensive
# Multimodal Human Action Database", IEEE Workshop on Applications of Computer Vision (WACV), 2013.
# https://tele-immersion.citris-uc.org/berkeley_mhad
# Download (request access on the website, then download manually) the camera (Bayer PGM), Kinect (colour
# PPM), mocap (OpticalData C3D) and calibration archives into $DATA_ROOT/bmhad/archives/. They extract to
#   $DATA_ROOT/bmhad/{Camera,Kinect,Mocap/OpticalData,Calibration}/ (layout: posepile/ds/bmhad/main.py).
# SKIP_BROKEN=1: build the rest when a frame is missing or corrupt (listed).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
py() { python -m posepile.ds.bmhad.main "$@"; }
root="$DATA_ROOT/bmhad"

# 1. Extract the archives (once; skipped when done)
if [[ -d "$root/archives" ]]; then extract_archives "$root/archives" "$root"; fi

# 2. Frame selection per take and cluster on the mocap samples the correspondence files assign to the frames
#    (100 mm, buffer = the whole take); takes missing upstream are skipped with a logged reason
py select

# 3. The selected frames decoded (Bayer 'GB' mosaic demosaiced, Kinect PPM) to JPEG q92
py frames

# 4. Crops around the projected markers' box x1.05
py crop

# 5. The dataset (all TRAIN) for get_dataset('bmhad')
py assemble
