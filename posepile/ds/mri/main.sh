#!/usr/bin/env bash
# mRI: S. An, Y. Li, U. Ogras, "mRI: Multi-modal 3D Human Pose Estimation Dataset using mmWave, RGB-D, and
# Inertial Sensors", NeurIPS 2022 Datasets and Benchmarks. https://sizhean.github.io/mri ;
# https://github.com/SizheAn/mRI ; data: https://doi.org/10.5061/dryad.9ghx3ffpp (and https://zenodo.org/records/10064764)
#
# Registration: none (public). Download the label files (label_dict/subject<N>_all_labels.cpl) and the blurred RGB
# videos (.../blurred_subject<N>_color0.mp4) from the Dryad / Zenodo records into $DATA_ROOT/mri/archives/ (or
# extracted anywhere under $DATA_ROOT/mri/). Every step is resumable.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/mri"
py() { python -m posepile.ds.mri.main "$@"; }

# 1. Extract downloaded archives (if any) safely, once
extract_archives "$root/archives" "$root" '*.zip' '*.tar.gz' '*.tgz' '*.tar'

# 2. One pass per subject's colour-0 video, frames un-mirrored: the selected frames (100 mm, buffer 500, on the
#    refined COCO-17 labels), crops around the projected joints x1.15, or with $POSEPILE_DETECTOR the detection of
#    best IoU >= 0.5 (none: dropped). SKIP_BROKEN=1 builds the rest when a video is broken (listed).
options=()
if [[ "${SKIP_BROKEN:-0}" == 1 ]]; then options+=(--skip-broken); fi
if [[ "${POSEPILE_SEGMENT:-0}" == 1 ]]; then options+=(--segmenter "${POSEPILE_SEGMENTER:-grabcut}"); fi
py video ${options[@]+"${options[@]}"}

# 3. The dataset for get_dataset('mri') (all subjects, training)
py assemble
