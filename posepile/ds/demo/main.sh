#!/usr/bin/env bash
# PosePile demo: a synthetic 4-camera capture of two walking people (posepile/ds/demo/scene.py), taken from
# its raw release (mp4 videos, calibration JSON, 3D joint tracks in mm) to a finished, evaluated dataset
# with the same stage code as every real dataset. No download, no licence needed.
#
# Each block is one stage; run them one at a time or all at once. Every stage is resumable: rerunning
# skips finished work (interrupt at any point and run again).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
started_at=$(date +%s.%N)
work="$DATA_ROOT/demo/posepile_work"
py() { python -m posepile.ds.demo.main "$@"; }

# 1. The raw release (a real dataset would be downloaded and extracted here, see ../functions.sh)
py generate --seed 0

# 2. Adaptive frame selection on the 3D tracks (keep a training frame when some joint moved >= 100 mm)
py select-frames

# 3. One pass per video, as a 2-shard job (on a cluster: sbatch --array=0-1 with the same command): each
#    camera video is decoded once; in the selected frames people are detected (offline default: OpenCV's
#    HOG; the original's YOLOv4: POSEPILE_DETECTOR=darknet:CFG,WEIGHTS), detections are associated with the
#    people, perspective-correct crops are cut straight from the decoded frame (camera turned to the box,
#    distortion removed, gamma-correct antialiasing) and segmented (offline default: GrabCut seeded by the
#    skeleton). No full frames are written (--keep-frames writes them).
#    Each shard logs to its own file, shown when all have finished (failed shards last), so the last line
#    of a failed run is the failure, never another shard's progress.
n_shards=2
pids=()
mkdir -p "$work"
video_options=(--detector "${POSEPILE_DETECTOR:-hog}" --segmenter "${POSEPILE_SEGMENTER:-grabcut}" --workers 1)
if [[ "${SKIP_BROKEN:-0}" == 1 ]]; then video_options+=(--skip-broken); fi
for i in $(seq 0 $((n_shards - 1))); do
  py video "${video_options[@]}" --shard "$i/$n_shards" 2>"$work/video_shard_$i.log" &
  pids+=($!)
done
failed=()
for i in "${!pids[@]}"; do
  if ! wait "${pids[$i]}"; then failed+=("$i"); fi
done
for i in "${!pids[@]}"; do
  if [[ ! " ${failed[*]} " =~ " $i " ]]; then cat "$work/video_shard_$i.log" >&2; fi
done
for i in "${failed[@]}"; do cat "$work/video_shard_$i.log" >&2; done
if (( ${#failed[@]} )); then exit 1; fi

# 4. Association counts and segmentation IoU against the true masks
py report

# 5. The Pose3DDataset (plausibility-filtered), cached for get_dataset('demo')
py assemble

# 6. How well crops line up with their cameras: each crop vs the scene rendered through its camera
py check-crops

# 7. Barecat archives for training-time random access (resumable), then a full integrity check
posepile export demo "$DATA_ROOT/demo_barecat"
posepile verify "$DATA_ROOT/demo_barecat"

# 8. Baseline predictions (ground truth + 30 mm noise per coordinate) and the benchmark evaluation
py predict-baseline --out "$work/baseline_predictions.npz"
python -m posepile.ds.demo.eval --pred-path "$work/baseline_predictions.npz" --out-json "$work/eval_results.json"

# 9. A contact sheet of crops with skeletons and tinted masks
posepile show demo --split train --n 48 --out "$DATA_ROOT/demo_contact_sheet.png"

py summary --started-at "$started_at" --contact-sheet "$DATA_ROOT/demo_contact_sheet.png"
