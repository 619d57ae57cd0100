import pickle
from pathlib import Path

import numpy as np
import pytest

from posepile.ds.tdpw import main as tdpw
from posepile.util.sampling import select_frames
from tests import faults
from tests.markers import dot_errors
from tests.fakes import tdpw as fake

# Independent of the recipe: SMPL's joints in model order; the dataset's order is SMPL 1..23 then the pelvis
SMPL_ORDER = ('pelv,lhip,rhip,bell,lkne,rkne,spin,lank,rank,thor,ltoe,rtoe,neck,lcla,rcla,head,lsho,rsho,'
              'lelb,relb,lwri,rwri,lhan,rhan').split(',')
PELVIS_LAST = [*range(1, 24), 0]


def valid(data, actor):
    """The challenge's rule re-stated: camera pose valid and some 2D keypoint non-zero."""
    poses2d = np.asarray(data['poses2d'][actor])
    return np.asarray(data['campose_valid'][actor], bool) & np.any(poses2d.reshape(len(poses2d), -1) != 0, axis=1)


def write_release(data_root, n_frames=12):
    smpl_dir = data_root / 'body_models' / 'smpl'
    fake.write_smpl_models(smpl_dir, identity_regressor=True, n_vertices=30)
    written = fake.write_fake_release(data_root / 'tdpw', n_frames=n_frames, smpl_dir=smpl_dir)
    fake.write_images(data_root / 'tdpw', written)
    return written


def parse(example):
    sequence, name = example.image_path.split('/')[-2:]
    frame, actor = (int(x) for x in name[len('image_'):-len('.jpg')].split('_'))
    return sequence, frame, actor


def test_tdpw_recipe_on_fake_release(data_root):
    written = write_release(data_root)
    result = faults.run_recipe('tdpw', data_root, {'POSEPILE_DETECTOR': ''})
    assert result.returncode == 0, result.stderr[-3000:]
    from posepile.storage.annotations import load_dataset
    dataset = load_dataset(data_root / 'cache' / 'tdpw.posepile')
    # every valid (frame, actor) of every split: no thinning of the training split
    expected = {0: 0, 1: 0, 2: 0}
    for (split, _), data in written.items():
        for actor in range(len(data['jointPositions'])):
            expected[{'train': 0, 'validation': 1, 'test': 2}[split]] += int(valid(data, actor).sum())
    assert {s: len(v) for s, v in dataset.examples.items()} == expected
    # the fake moves smoothly: the 100 mm thinning of earlier versions would have kept far fewer training frames
    thinned = sum(len(select_frames(np.asarray(data['jointPositions'][a]).reshape(-1, 24, 3)[valid(data, a)] * 1000,
                                    100)) for (split, _), data in written.items() if split == 'train'
                  for a in range(len(data['genders'])))
    assert thinned < expected[0] / 2, (thinned, expected[0])
    print('tdpw train examples (fake):', thinned, 'with 100 mm thinning ->', expected[0])
    assert dataset.joint_info.names == [SMPL_ORDER[i] for i in PELVIS_LAST]
    # the gendered SMPL fit as released, in the world frame (that of world_coords and of the camera): its joints
    # are jointPositions (here the same toy models' joints of the fit); rototranslated into the example's (crop)
    # camera or any other camera, the joints are the world joints seen by that camera, < 0.1 mm
    from posepile import bodymodels
    from posepile.bodymodels.transform import parameter_joints_mm
    from tests.toy_bodymodels import other_camera, roundtrip_errors_mm
    models = {g: bodymodels.load('smpl', g, data_root / 'body_models') for g in ('female', 'male')}
    by_track = {(data['sequence'], a): data for data in written.values() for a in range(len(data['genders']))}
    param_errors = []
    for example in [ex for examples in dataset.examples.values() for ex in examples]:
        sequence, frame, actor = parse(example)
        data = by_track[(sequence, actor)]
        params = example.parameters
        assert params['type'] == 'smpl' and params['gender'] == {'f': 'female', 'm': 'male'}[data['genders'][actor]]
        np.testing.assert_allclose(params['shape'], data['betas'][actor], atol=1e-6)
        np.testing.assert_allclose(params['pose'], data['poses'][actor][frame], atol=1e-6)
        np.testing.assert_allclose(params['trans'], data['trans'][actor][frame], atol=1e-6)
        world = np.asarray(data['jointPositions'][actor][frame]).reshape(24, 3) * 1000
        np.testing.assert_allclose(example.world_coords, world[PELVIS_LAST], atol=1e-3)
        model = models[params['gender']]
        assert np.abs(parameter_joints_mm(params, model) - world).max() < 0.1
        param_errors += roundtrip_errors_mm(params, world, [example.camera, other_camera(frame)], model)
    assert len(param_errors) == 2 * sum(expected.values()) and max(param_errors) < 0.1, max(param_errors)
    print('tdpw round-trip max error (mm):', max(param_errors))
    errors = []
    for example in list(dataset.examples[0])[:5] + list(dataset.examples[2])[:5]:
        assert 1000 < np.median(example.camera.world_to_camera(example.world_coords)[:, 2]) < 10000  # mm
        projected = example.camera.world_to_image(example.world_coords)
        errors += dot_errors(data_root / example.image_path, projected,
                             max(4, int(round(6 * example.camera.intrinsic_matrix[0, 0] / 1961))), separation=3)
    assert len(errors) > 20
    assert np.median(errors) < 0.5 and np.max(errors) < 1.0, (np.median(errors), np.max(errors))


