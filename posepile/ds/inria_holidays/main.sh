#!/usr/bin/env bash
# INRIA Holidays backgrounds (background augmentation): H. Jegou, M. Douze, C. Schmid, "Hamming Embedding and
# Weak Geometric Consistency for Large Scale Image Search", ECCV 2008.
# https://lear.inrialpes.fr/people/jegou/data.php#holidays  (jpg1.tar.gz + jpg2.tar.gz: 1,491 photos)
# Place or download both archives into $DATA_ROOT/inria_holidays/ (POSEPILE_DOWNLOAD=1 with
# INRIA_HOLIDAYS_SHA256_jpg1 / _jpg2 set downloads them); they extract to jpg/<id>.jpg.
# Person detection uses $POSEPILE_DETECTOR (see posepile/preproc/detection.py); HOG when unset.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/inria_holidays"

# 1. Download (optional) and extract safely
for name in jpg1 jpg2; do
  if [[ "${POSEPILE_DOWNLOAD:-0}" == 1 ]]; then
    mkdir -p "$root"
    sha_var="INRIA_HOLIDAYS_SHA256_${name}"
    download_verified "ftp://ftp.inrialpes.fr/pub/lear/douze/data/$name.tar.gz" \
      "${!sha_var:?set $sha_var to the archive SHA-256 you trust}" "$root/$name.tar.gz"
  fi
  if [[ -f "$root/$name.tar.gz" && ! -f "$root/.extracted_$name" ]]; then
    extract_safely "$root/$name.tar.gz" "$root"
    touch "$root/.extracted_$name"
  fi
done

# 2. EXIF orientation, centre square crop, 512 x 512 -> jpg_small/
python -m posepile.ds.inria_holidays.main prepare

# 3. People in the backgrounds (the configured detector) -> posepile_work/detections.pkl
python -m posepile.ds.inria_holidays.main detect

# 4. The person-free ones -> non_person_images.txt
python -m posepile.ds.inria_holidays.main select
