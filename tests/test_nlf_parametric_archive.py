"""A parametric export read as NLF reads it (nlf-era-facts §3): the raw msgpack values of our Barecat, the stored
WORLD-frame body-model parameters rototranslated by the crop camera (R from `cam.rotvec_w2c`, t = `cam.loc` /
1000 / scale, the root rotation turned and the translation moved about the rest pelvis), then forward kinematics,
give the example's camera-frame joints within 1 mm.

The arithmetic is re-stated here in a few lines (not posepile.bodymodels.rototranslate); only the forward
kinematics of the toy model (tests/toy_bodymodels.py) comes from posepile.bodymodels.
"""
import barecat
import cv2
import numpy as np
import pytest

from posepile import bodymodels
from posepile.datasets3d import TRAIN, Pose3DDataset, Pose3DExample
from posepile.joint_info import JointInfo
from posepile.preproc.cropping import make_efficient_example
from posepile.storage import barecat_store
from posepile.util.camera import Camera
from tests.test_barecat_original_schema import doc_unpack
from tests.toy_bodymodels import write_toy_model

SMPL_NAMES = ('pelv,lhip,rhip,bell,lkne,rkne,spin,lank,rank,thor,ltoe,rtoe,neck,lcla,rcla,head,lsho,rsho,lelb,relb,'
              'lwri,rwri,lhan,rhan')


def nlf_camera_joints_mm(value, model):
    """NLF's parametric loader arithmetic on one raw archive value -> camera-frame joints (mm)."""
    params, cam = value['parameters'], value['cam']
    scale = float(params.get('scale', 1.0))  # absent = 1
    R = cv2.Rodrigues(np.asarray(cam['rotvec_w2c'], np.float64).reshape(3, 1))[0]
    t_m = np.asarray(cam['loc'], np.float64) / 1000 / scale
    pose = np.asarray(params['pose'], np.float64).reshape(-1)
    shape = np.asarray(params['shape'], np.float64)
    trans = np.asarray(params['trans'], np.float64)
    rest_pelvis = model(np.zeros((1, len(pose))), shape, np.zeros(3), return_vertices=False)['joints'][0, 0]
    root = cv2.Rodrigues(R @ cv2.Rodrigues(pose[:3].reshape(3, 1))[0])[0].reshape(-1)
    new_trans = R @ (trans + rest_pelvis - t_m) - rest_pelvis
    joints_m = model(np.concatenate([root, pose[3:]])[np.newaxis], shape, new_trans, return_vertices=False)
    return joints_m['joints'][0] * scale * 1000


@pytest.fixture
def toy_smpl(tmp_path):
    write_toy_model(tmp_path / 'models', 'smpl', 'neutral')
    return bodymodels.load('smpl', 'neutral', tmp_path / 'models')


def _parametric_examples(data_root, model):
    """Two people (one scaled fit) seen by a camera with a non-trivial rotation and centre, cropped."""
    rng = np.random.default_rng(7)
    image = rng.integers(0, 255, (480, 640, 3), np.uint8)
    (data_root / 'toy').mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(data_root / 'toy' / 'frame.jpg'), image)
    camera = Camera([2500.0, -3000.0, 1800.0], np.eye(3), [[600, 0, 320], [0, 600, 240], [0, 0, 1]], None,
                    world_up=(0, 0, 1))
    camera.turn_towards(target_world_point=[400.0, 300.0, 1000.0])
    examples = []
    for k, (center_m, scale) in enumerate((([0.2, 0.4, 1.0], 1.0), ([0.8, 0.0, 0.9], 1.12))):
        pose = rng.normal(0, 0.3, 72).astype(np.float32)
        betas = rng.normal(0, 1, 10).astype(np.float32)
        trans = np.asarray(center_m, np.float32)
        world_mm = scale * model(pose[np.newaxis], betas, trans, return_vertices=False)['joints'][0] * 1000
        params = {'type': 'smpl', 'gender': 'neutral', 'pose': pose.reshape(24, 3), 'shape': betas, 'trans': trans,
                  'kid_factor': 0.0, 'scale': scale, 'expression': np.zeros(10, np.float32)}
        imcoords = camera.world_to_image(world_mm)
        box = np.concatenate([imcoords.min(0), imcoords.max(0) - imcoords.min(0)]) + [-20, -20, 40, 40]
        assert np.all(imcoords > 0) and np.all(imcoords < [640, 480])
        example = Pose3DExample('toy/frame.jpg', world_mm, box, camera.copy(), parameters=params)
        examples.append(make_efficient_example(example, f'toy_crops/frame_{k}.jpg', data_root=data_root))
    return examples


