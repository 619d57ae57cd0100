#!/usr/bin/env bash
# TotalCapture: M. Trumble, A. Gilbert, C. Malleson, A. Hilton, J. Collomosse, "Total Capture: 3D Human Pose
# Estimation Fusing Video and Inertial Sensors", BMVC 2017. https://cvssp.org/data/totalcapture/
#
# Download needs registration: request access at https://cvssp.org/data/totalcapture/ and download (HTTP basic
# auth, e.g. wget --http-user=... --http-password=...) from https://cvssp.org/data/totalcapture/data/dataset/,
# keeping the server's folders under $DATA_ROOT/totalcapture/archives/:
#   archives/video/s<s>/s<s>_<take>.tar.gz and archives/mattes/s<s>/s<s>_<take>.tar.gz
#     (s1-s3: acting, freestyle, rom, walking 1-3; s4-s5: acting3 freestyle1 freestyle3 rom3 walking2),
#   archives/vicon/s<s>_vicon_pos_ori.tar.gz, and calibration.cal into $DATA_ROOT/totalcapture/.
# They extract to video/s<s>/**/TC_S<s>_<take>_cam<c>.mp4, mattes/s<s>/**/... and vicon/S<s>/<take>/.
# Every step below is resumable.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/totalcapture"
py() { python -m posepile.ds.totalcapture.main "$@"; }

# 1. Extract the archives safely, each into the matching folder (skipped when done)
for sub in video/s1 video/s2 video/s3 video/s4 video/s5 mattes/s1 mattes/s2 mattes/s3 mattes/s4 mattes/s5 vicon; do
  extract_archives "$root/archives/$sub" "$root/$sub" '*.tar.gz' '*.tgz' '*.tar' '*.zip'
done

# 2. Training videos only (subjects 1-3 without walking2, freestyle3, acting3): frames with >= 6 joints in view,
#    adaptive selection (100 mm), and one light pass over each matte video for the selected frames' mattes
py mattes

# 3. One pass per video: crops (box = joints x1.25 cut by the matte box and the image; mask = the matte).
#    SKIP_BROKEN=1 builds the rest when a video is missing or corrupt (listed).
options=()
if [[ "${SKIP_BROKEN:-0}" == 1 ]]; then options+=(--skip-broken); fi
py video ${options[@]+"${options[@]}"}

# 4. The dataset for get_dataset('totalcapture')
py assemble
