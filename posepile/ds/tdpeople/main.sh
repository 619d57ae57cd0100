#!/usr/bin/env bash
# 3DPeople: A. Pumarola, J. Sanchez-Riera, G. P. T. Choi, A. Sanfeliu, F. Moreno-Noguer, "3DPeople: Modeling
# the Geometry of Dressed Humans", ICCV 2019. https://cv.iri.upc-csic.es/
# Download needs registration (a request form on the project page; links by e-mail). Put the archives of the
# rgb, segmentation_clothes and skeleton modalities into $DATA_ROOT/tdpeople/archives/; they extract to
#   $DATA_ROOT/tdpeople/rgb/<person>/<action>/<camera>/<outfit-and-background>/<frame>.jpg
#   $DATA_ROOT/tdpeople/{skeleton,segmentation_clothes}/<person>/<action>/<camera>/<frame>.{txt,png}
# (already extracted folders there are used as they are).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/tdpeople"
py() { python -m posepile.ds.tdpeople.main "$@"; }

# 1. Extract the archives safely (skipped when done)
extract_archives "$root/archives" "$root" '*.tar.gz' '*.tgz' '*.tar' '*.zip'

# 2. One adaptive selection over all images in sorted path order (a raw joint moved >= 100 mm), then per image
#    the camera fitted to the 2D-3D joints with fixed intrinsics (f = 700 px, c = (320, 240) px) and the mask
#    from segmentation_clothes (differs from grey 153 by > 10)
py prepare

# 3. Crops (box = mask box)
py crop

# 4. The dataset for get_dataset('tdpeople')
py assemble