def test_nlf_arithmetic_on_exported_world_parameters(data_root, tmp_path, toy_smpl):
    examples = _parametric_examples(data_root, toy_smpl)
    # the crop cameras are rotated (look-at), far from identity, centred away from the origin
    assert all(np.abs(ex.camera.R - np.eye(3)).max() > 0.5 and np.linalg.norm(ex.camera.t) > 3000
               for ex in examples)
    out = tmp_path / 'export'
    barecat_store.export_dataset(Pose3DDataset(JointInfo(SMPL_NAMES), examples), out, image_root=data_root)

    archive = barecat.Barecat(out / 'annotations.barecat', readonly=True)
    try:
        values = [doc_unpack(archive[f'train/toy_crops/frame_{k}.jpg_00.msgpack']) for k in range(2)]
    finally:
        archive.close()
    for k, (value, ex) in enumerate(zip(values, examples)):
        params = value['parameters']
        # the current schema: flat pose, neutral entries dropped, world frame kept as stored
        assert params['pose'].shape == (72,) and params['type'] == 'smpl' and params['gender'] == 'neutral'
        assert 'kid_factor' not in params and 'expression' not in params
        assert ('scale' in params) == (k == 1)
        np.testing.assert_array_equal(params['trans'], ex.parameters['trans'])
        np.testing.assert_array_equal(params['pose'], ex.parameters['pose'].reshape(-1))
        assert value['bbox'].dtype == np.int16
        # NLF: world parameters -> crop camera -> forward kinematics
        got_mm = nlf_camera_joints_mm(value, toy_smpl)
        exact_cam_mm = ex.camera.world_to_camera(ex.world_coords)
        np.testing.assert_allclose(got_mm, exact_cam_mm, atol=0.01)
        # ... and the archive's own joints in the archive's camera, as NLF would compare them
        rows = np.asarray(value['joints3d']['rows'], np.float64)
        assert len(value['joints3d']['i_rows']) == 0  # all 24 valid: dense rows
        R = cv2.Rodrigues(np.asarray(value['cam']['rotvec_w2c'], np.float64).reshape(3, 1))[0]
        archive_cam_mm = (rows - value['cam']['loc']) @ R.T
        assert np.abs(got_mm - archive_cam_mm).max() < 1.0
        # the rototranslation is not a no-op: the stored parameters are not camera-frame ones
        untouched = toy_smpl(params['pose'][np.newaxis], params['shape'], params['trans'],
                             return_vertices=False)['joints'][0] * 1000 * float(params.get('scale', 1))
        assert np.abs(untouched - exact_cam_mm).max() > 100


def test_parametric_only_archive_has_no_joints(data_root, tmp_path, toy_smpl):
    """No joints: `joints3d` absent, metadata joint lists and bone lengths empty; our reader gives
    world_coords None and the flat pose."""
    cropped = _parametric_examples(data_root, toy_smpl)[0]
    only_params = Pose3DExample(cropped.image_path, None, cropped.bbox, cropped.camera,
                                parameters=cropped.parameters)
    out = tmp_path / 'export'
    barecat_store.export_dataset(Pose3DDataset(JointInfo([], []), [only_params]), out, image_root=data_root)
    archive = barecat.Barecat(out / 'annotations.barecat', readonly=True)
    try:
        metadata = doc_unpack(archive['metadata.msgpack'])
        value = doc_unpack(archive['train/toy_crops/frame_0.jpg_00.msgpack'])
    finally:
        archive.close()
    assert metadata['joint_names'] == [] and metadata['joint_edges'] == []
    assert list(metadata['train_bone_lengths']) == [] and list(metadata['trainval_bone_lengths']) == []
    assert 'joints3d' not in value and value['parameters']['pose'].shape == (72,)
    np.testing.assert_allclose(nlf_camera_joints_mm(value, toy_smpl),
                               cropped.camera.world_to_camera(cropped.world_coords), atol=0.01)
    store = barecat_store.open_dataset(out, load_images=False)
    got = store.examples[TRAIN][0]
    assert got.world_coords is None and got.parameters['pose'].shape == (72,)
    assert barecat_store.verify(out) == []
    from posepile.show import make_contact_sheet  # `posepile show` draws the crop and box, no skeleton
    sheet, indices = make_contact_sheet(barecat_store.open_dataset(out), n=1, tile_size=64)
    assert sheet.shape == (64, 64, 3) and list(indices) == [0]


def test_neutral_optional_parameters_dropped_others_kept():
    zero = barecat_store.encode_parameters(
        {'type': 'smplx', 'gender': 'female', 'pose': np.zeros((55, 3)), 'shape': np.ones(16), 'trans': [0, 0, 1],
         'kid_factor': 0, 'scale': 1.0, 'expression': np.zeros(10)})
    assert set(zero) == {'type', 'gender', 'pose', 'shape', 'trans'} and zero['pose'].shape == (165,)
    assert zero['shape'].shape == (16,)  # any length, as stored
    kept = barecat_store.encode_parameters(
        {'type': 'smplx', 'gender': 'male', 'pose': np.zeros(165), 'shape': np.ones(11), 'trans': np.zeros(3),
         'kid_factor': 0.4, 'scale': 0.9, 'expression': np.full(10, 0.1)})
    assert kept['kid_factor'] == 0.4 and kept['scale'] == 0.9 and kept['expression'].shape == (10,)
    # an archive of the earlier layout (float32 box, (24, 3) pose, kid_factor 0) still reads
    old = barecat_store.decode_example_original(
        {'impath': 'a/b.jpg', 'bbox': np.array([1.5, 2, 3, 4], np.float32),
         'cam': {'rotvec_w2c': np.zeros(3), 'loc': np.zeros(3), 'intr': np.eye(3)[:2]},
         'parameters': {'type': 'smpl', 'pose': np.zeros((24, 3)), 'shape': np.zeros(10), 'trans': np.zeros(3),
                        'kid_factor': 0.0}}, True, 0)
    assert old.parameters['pose'].shape == (72,) and old.bbox.tolist() == [1.5, 2, 3, 4]
    wacv = barecat_store.decode_example_original(  # the WACV-era writer's uint16 box with a wrapped x
        {'impath': 'a/b.jpg', 'bbox': np.array([65535, 2, 30, 40], np.uint16), 'joints2d': {
            'rows': np.zeros((1, 2), np.float16), 'i_rows': np.array([0], np.uint16)}}, False, 1)
    assert wacv.bbox.tolist() == [-1, 2, 30, 40]
