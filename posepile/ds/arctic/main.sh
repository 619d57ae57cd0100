#!/usr/bin/env bash
# ARCTIC: Z. Fan, O. Taheri, D. Tzionas, M. Kocabas, M. Kaufmann, M. J. Black, O. Hilliges, "ARCTIC: A Dataset
# for Dexterous Bimanual Hand-Object Manipulation", CVPR 2023. https://arctic.is.tue.mpg.de/
# (toolkit: https://github.com/zc-alexfan/arctic)
#
# Register on https://arctic.is.tue.mpg.de/ (licence) and download with the toolkit's scripts
# (bash scripts_data/download_data.sh): the annotations (meta.zip, raw_seqs.zip, splits_json.zip) into
# $DATA_ROOT/arctic/archives/ and the full-resolution image zips as $DATA_ROOT/arctic/images_zips/<subject>/<seq>.zip
# (kept zipped: the recipe reads the JPEGs in place). The fits need the SMPL-X models SMPLX_MALE.npz and
# SMPLX_FEMALE.npz (https://smpl-x.is.tue.mpg.de/, registration) in $DATA_ROOT/body_models/smplx/.
# Every step is resumable.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/arctic"
py() { python -m posepile.ds.arctic.main "$@"; }

# 1. Extract the annotation archives safely, once (meta/, raw_seqs/, splits_json/)
extract_archives "$root/archives" "$root" 'meta.zip' 'raw_seqs.zip' 'splits_json.zip'

# 2. Crops of protocol p1's train and val sequences: frames selected per view (100 mm on the 55 SMPL-X joints,
#    buffer 100) x the 8 allocentric views, box = projected joints x1.1
py crop

# 3. A person mask per crop (the original segmented every crop): POSEPILE_SEGMENTER, default grabcut
py segment --segmenter "${POSEPILE_SEGMENTER:-grabcut}"

# 4. The dataset for get_dataset('arctic') (parametric-only: SMPL-X, 16 betas of the subject's rest mesh)
py assemble
