import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from posepile.ds.sailvos import main as sailvos
from posepile.util import fileio, masks
from posepile.util.camera import reproject_box, reproject_image, reproject_image_points
from tests.fakes import sailvos as fake
from tests.markers import dot_errors

REPO = Path(__file__).resolve().parent.parent


def _expected_people(written):
    """(sequence, object id, frame) of the people the recipe should keep, by the rules written out: per
    sequence over the files sorted by path, files with < 6 valid bones skipped, then keep the first and every
    file where a joint valid in both moved >= 100 mm since the last kept one; then the filters."""
    expected = []
    for sequence, (_, people, _) in fake.SEQUENCES.items():
        keys = sorted((k for k in written if k[0] == sequence), key=lambda k: f'{people[k[1]][0]}/{k[2]:06d}')
        last = None
        for key in keys:
            item = written[key]
            if item['n_valid_bones'] < 6:
                continue
            joints = item['joints_mm']
            if last is not None:
                both = ~np.isnan(joints[:, 0]) & ~np.isnan(last[:, 0])
                if not np.any(np.linalg.norm(joints[both] - last[both], axis=1) >= 100):
                    continue
            last = joints
            valid = joints[~np.isnan(joints[:, 0])]
            spread = np.sqrt(np.mean(np.sum((valid - valid.mean(0)) ** 2, axis=1)))
            if min(item['visible_box'][2:]) > 50 and item['occlusion'] <= 0.75 and len(valid) > 5 and \
                    100 < spread < 3000:
                expected.append(key)
    return expected


