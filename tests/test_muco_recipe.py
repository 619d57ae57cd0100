import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np

from posepile.ds.muco import main as muco
from posepile.ds.tdhp import main as tdhp
from posepile.util import boxes as boxlib
from posepile.util.camera import reproject_box
from tests.fakes import muco as fake
from tests.fakes import tdhp as fake_tdhp
from tests.markers import dot_errors

REPO = Path(__file__).resolve().parent.parent
N_COMPOSITES = 10


def _run(args, data_root, **extra_env):
    env = dict(os.environ, DATA_ROOT=str(data_root), OMP_NUM_THREADS='1', POSEPILE_WORKERS='1', **extra_env)
    env.pop('POSEPILE_CACHE_DIR', None)
    env.pop('POSEPILE_DETECTOR', None)
    result = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]


def _build(data_root):
    for stage in ('select-frames', 'masks'):
        _run(['python', '-m', 'posepile.ds.tdhp.main', stage], data_root)
    _run(['bash', str(REPO / 'posepile/ds/muco/main.sh')], data_root, MUCO_COUNT=str(N_COMPOSITES),
         MUCO_CHUNK_SIZE='4')


def _layers(origin, worlds, cameras):
    """Analytic full-frame layers of a composite's people (far to near): subject, frame, person, chair."""
    result = []
    for entry in origin:
        _, subject, _, camera, frame = entry['source'].split('/')
        camera, frame = int(camera), int(frame)
        world = worlds[subject][frame]
        person = fake_tdhp.person_mask(cameras[camera], world, 512, 512)
        chair = (fake_tdhp.chair_mask(cameras[camera], world, 512, 512) if subject in fake.CHAIR_SUBJECTS
                 else np.zeros_like(person))
        result.append(dict(subject=subject, frame=frame, camera=camera, world=world, person=person, chair=chair,
                           depth=cameras[camera].world_to_camera(world)[:, 2].mean()))
    return result


def _crop_to_full(crop_camera, full_camera):
    return full_camera.intrinsic_matrix @ full_camera.R @ crop_camera.R.T @ np.linalg.inv(crop_camera.intrinsic_matrix)


