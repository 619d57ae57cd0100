#!/usr/bin/env bash
# MIT Indoor Scenes: A. Quattoni, A. Torralba, "Recognizing Indoor Scenes", CVPR 2009.
# https://web.mit.edu/torralba/www/indoor.html  (indoorCVPR_09.tar, 2.4 GB: 67 categories, 15,620 images)
# Place or download the tar into $DATA_ROOT/indoorscenes/ (POSEPILE_DOWNLOAD=1 with INDOORSCENES_SHA256 set
# downloads it); it extracts to Images/<category>/<name>.jpg. The original only downloads it (a background pool
# NLF does not use).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/indoorscenes"

# 1. Download (optional) and extract safely
if [[ "${POSEPILE_DOWNLOAD:-0}" == 1 ]]; then
  mkdir -p "$root"
  download_verified "http://groups.csail.mit.edu/vision/LabelMe/NewImages/indoorCVPR_09.tar" \
    "${INDOORSCENES_SHA256:?set INDOORSCENES_SHA256 to the archive SHA-256 you trust}" "$root/indoorCVPR_09.tar"
fi
if [[ ! -d "$root/Images" && -f "$root/indoorCVPR_09.tar" ]]; then
  extract_safely "$root/indoorCVPR_09.tar" "$root"
fi

# 2. The readable images -> image_list.txt
python -m posepile.ds.indoorscenes.main list
