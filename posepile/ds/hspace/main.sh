#!/usr/bin/env bash
# HSPACE: E. G. Bazavan, A. Zanfir, M. Zanfir, W. T. Freeman, R. Sukthankar, C. Sminchisescu, "HSPACE: Synthetic
# Parametric Humans Animated in Complex Environments", arXiv:2112.12867, 2021.
# https://github.com/google-research/google-research/tree/master/hspace
# Download (Google Cloud Storage, no registration; needs gsutil and `gsutil configure`):
#   gsutil -m cp -r gs://hspace_public/2021_01 "$DATA_ROOT/hspace/"
# giving $DATA_ROOT/hspace/2021_01/train/*.tfrecord. TensorFlow is NOT needed: the TFRecords and the
# tf.train.Example protobufs are read by posepile.util.tfrecord (both CRCs of every record are verified).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
py() { python -m posepile.ds.hspace.main "$@"; }

# 1. Per TFRecord file: adaptive selection (100 mm, buffer of 20 kept poses shared by all people of the file),
#    box = bounding rectangle of the person's label mask (min side 100 px), all-people mask, crops.
#    Shardable: --shard i/n (or a Slurm array task); finished files are cached and skipped on a rerun.
py crop

# 2. The dataset (all TRAIN) for get_dataset('hspace')
py assemble
