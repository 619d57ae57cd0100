#!/usr/bin/env bash
# EgoBody: S. Zhang, Q. Ma, Y. Zhang, Z. Qian, T. Kwon, M. Pollefeys, F. Bogo, S. Tang, "EgoBody: Human Body Shape
# and Motion of Interacting People from Head-Mounted Devices", ECCV 2022. https://egobody.inf.ethz.ch ;
# https://sanweiliti.github.io/egobody/egobody.html ; toolkit https://github.com/sanweiliti/EgoBody
#
# Registration: register and sign the licence on https://egobody.inf.ethz.ch, then download into $DATA_ROOT/egobody/:
# data_info_release.csv, data_splits.csv, kinect_color.zip and egocentric_color.zip (kept zipped: the images are read
# in place), and the archives of calibrations/, kinect_cam_params/, smplx_interactee_<split>/ and
# smplx_camera_wearer_<split>/ into $DATA_ROOT/egobody/archives/. The SMPL-X model files (SMPLX_MALE.npz,
# SMPLX_FEMALE.npz from https://smpl-x.is.tue.mpg.de, registration) go to $DATA_ROOT/body_models/smplx/. Every step
# is resumable.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/egobody"
py() { python -m posepile.ds.egobody.main "$@"; }

# 1. Extract the calibration, camera-parameter and fit archives safely, once (the image zips stay zipped)
extract_archives "$root/archives" "$root" '*.zip' '*.tar.gz' '*.tgz' '*.tar'

# 2. Optional person detections in the images of the selected people ($POSEPILE_DETECTOR; the original used
#    YOLOv4, darknet:CFG,WEIGHTS), read in place from the zips. Without one the box is the projected joints x1.05.
if [[ -n "${POSEPILE_DETECTOR:-}" ]]; then
  py detect --detector "$POSEPILE_DETECTOR"
fi

# 3. Crops read in place from kinect_color.zip / egocentric_color.zip: the Kinect chain (sub -> master -> scene) and
#    the per-frame HoloLens PV poses give each view's camera; both people's SMPL-X are moved from the master Kinect
#    frame into the scene frame; per person and view the frames with all joints in front and >= 6 in the image,
#    then the sampler (100 mm, buffer 200, camera frame); box = projected joints x1.05, or with detections the
#    Hungarian-matched one (IoU >= 0.2) holding >= 6 of the projected joints (unmatched people dropped).
#    SKIP_BROKEN=1 builds the rest when an image is broken (listed).
options=()
if [[ "${SKIP_BROKEN:-0}" == 1 ]]; then options+=(--skip-broken); fi
py crop ${options[@]+"${options[@]}"}

# 4. The dataset for get_dataset('egobody') (parametric: SMPL-X in the scene frame; train / val / test of
#    data_splits.csv)
py assemble