def _iou(a, b):
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0, x1 - x0) * max(0, y1 - y0)
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def test_with_detections_unmatched_actors_are_dropped_and_the_detection_box_used(data_root):
    """A deterministic detector (detections.pkl written before the run, as the detect stage would): per actor a
    box of the same centre as its joint box x1.15 and 1/2 (kept: IoU 0.5) or 1/13 (IoU ~0.077: dropped) of
    its area, by (frame + actor) parity, plus a far-away false positive."""
    written = write_release(data_root, n_frames=8)
    detections, kept = {}, {}
    for (split, sequence), data in written.items():
        for frame in range(len(data['cam_poses'])):
            camera = tdpw.frame_camera(data, frame)
            dets = [[5000, 5000, 50, 80, 0.9]]
            for actor in range(len(data['jointPositions'])):
                uv = camera.world_to_image(np.asarray(data['jointPositions'][actor][frame]).reshape(24, 3) * 1000)
                (u0, v0), (u1, v1) = uv.min(0), uv.max(0)
                w, h = (u1 - u0) * 1.15, (v1 - v0) * 1.15
                gt_box = [(u0 + u1) / 2 - w / 2, (v0 + v1) / 2 - h / 2, w, h]
                f = np.sqrt(0.5 if (frame + actor) % 2 == 0 else 1 / 13)
                det = [(u0 + u1) / 2 - f * w / 2, (v0 + v1) / 2 - f * h / 2, f * w, f * h, 0.8]
                dets.append(det)
                if valid(data, actor)[frame] and _iou(gt_box, det) > 0.1:
                    kept[(sequence, frame, actor)] = det[:4]
            detections[tdpw.image_relpath(sequence, frame)] = np.array(dets, np.float32)
    assert 0 < len(kept) < sum(int(valid(d, a).sum()) for d in written.values() for a in range(len(d['genders'])))
    from posepile.util import fileio
    fileio.save_pickle(detections, tdpw.work_dir(data_root) / 'detections.pkl')
    result = faults.run_recipe('tdpw', data_root, {'POSEPILE_DETECTOR': ''})
    assert result.returncode == 0, result.stderr[-3000:]
    from posepile.storage.annotations import load_dataset
    dataset = load_dataset(data_root / 'cache' / 'tdpw.posepile')
    examples = [ex for examples in dataset.examples.values() for ex in examples]
    assert sorted(parse(ex) for ex in examples) == sorted(kept)
    # the full-frame box of each crop task is the detection box
    tasks, stats = tdpw.make_crop_tasks(data_root, detections)
    assert stats['dropped_unmatched'] == sum(int(valid(d, a).sum()) for d in written.values()
                                             for a in range(len(d['genders']))) - len(kept)
    boxes = {}
    for key, example, _ in tasks:
        _, sequence, actor, frame = key.split('/')
        boxes[(sequence, int(frame), int(actor))] = example.bbox
    assert boxes.keys() == kept.keys()
    for key, box in kept.items():
        np.testing.assert_allclose(boxes[key], box, atol=1e-3)


def _drop_three_values(path):
    """One actor's jointPositions with 69 instead of 72 values per frame (the issue's report)."""
    with open(path, 'rb') as f:
        data = pickle.load(f, encoding='latin1')
    data['jointPositions'][0] = np.asarray(data['jointPositions'][0])[:, :69]
    with open(path, 'wb') as f:
        pickle.dump(data, f, protocol=2)


def _corrupt_header(path):
    """A LONG_BINPUT with a huge memo index right after the header: pickle.load raises MemoryError."""
    data = Path(path).read_bytes()
    assert data[:3] == b'\x80\x02}'
    Path(path).write_bytes(data[:3] + b'r\xff\xff\xff\x7f' + data[8:])


@pytest.fixture(scope='module')
def tdpw_reference(tmp_path_factory):
    root = tmp_path_factory.mktemp('tdpw_clean')
    write_release(root, n_frames=6)
    result = faults.run_recipe('tdpw', root, {'POSEPILE_DETECTOR': ''})
    assert result.returncode == 0, result.stderr[-3000:]
    return faults.output_bytes(root)


@pytest.mark.parametrize('fault, words', [(_drop_three_values, ['69 instead of 72']),
                                          (_corrupt_header, ['MemoryError'])])
def test_broken_sequence_pickles_are_one_line_errors(tdpw_reference, tmp_path, fault, words):
    target = 'tdpw/sequenceFiles/test/office_c_00.pkl'
    faults.check_fault_is_reported_and_repaired('tdpw', lambda root: write_release(root, n_frames=6), target, fault,
                                                tmp_path, reference=tdpw_reference,
                                                names=['office_c_00.pkl', *words],
                                                env_extra={'POSEPILE_DETECTOR': ''})
