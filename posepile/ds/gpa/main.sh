#!/usr/bin/env bash
# GPA: Z. Wang, L. Chen, S. Rathore, D. Shin, C. Fowlkes, "Geometric Pose Affordance: 3D Human Pose with
# Scene Constraints", arXiv:1905.07718. https://www.cs.utexas.edu/~liyanc/projects/gpa-dataset/
# Download (Google Drive folder linked from the project page; no registration): the archives
#   gaussian_fullimg.tar.gz and img_jpg_new_resnet101deeplabv3humanmask.tar.gz into $DATA_ROOT/gpa/archives/,
#   xyz_gpa12_mdp_cntind_crop_cam_c2g.json and Sequence_ids/cam_ids_750k.npy into $DATA_ROOT/gpa/.
# They extract to $DATA_ROOT/gpa/{Gaussian_img_jpg_new,img_jpg_new_resnet101deeplabv3humanmask}/.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/gpa"
py() { python -m posepile.ds.gpa.main "$@"; }

# 1. Extract the archives safely (skipped when done)
extract_archives "$root/archives" "$root" '*.tar.gz' '*.tgz' '*.tar' '*.zip'

# 2. Re-nest the images and the shipped DeepLab masks by id: <id[:6]>/<id[6:8]>/<id>.jpg (idempotent)
py nest

# 3. Optional person detection on all annotated images; then frames without a detection are dropped and the
#    box is the detection of best IoU (>= 0.3) with the joint box x1.15. The original's YOLOv4:
#    POSEPILE_DETECTOR=darknet:yolov4.cfg,yolov4.weights (without a detector: the joint box x1.15)
if [[ -n "${POSEPILE_DETECTOR:-}" ]]; then py detect --detector "$POSEPILE_DETECTOR"; fi

# 4. Adaptive selection (100 mm) per camera id in file order, boxes, the shipped masks (channel 0 > 10)
py prepare

# 5. Crops (masks reprojected into them)
py crop

# 6. The dataset (istrains -> TRAIN, else TEST) for get_dataset('gpa')
py assemble
