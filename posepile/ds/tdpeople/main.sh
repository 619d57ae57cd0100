#!/usr/bin/env bash
# 3DPeople: A. Pumarola, J. Sanchez-Riera, G. P. T. Choi, A. Sanfeliu, F. Moreno-Noguer, "3DPeople: Modeling
# the Geometry of Dressed Humans", ICCV 2019. https://cv.iri.upc-csic.es/
# Download needs registration (a request form on the project page; links by e-mail). Put the archives of the
# rgb, segmentation_clothes and skeleton modalities into $DATA_ROOT/tdpeople/archives/; they extract to
# $DATA_ROOT/tdpeople/{rgb,segmentation_clothes,skeleton}/<person>/<sequence>/camera<NN>/<frame>.{jpg,png,txt}
# (already extracted folders there are used as they are).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/tdpeople"
py() { python -m posepile.ds.tdpeople.main "$@"; }

# 1. Extract the archives safely (skipped when done)
extract_archives "$root/archives" "$root" '*.tar.gz' '*.tgz' '*.tar' '*.zip'

# 2. Per camera folder: adaptive frame selection (a joint moved >= 100 mm), camera estimated from the 2D-3D
#    joints with fixed intrinsics (f = 700 px, c = (320, 240)), masks from segmentation_clothes (not grey 153)
py prepare

# 3. Crops (box = mask box)
py crop

# 4. The dataset for get_dataset('tdpeople')
py assemble
