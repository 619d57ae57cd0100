#!/usr/bin/env bash
# DFAUST: F. Bogo, J. Romero, G. Pons-Moll, M. J. Black, "Dynamic FAUST: Registering Human Bodies in Motion",
# CVPR 2017. https://dfaust.is.tue.mpg.de
# Register there and put into $DATA_ROOT/dfaust/:
#   registrations_f.hdf5, registrations_m.hdf5 (the SMPL-topology registrations; zipped copies are extracted)
#   smpl_uv.obj   the SMPL mesh with UV coordinates (https://smpl.is.tue.mpg.de, "UV map" download)
#   textures/female/*.png, textures/male/*.png   SMPL UV texture maps by gender, e.g. SMPLitex
#     (D. Casas, M. Comino-Trinidad, "SMPLitex: A Generative Model and Dataset for 3D Human Texture Estimation
#     from Single Image", BMVC 2023, https://github.com/dancasas/SMPLitex; the original used 200 of them).
# The fits use the gendered SMPL models (https://smpl.is.tue.mpg.de): SMPL_FEMALE.pkl / SMPL_MALE.pkl (or
# basicmodel_{f,m}_lbs_10_207_0_v1.1.0.pkl) in $DATA_ROOT/body_models/smpl/.
# Renderer: posepile.render (default: the numpy rasterizer; POSEPILE_RENDERER=opengl or blender, see
# posepile/render/__init__.py). Fitter: posepile.bodymodels.fitter (POSEPILE_FITTER=smplfitter: pip install smplfitter).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../functions.sh"
check_data_root
root="$DATA_ROOT/dfaust"
py() { python -m posepile.ds.dfaust.main "$@"; }

# 1. Extract zipped registration files, if any (skipped when done)
extract_archives "$root" "$root" 'registrations_*.zip'

# 2. Per sequence: draw 200 views (a random frame, a random texture of the subject's gender), fit gendered SMPL
#    (128 betas) to the drawn frames (cached, vertex errors logged), render each view at 512x512 over grey 127
#    (alpha -> mask; field of view 30-70 deg, elevation -30..60 deg, 5-15 coloured point lights + a disk area
#    light). Shard with --shard i/n (or a Slurm array); a rerun resumes at the next unrendered view.
#    POSEPILE_RENDER_VIEWS changes the count.
py render

# 3. The dataset (all TRAIN, parametric-only: the gendered SMPL fit in the registrations' frame) for
#    get_dataset('dfaust')
py assemble
