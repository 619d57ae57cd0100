#!/usr/bin/env bash
# AGORA: P. Patel, C.-H. P. Huang, J. Tesch, D. T. Hoffmann, S. Tripathi, M. J. Black, "AGORA: Avatars in
# Geography Optimized for Regression Analysis", CVPR 2021. https://agora.is.tue.mpg.de/
# Register on the website (licence), then download into $DATA_ROOT/agora/archives/:
#   train_images_3840x2160_{0..9}.zip, validation_images_3840x2160.zip, train_masks_3840x2160.zip,
#   validation_masks_3840x2160.zip, train_SMPL.zip, train_SMPLX.zip, validation_SMPL.zip, validation_SMPLX.zip
# and AirSim's colour table (the person colours of the masks) as $DATA_ROOT/agora/seg_rgbs.txt:
#   https://raw.githubusercontent.com/microsoft/AirSim/a7e467ebca707bba5b446836331075e90e3e3ab8/docs/seg_rgbs.txt
# They extract to $DATA_ROOT/agora/{train_<k>,validation,train,SMPL,SMPLX}/ (validation_SMPL*.zip: move the
# files of validation_SMPL/SMPL/ into SMPL/ and of validation_SMPLX/SMPLX/ into SMPLX/ if they land there).
# The per-person SMPL-X fits (`parameters`): the ground-truth fit archive(s) of the same download page whose files
# the SMPL-X tables' gt_path_smplx column names (smplx_gt/<group>/<scan>/<scan>.obj; the recipe reads the .pkl next
# to it) also go into archives/ and extract to $DATA_ROOT/agora/smplx_gt/. The SMPL-X model files (hand means, and a
# check of the fits against the tables) go into $DATA_ROOT/body_models/smplx/ (SMPLX_{FEMALE,MALE,NEUTRAL}.npz from
# https://smpl-x.is.tue.mpg.de).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/agora"
py() { python -m posepile.ds.agora.main "$@"; }

# 1. Extract the archives safely (skipped when done)
extract_archives "$root/archives" "$root" '*.zip'
for kind in SMPL SMPLX; do
  if [[ -d "$root/validation_$kind/$kind" ]]; then
    mkdir -p "$root/$kind"
    for f in "$root/validation_$kind/$kind"/*; do
      [[ -e "$f" ]] || continue
      mv -f "$f" "$root/$kind/"
    done
  fi
done

# 2. Tables (restricted unpickling, no pandas), colour-coded masks -> modal/amodal masks; people invalid or more
#    than 75 % occluded skipped; box = modal-mask box; joints (24 SMPL + 42 SMPL-X) camera frame m -> world mm
#    SMPL-X fits (restricted unpickling) -> world-frame parameters, checked against the table joints
py prepare

# 3. Optional person detection (the original: YOLOv4, POSEPILE_DETECTOR=darknet:yolov4.cfg,yolov4.weights); then
#    Hungarian match at IoU >= 0.5: the detection box, or the mask box if unmatched (dropped if > 50 % occluded)
if [[ -n "${POSEPILE_DETECTOR:-}" ]]; then py detect --detector "$POSEPILE_DETECTOR"; fi

# 4. Crops (boxes with a side < 100 px dropped; mask = all people)
py crop

# 5. The dataset (train_0-9 TRAIN, validation_0-9 VALIDATION) for get_dataset('agora'); `parameters` = the SMPL-X
#    fit in the world frame
py assemble
