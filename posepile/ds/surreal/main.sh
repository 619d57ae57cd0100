#!/usr/bin/env bash
# SURREAL: G. Varol et al., "Learning from Synthetic Humans", CVPR 2017. https://www.di.ens.fr/willow/research/surreal/
# Download needs the licence agreement (a username/password by e-mail): run the official download script
# into $DATA_ROOT/surreal (it creates cmu/{train,val,test}/run{0,1,2}/<seq>/...).
# For the SMPL parameters of each example (`parameters`, world frame), put the gendered SMPL
# models (https://smpl.is.tue.mpg.de/, registration: SMPL_FEMALE.pkl / SMPL_MALE.pkl, or
# basicmodel_{f,m}_lbs_10_207_0_v1.1.0.pkl) into $DATA_ROOT/body_models/smpl/; without them `parameters` stays
# empty (logged) and the joints are unaffected.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
py() { python -m posepile.ds.surreal.main "$@"; }

# 1. Adaptive frame selection per clip (a joint moved >= 100 mm)
py select-frames

# 2. One pass per clip: frames decoded and mirrored back (the released videos are mirrored), masks and boxes
#    from the part segmentation (_segm.mat), crops; no full frames are written. SKIP_BROKEN=1 builds the
#    rest when a clip is broken (listed).
py video $([[ "${SKIP_BROKEN:-0}" == 1 ]] && echo --skip-broken)

# 3. The dataset for get_dataset('surreal')
py assemble