def test_muco_recipe_on_fake_release(data_root):
    worlds = fake.write_fake_release(data_root / 'tdhp')
    _build(data_root)
    from posepile.storage.annotations import load_dataset
    dataset = load_dataset(data_root / 'cache' / 'muco.posepile')
    assert dataset.joint_info.names == muco.JOINT_NAMES.split(',')
    keyed, origins = muco.load_results(data_root)
    # the sources: the tdhp selection's frames (S1-S8, cameras 0-2, 4-8, all 17 tdhp joints in view, sampled
    # per camera) with all 28 joints, uncorrected pixels (the fake's grey 45 background stays 45)
    from tests.test_tdhp_recipe import CAMERAS_8, _expected_tdhp_frames
    cameras = tdhp.load_train_cameras(data_root / 'tdhp' / 'S1' / 'Seq1' / 'camera.calibration')
    expected = [_expected_tdhp_frames(worlds[s], cameras) for s in fake.SUBJECTS]
    candidates = muco.load_candidates(data_root)
    assert {c: len(v) for c, v in candidates.items()} == {c: sum(len(e[c]) for e in expected) for c in CAMERAS_8}
    from posepile.util import improc
    for candidate in candidates[0][::3]:
        example = candidate['example']
        np.testing.assert_allclose(example.world_coords, worlds[candidate['subject']][candidate['frame']], atol=0.05)
        crop = improc.imread_rgb(data_root / example.image_path)
        assert abs(np.median(crop[..., 1]) - 45) <= 3
    assert sorted(origins) == list(range(N_COMPOSITES))
    assert len(dataset.examples[0]) == len(keyed) == sum(o['kept'] for v in origins.values() for o in v) > 10
    raw_order = tdhp.FULL_JOINT_ORDER
    agreement, visible_dots, occluded_checked = [], [], 0
    for key, example in keyed:
        index, rank = int(key.split('/')[1]), int(key.split('/')[2])
        layers = _layers(origins[index], worlds, cameras)
        # the same camera, four different subjects, painted far to near
        assert len({layer['camera'] for layer in layers}) == 1
        assert len({layer['subject'] for layer in layers}) == 4
        assert all(a['depth'] > b['depth'] for a, b in zip(layers, layers[1:]))
        me = layers[rank]
        np.testing.assert_allclose(example.world_coords, me['world'][raw_order], atol=0.05)
        np.testing.assert_allclose(example.univ_coords, me['world'][raw_order], atol=0.05)  # fake: univ = annot3
        full_camera = cameras[me['camera']]
        # the visible part: own silhouette minus every nearer layer (people and chairs)
        nearer = np.zeros((512, 512), bool)
        for layer in layers[rank + 1:]:
            nearer |= layer['person'] | layer['chair']
        visible = me['person'] & ~nearer
        assert abs(visible.sum() / me['person'].sum() - origins[index][rank]['visible_fraction']) < 0.05
        # box = visible-mask box (up to the masks' resampling: between the boxes of the visible part shrunk
        # and grown by 2 px) intersected with the joint box x 1.05
        canvas_camera = full_camera.copy().scale_output(muco.CANVAS_SCALE)
        joint_box = boxlib.expand(boxlib.intersection(boxlib.bb_of_points(
            canvas_camera.world_to_image(me['world'])), [0, 0, 256, 256]), 1.05)
        kernel = np.ones((5, 5), np.uint8)
        inner, outer = [boxlib.intersection(boxlib.bb_of_mask(m) * muco.CANVAS_SCALE, joint_box) for m in (
            cv2.erode(visible.astype(np.uint8), kernel), cv2.dilate(visible.astype(np.uint8), kernel))]
        got = reproject_box(example.bbox, example.camera, canvas_camera)
        tol = 1.0
        if inner[2] > 0 and inner[3] > 0:
            assert got[0] <= inner[0] + tol and got[1] <= inner[1] + tol
            assert got[0] + got[2] >= inner[0] + inner[2] - tol and got[1] + got[3] >= inner[1] + inner[3] - tol
        assert got[0] >= outer[0] - tol and got[1] >= outer[1] - tol
        assert got[0] + got[2] <= outer[0] + outer[2] + tol and got[1] + got[3] <= outer[1] + outer[3] + tol
        # whose pixels are where: the nearest layer covering a pixel wins (red channel codes the subject)
        crop = cv2.imread(str(data_root / example.image_path))[..., ::-1]
        winner = np.full((512, 512), -1)
        for i, layer in enumerate(layers):
            winner[layer['person'] | layer['chair']] = i
        certain = np.zeros((512, 512), bool)
        for label in range(-1, 4):
            certain |= cv2.erode((winner == label).astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
        all_joints = np.concatenate([full_camera.world_to_image(layer['world']) for layer in layers])
        ys, xs = np.mgrid[0:crop.shape[0]:3, 0:crop.shape[1]:3]
        homogeneous = np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)])
        mapped = _crop_to_full(example.camera, full_camera) @ homogeneous
        u, v = np.round(mapped[:2] / mapped[2]).astype(int)
        inside = (u >= 0) & (u < 512) & (v >= 0) & (v < 512)
        u, v, cu, cv = u[inside], v[inside], xs.ravel()[inside], ys.ravel()[inside]
        far_from_dots = np.min(np.hypot(u[:, None] - all_joints[:, 0], v[:, None] - all_joints[:, 1]), axis=1) > 10
        ok = certain[v, u] & far_from_dots
        levels = np.array([fake.BODY_LEVELS[layer['subject']] for layer in layers] + [muco.BACKGROUND_RGB[0]])
        expected_red = levels[winner[v[ok], u[ok]]]
        agreement.append(np.mean(np.abs(crop[cv[ok], cu[ok], 0].astype(int) - expected_red) < 25))
        # dots of the joints that no nearer layer hides sit at the projected joints; hidden ones are gone
        projected = example.camera.world_to_image(example.world_coords)
        px = full_camera.world_to_image(me['world'])[raw_order]
        grown = cv2.dilate(nearer.astype(np.uint8), np.ones((21, 21), np.uint8)).astype(bool)
        deep = cv2.erode(nearer.astype(np.uint8), np.ones((11, 11), np.uint8)).astype(bool)
        pixel = np.clip(np.round(px).astype(int), 0, 511)
        clear = ~grown[pixel[:, 1], pixel[:, 0]]
        radius = max(3, int(round(5 * example.camera.intrinsic_matrix[0, 0] / (0.9 * 512))))
        neighbours = np.concatenate([example.camera.world_to_image(layer['world']) for layer in layers])
        visible_dots += dot_errors(data_root / example.image_path, np.where(clear[:, None], projected, np.nan),
                                   radius, neighbours=neighbours)
        nearer_joints = np.concatenate([full_camera.world_to_image(layer['world']) for layer in layers[rank + 1:]]
                                       + [np.full((1, 2), 1e9)])
        for (x, y), (fu, fv) in zip(projected, pixel):
            away = np.min(np.hypot(nearer_joints[:, 0] - fu, nearer_joints[:, 1] - fv)) > 10
            if deep[fv, fu] and away and 0 <= x < crop.shape[1] - 1 and 0 <= y < crop.shape[0] - 1:
                assert crop[int(round(y)), int(round(x)), 1] < 45 + 30  # the hidden joint's dot is gone
                occluded_checked += 1
    assert np.min(agreement) > 0.98, np.min(agreement)
    assert len(visible_dots) > 15
    assert np.median(visible_dots) < 0.5 and np.max(visible_dots) < 1.0, (np.median(visible_dots),
                                                                          np.max(visible_dots))
    assert occluded_checked > 0  # the fake does produce occlusions

    # a rebuild from scratch, and a resumed one after losing a chunk, are byte-identical
    def fingerprint():
        files = sorted(p for folder in ('muco_downscaled', 'cache/muco.posepile')
                       for p in (data_root / folder).rglob('*') if p.is_file())
        return {str(p.relative_to(data_root)): hashlib.sha1(p.read_bytes()).hexdigest() for p in files}
    first = fingerprint()
    muco.chunk_path(data_root, 1).unlink()
    _run(['bash', str(REPO / 'posepile/ds/muco/main.sh')], data_root, MUCO_COUNT=str(N_COMPOSITES),
         MUCO_CHUNK_SIZE='4')
    assert fingerprint() == first
    shutil.rmtree(data_root / 'muco_downscaled')
    shutil.rmtree(muco.work_dir(data_root))
    _run(['bash', str(REPO / 'posepile/ds/muco/main.sh')], data_root, MUCO_COUNT=str(N_COMPOSITES),
         MUCO_CHUNK_SIZE='4')
    assert fingerprint() == first

    # with a detector: Hungarian association (IoU > 0.1, det area < 2x, score > 0.1), detections become boxes
    candidates = muco.load_candidates(data_root)
    _, _, people = muco.composite(0, candidates, data_root)
    gt = [p['box'] for p in people]
    kept = [b for b in gt if b is not None]
    detections = [[*boxlib.expand(b, 1.1), 0.9] for b in kept[1:]]  # the first kept person is not detected
    detections += [[*boxlib.expand(kept[0], 1.6), 0.95], [*kept[0], 0.05]]  # too large / too unsure

    class Detector:
        def detect(self, image):
            return np.array(detections, np.float32)

    made, origins0 = muco._make_examples(0, candidates, str(data_root), Detector())
    assert len(made) == len(kept) - 1
    assert sum(o['kept'] for o in origins0) == len(kept) - 1
    for (key, example), detection in zip(made, detections):
        rank = int(key.split('/')[2])
        canvas_camera = people[rank]['camera']
        np.testing.assert_allclose(reproject_box(example.bbox, example.camera, canvas_camera), detection[:4],
                                   atol=1.0)


def test_plan_is_deterministic_and_mixes_subjects():
    candidates = {c: [dict(key=f'0/S{s}/Seq1/{c:02d}/{f:06d}', subject=f'S{s}', sequence='Seq1', camera=c,
                           frame=f) for s in range(1, 6) for f in range(0, 20, 5)] for c in (0, 2)}
    for index in range(50):
        plan = muco.plan_composite(index, candidates)
        assert [p['key'] for p in plan] == [p['key'] for p in muco.plan_composite(index, candidates)]
        assert len({p['subject'] for p in plan}) == 4 and len({p['camera'] for p in plan}) == 1
    few = {0: [dict(key=f'k{f}', subject='S1', sequence='Seq1', camera=0, frame=f) for f in range(6)]}
    assert len({p['key'] for p in muco.plan_composite(3, few)}) == 4  # one subject: distinct frames


def test_missing_tdhp_crops_error(data_root):
    import pytest
    with pytest.raises(FileNotFoundError, match='sources'):
        muco.load_candidates(data_root)