def _run_recipe(data_root):
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1', POSEPILE_WORKERS='1')
    env['PATH'] = f'{Path(sys.executable).parent}{os.pathsep}{env.get("PATH", "")}'
    for name in ('POSEPILE_CACHE_DIR', 'POSEPILE_DETECTOR'):
        env.pop(name, None)
    result = subprocess.run(['bash', str(REPO / 'posepile/ds/sailvos/main.sh')], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    from posepile.storage.annotations import load_dataset
    return load_dataset(data_root / 'cache' / 'sailvos.posepile')


def _key_of(example):
    """(sequence, object id, frame) from sailvos_downscaled/<seq>/images/<frame>_<id>.jpg."""
    path = Path(example.image_path)
    frame, object_id = path.stem.split('_')
    return path.parts[-3], int(object_id), int(frame)


def test_sailvos_recipe_on_fake_release(data_root):
    written = fake.write_fake_release(data_root / 'sailvos', seed=3)
    dataset = _run_recipe(data_root)
    assert dataset.joint_info.n_joints == 26 and dataset.joint_info.names == sailvos.JOINT_NAMES.split(',')
    expected = _expected_people(written)
    assert 0 < len(expected) < len(written)
    assert sorted(_key_of(e) for e in dataset.examples[0]) == sorted(expected)
    assert len(dataset.examples[1]) == 0 and len(dataset.examples[2]) == 0
    # BMP frames became JPEGs, visibility maps were compressed
    assert not list((data_root / 'sailvos').glob('*/images/*.bmp'))
    assert len(list((data_root / 'sailvos').glob('*/visible/*.npz'))) == len({(k[0], k[2]) for k in written})

    # the recovered cameras (before cropping) against the fake's true cameras
    prepared = fileio.load_pickle(data_root / 'sailvos' / 'posepile_work' / 'prepared.pkl')
    focal_errors, centre_errors, rms = [], [], []
    for sequence, people in prepared.items():
        for person in people:
            truth = written[(sequence, person['object_id'], int(person['frame']))]['camera']
            focal_errors.append(abs(person['camera'].intrinsic_matrix[0, 0] / truth.intrinsic_matrix[0, 0] - 1))
            centre_errors.append(np.linalg.norm(person['camera'].t - truth.t))
            rms.append(person['rms_px'])
    assert max(focal_errors) < 1e-4 and max(centre_errors) < 0.1 and max(rms) < 0.01, \
        (max(focal_errors), max(centre_errors), max(rms))

    offsets = {sequence: np.mean([written[k]['camera'].t for k in expected if k[0] == sequence], axis=0)
               for sequence in fake.SEQUENCES}
    errors, reprojection_errors, ious = [], [], []
    for example in dataset.examples[0]:
        key = _key_of(example)
        truth = written[key]
        # mm, world frame re-centred on the mean camera position of the sequence
        np.testing.assert_allclose(example.world_coords, truth['joints_mm'] - offsets[key[0]], atol=0.05)
        assert np.nanmax(np.abs(example.world_coords)) < 20000
        true_camera = truth['camera'].copy()
        true_camera.t = example.camera.t.copy()  # equal up to the estimation error; reprojection needs it exact
        # box: the person's visible-mask box, carried into the crop
        np.testing.assert_allclose(example.bbox, reproject_box(truth['visible_box'], true_camera, example.camera),
                                   atol=0.5)
        projected = example.camera.world_to_image(example.world_coords)
        joints2d_in_crop = reproject_image_points(truth['joints2d'], true_camera, example.camera)
        reprojection_errors.append(np.nanmax(np.linalg.norm(projected - joints2d_in_crop, axis=-1)))
        crop_mask = masks.decode(example.mask)
        warped = reproject_image(truth['people_mask'].astype(np.uint8) * 255, true_camera, example.camera,
                                 crop_mask.shape) > 127
        ious.append(np.count_nonzero(crop_mask & warped) / np.count_nonzero(crop_mask | warped))
        r = max(3, int(round(4 * example.camera.intrinsic_matrix[0, 0] / 1200)))
        errors += dot_errors(data_root / example.image_path, projected, r)
    assert max(reprojection_errors) < 0.05, max(reprojection_errors)
    assert min(ious) > 0.9, min(ious)
    assert len(errors) > 40
    assert np.median(errors) < 0.5 and np.max(errors) < 1.0, (np.median(errors), np.max(errors))


def test_bone_reader_names_file_and_problem(tmp_path):
    path2d, path3d = tmp_path / '000007_2d.txt', tmp_path / '000007_3d.txt'
    path2d.write_text('1 2\n' * sailvos.MIN_BONES)
    path3d.write_text('1 2 3\n' * (sailvos.MIN_BONES - 1))
    with pytest.raises(sailvos.SailVosFormatError, match=r'000007_3d\.txt: expected >= 343 rows of 3 numbers') as e:
        sailvos.load_bones(path2d)
    assert '\n' not in str(e.value)
    path3d.write_text('1 2 x\n' * sailvos.MIN_BONES)
    with pytest.raises(sailvos.SailVosFormatError, match=r'000007_3d\.txt: non-numeric'):
        sailvos.load_bones(path2d)
    path2d.write_text('-1280 -800\n' + '10 20\n' * (sailvos.MIN_BONES - 1))
    path3d.write_text('0 0 0\n1.5 2 -3\n' + '1 1 1\n' * (sailvos.MIN_BONES - 2))
    bones2d, bones3d = sailvos.load_bones(path2d)
    assert np.isnan(bones2d[0]).all() and np.isnan(bones3d[0]).all()
    np.testing.assert_array_equal(bones3d[1], [1500, 2000, -3000])  # m -> mm


def test_detection_match_rules():
    gt = np.array([[100, 100, 100, 200], [400, 100, 100, 200]], np.float64)
    detections = np.array([[105, 100, 100, 210, 0.9],  # good match for person 0
                           [350, 50, 250, 320, 0.8]], np.float32)  # IoU > 0.1 with person 1 but area > 2x
    matches = sailvos.match_detections(gt, detections)
    assert list(matches) == [0]
    np.testing.assert_array_equal(matches[0], detections[0, :4])
