#!/usr/bin/env bash
# COCO keypoints: T.-Y. Lin et al., "Microsoft COCO: Common Objects in Context", ECCV 2014.
# https://cocodataset.org/#download  (annotations CC BY 4.0; images under their Flickr terms)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/coco"
mkdir -p "$root"

# 1. Download (no registration) and extract safely; already present files are kept
if [[ "${POSEPILE_DOWNLOAD:-0}" == 1 ]]; then
  for name in train2017 val2017 annotations_trainval2017; do
    url="http://images.cocodataset.org/$([[ $name == annotations* ]] && echo annotations || echo zips)/$name.zip"
    sha_var="COCO_SHA256_${name}"
    download_verified "$url" "${!sha_var:?set $sha_var to the archive SHA-256 you trust}" "$root/$name.zip"
    extract_safely "$root/$name.zip" "$root"
  done
fi

# 2. Crops of every non-crowd person with labelled keypoints (annotation box, masks from the polygons)
python -m posepile.ds.coco.main crop

# 3. The datasets coco (everyone) and coco_single (IoU with every other box < 0.1) for get_dataset()
python -m posepile.ds.coco.main assemble
