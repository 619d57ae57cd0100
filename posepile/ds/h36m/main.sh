#!/usr/bin/env bash
# Human3.6M: C. Ionescu, D. Papava, V. Olaru, C. Sminchisescu, "Human3.6M: Large Scale Datasets and
# Predictive Methods for 3D Human Sensing in Natural Environments", TPAMI 2014.
# http://vision.imar.ro/human36m/
#
# Download needs registration and a login on the official site, so it is manual: log in, then from
# "Download" get per subject (S1, S5, S6, S7, S8, S9, S11) "Videos" and "Poses > D3 Positions", and the
# code package for metadata.xml. Put the archives in $DATA_ROOT/h36m/archives/ (names as downloaded:
# Videos_S1.tgz, Poses_D3_Positions_S1.tgz, ...) and metadata.xml in $DATA_ROOT/h36m/.
# Every step below is resumable; long ones take --shard i/n (or run as a Slurm array).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/h36m"
py() { python -m posepile.ds.h36m.main "$@"; }

# 1. Extract the downloaded archives (refusing unsafe members); skipped when already extracted
extract_archives "$root/archives" "$root" '*.tgz' '*.tar.gz'

# 2. Frame selection on the mocap: train every 5th frame + adaptive 100 mm, test every 64th
py select-frames

# 3. One pass per video (frame index = CDF row): perspective-correct crops around the projected joints of the
#    selected frames, straight from the decoded video (H36M lens model undone); person masks on the crops
#    with POSEPILE_SEGMENT=1. SKIP_BROKEN=1 builds the rest when a video is missing or corrupt (listed).
options=()
if [[ "${SKIP_BROKEN:-0}" == 1 ]]; then options+=(--skip-broken); fi
if [[ "${POSEPILE_SEGMENT:-0}" == 1 ]]; then options+=(--segmenter "${POSEPILE_SEGMENTER:-grabcut}"); fi
py video ${options[@]+"${options[@]}"}

# 4. The datasets h36m (17 joints) and h36m_alljoints (25 joints) for get_dataset()
py assemble
