import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from posepile.ds.tdpeople import main as tdpeople
from posepile.util import masks
from posepile.util.camera import reproject_image, reproject_image_points
from tests.fakes import tdpeople as fake
from tests.markers import dot_errors

REPO = Path(__file__).resolve().parent.parent


# the joint names of the original PosePile's 3DPeople (the paper's mixes match joints by these names)
ORIGINAL_NAMES = ('pelv,spin,spi1,spi2,neck,head,reye,leye,htop,lcla,lsho,lelb,lwri,lhan,rcla,rsho,relb,rwri,'
                  'rhan,lhip,lkne,lank,lfoo,ltoe,rhip,rkne,rank,rfoo,rtoe')


def _n_kept(poses_mm, threshold_mm=100):
    """The v1 sampling rule written out: keep the first pose, then a pose where some joint moved at least
    `threshold_mm` since the last kept pose."""
    n_kept, last = 1, poses_mm[0]
    for pose in poses_mm[1:]:
        if np.max(np.linalg.norm(pose - last, axis=-1)) >= threshold_mm:
            n_kept, last = n_kept + 1, pose
    return n_kept


def _run_recipe(data_root):
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1', POSEPILE_WORKERS='1')
    env['PATH'] = f'{Path(sys.executable).parent}{os.pathsep}{env.get("PATH", "")}'
    env.pop('POSEPILE_CACHE_DIR', None)
    result = subprocess.run(['bash', str(REPO / 'posepile/ds/tdpeople/main.sh')], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    from posepile.storage.annotations import load_dataset
    return load_dataset(data_root / 'cache' / 'tdpeople.posepile')


def _image_relpath(example):
    """'rgb/<person>/<action>/<camera>/<outfit>/<frame>.jpg' from the crop path tdpeople_downscaled/<...>.jpg."""
    return 'rgb/' + Path(example.image_path).relative_to('tdpeople_downscaled').as_posix()


def _mask_iou_in_crop(example, true_mask, true_camera):
    crop_mask = masks.decode(example.mask)
    source_camera = true_camera.copy()
    source_camera.t = example.camera.t.copy()  # equal up to the estimation error; reprojection needs it exact
    warped = reproject_image(true_mask.astype(np.uint8) * 255, source_camera, example.camera, crop_mask.shape)
    true_in_crop = warped > 127
    return np.count_nonzero(crop_mask & true_in_crop) / np.count_nonzero(crop_mask | true_in_crop)


def test_tdpeople_recipe_on_fake_release(data_root):
    written = fake.write_fake_release(data_root / 'tdpeople', seed=3)
    dataset = _run_recipe(data_root)
    assert dataset.joint_info.n_joints == 29 and ','.join(dataset.joint_info.names) == ORIGINAL_NAMES
    # one selection over all images in sorted path order, on all 67 raw rows
    expected = _n_kept(np.stack([written[relpath]['raw3d_mm'] for relpath in sorted(written)]))
    assert len(dataset.examples[0]) == expected and expected < len(written)
    assert len(dataset.examples[1]) == 0 and len(dataset.examples[2]) == 0

    errors, reprojection_errors, ious = [], [], []
    for example in dataset.examples[0]:
        truth = written[_image_relpath(example)]
        np.testing.assert_allclose(example.world_coords, truth['joints3d_mm'], atol=1e-3)  # mm
        assert np.linalg.norm(example.camera.t - truth['camera'].t) < 1.0  # mm
        # the estimated camera (turned for the crop) puts the 3D joints onto the released 2D joints
        projected = example.camera.world_to_image(example.world_coords)
        joints2d_in_crop = reproject_image_points(truth['joints2d'], truth['camera'], example.camera)
        reprojection_errors.append(np.max(np.linalg.norm(projected - joints2d_in_crop, axis=-1)))
        ious.append(_mask_iou_in_crop(example, truth['mask'], truth['camera']))
        r = max(3, int(round(4 * example.camera.intrinsic_matrix[0, 0] / 700)))
        errors += dot_errors(data_root / example.image_path, projected, r)
    assert max(reprojection_errors) < 0.5, max(reprojection_errors)
    assert min(ious) > 0.97, min(ious)
    assert len(errors) > 20
    assert np.median(errors) < 0.5 and np.max(errors) < 1.0, (np.median(errors), np.max(errors))


def test_selection_continues_across_chunks():
    rng = np.random.default_rng(1)
    poses = np.cumsum(rng.uniform(0, 40, (50, 67, 3)), axis=0)
    all_at_once = tdpeople.select_continuing(poses)[0]
    kept, remembered = [], None
    for start in range(0, 50, 7):
        chunk_kept, remembered = tdpeople.select_continuing(poses[start:start + 7], remembered)
        kept += [start + i for i in chunk_kept]
    assert kept == list(all_at_once) and len(kept) == _n_kept(poses)


def test_companion_paths_drop_the_outfit_folder():
    image = 'rgb/woman17/02_04_jump/camera01/wpskin08_bottom70_background1928/0001.jpg'
    assert tdpeople.companion_path(image, 'skeleton', '.txt').as_posix() == \
        'skeleton/woman17/02_04_jump/camera01/0001.txt'
    assert tdpeople.companion_path(image, 'segmentation_clothes', '.png').as_posix() == \
        'segmentation_clothes/woman17/02_04_jump/camera01/0001.png'


def test_skeleton_reader_names_file_and_problem(tmp_path):
    path = tmp_path / '0001.txt'
    path.write_text('1 2 3 4 5\n' * 66)
    with pytest.raises(tdpeople.TDPeopleFormatError, match=r'0001\.txt: expected >= 67 rows'):
        tdpeople.load_skeleton(path)
    path.write_text('1 2 3 4 x\n' * 67)
    with pytest.raises(tdpeople.TDPeopleFormatError, match=r'0001\.txt: non-numeric'):
        tdpeople.load_skeleton(path)
    path.write_text('10 20 1.5 2 -3\n' * 70)
    joints2d, joints3d = tdpeople.load_skeleton(path)
    assert joints2d.shape == (70, 2) and joints3d.shape == (70, 3)
    np.testing.assert_array_equal(joints2d[0], [10, 20])
    np.testing.assert_array_equal(joints3d[0], [150, 200, -300])  # release unit x100 -> mm


def test_person_mask_threshold():
    segmentation = np.full((2, 3, 3), 153, np.uint8)
    segmentation[0, 0] = (163, 143, 153)  # differs by exactly 10: background
    segmentation[0, 1] = (153, 153, 164)  # differs by 11 in one channel: person
    segmentation[1, 2] = (0, 0, 0)
    np.testing.assert_array_equal(tdpeople.person_mask(segmentation), [[0, 1, 0], [0, 0, 1]])


def test_image_camera_from_raw_joints():
    rng = np.random.default_rng(5)
    raw = fake.make_raw_motion(rng, fake.make_motion(rng, 1))[0]
    truth = fake.make_camera(rng, raw[0])
    camera, rms = tdpeople.estimate_image_camera(truth.world_to_image(raw), raw)
    assert rms < 1e-3 and np.linalg.norm(camera.t - truth.t) < 1e-2  # px, mm
    np.testing.assert_allclose(camera.intrinsic_matrix, fake.INTRINSICS)
    np.testing.assert_allclose(camera.world_up, -truth.R[1], atol=1e-6)
