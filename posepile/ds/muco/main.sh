#!/usr/bin/env bash
# MuCo-3DHP: D. Mehta, O. Sotnychenko, F. Mueller, W. Xu, S. Sridhar, G. Pons-Moll, C. Theobalt, "Single-Shot
# Multi-Person 3D Pose Estimation From Monocular RGB", 3DV 2018.
# https://vcai.mpi-inf.mpg.de/projects/SingleShotMultiPerson/
# Nothing to download: the composites are made here from the MPI-INF-3DHP training set (which needs its
# licence and download, see posepile/ds/tdhp/main.sh), following the published method.
# Needs: posepile/ds/tdhp/main.sh run first (at least its select-frames and masks steps).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
py() { python -m posepile.ds.muco.main "$@"; }

# 1. Source crops: the tdhp selection's frames (S1-S8, cameras 0-2 and 4-8) with all 28 joints and the FGmasks
#    person masks, cropped straight from the 3DHP videos WITHOUT the 3DHP colour correction of the tdhp
#    training crops (the original's composites are made from the uncorrected frames); resumable per video.
py sources $([[ "${SKIP_BROKEN:-0}" == 1 ]] && echo --skip-broken)

# 2. Composites: 4 people of the same camera from different subjects, layered by depth with their FGmasks (and
#    chairs), and their person crops; fixed seed (byte-identical rebuilds), 500 composites per chunk, resumable;
#    MUCO_COUNT sets the number (default 200000), MUCO_CHUNK_SIZE the chunk size. With POSEPILE_DETECTOR set,
#    boxes come from detections (Hungarian IoU > 0.1, det area < 2x). Shard: --shard i/n or SLURM_ARRAY_TASK_ID.
py composite ${MUCO_COUNT:+--count "$MUCO_COUNT"} ${MUCO_CHUNK_SIZE:+--chunk-size "$MUCO_CHUNK_SIZE"}

# 3. The dataset for get_dataset('muco')
py assemble
