"""posepile/ds/bedlam/main.sh end to end on a fake BEDLAM release (neutral SMPL-X labels, mp4 per sequence, env
masks, a closeup scene rendered rotated)."""
import numpy as np
import pytest

from tests import faults
from tests.fakes import bedlam as fake
from tests.fakes.genebody import forward_kinematics
from tests.markers import dot_errors
from tests.test_freeman_recipe import n_kept
from tests.toy_bodymodels import PARENTS


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    data_root = tmp_path_factory.mktemp('bedlam_data')
    written = fake.write_fake_release(data_root)
    result = faults.run_recipe('bedlam', data_root, env_extra={'POSEPILE_WORKERS': '1'})
    assert result.returncode == 0, result.stderr[-3000:]
    from posepile.storage.annotations import load_dataset
    return data_root, written, load_dataset(data_root / 'cache' / 'bedlam.posepile')


def test_counts(built):
    """Per body the sampler on its camera-frame joints (computed here); bodies whose box is under 100 px dropped."""
    _, written, dataset = built
    expected = 0
    for scene in fake.SCENES:
        for body in (0, 1):
            rows = [r for r in written['rows'] if r['scene'] == scene and r['body'] == body]
            kept = n_kept(np.stack([r['joints_cam_m'] * 1000 for r in rows]))
            assert all((r['box_side'] < 100) == (body == 1) for r in rows)
            expected += kept if body == 0 else 0
    assert len(dataset.examples[0]) == expected >= 4
    assert not dataset.joint_info.names
    for example in dataset.examples[0]:
        assert example.world_coords is None and example.parameters['type'] == 'smplx'
        assert example.parameters['gender'] == 'neutral' and len(example.parameters['shape']) == 11
        from posepile.util import masks
        assert masks.decode(example.mask).sum() > 10  # the people mask (not the environment)


def test_world_parameters_round_trip_to_the_dots(built):
    """World parameters -> example camera (rototranslate) -> forward kinematics here -> pixels of the crop: the
    dots drawn in the (rotated, for the closeup) frames sit there within 0.5 px."""
    from posepile import bodymodels
    data_root, written, dataset = built
    model = bodymodels.load('smplx', 'neutral', data_root / 'body_models')
    errors = {scene: [] for scene in fake.SCENES}
    for example in dataset.examples[0]:
        camera = example.camera
        in_camera = bodymodels.rototranslate(example.parameters, camera.R, camera.t / 1000, model=model)
        p = {k: np.float64(v) for k, v in in_camera.items() if k in ('pose', 'shape', 'trans')}
        joints = forward_kinematics(written['model'], PARENTS['smplx'], p['pose'], p['shape'], p['trans'])
        K = camera.intrinsic_matrix
        pixels = joints[:, :2] / joints[:, 2:] @ K[:2, :2].T + K[:2, 2]
        radius = max(3, int(round(3 * K[0, 0] / fake.FOCAL_PX)))
        errors[example.scene_name] += dot_errors(data_root / example.image_path, pixels, radius)
    for scene, scene_errors in errors.items():
        assert len(scene_errors) > 10, (scene, len(scene_errors))
        assert np.median(scene_errors) < 0.5 and np.max(scene_errors) < 1.5, (scene, np.median(scene_errors))


def test_truncated_labels_is_one_line(tmp_path):
    fake.write_fake_release(tmp_path)
    path = tmp_path / 'bedlam/all_npz_12_training' / f'{fake.SCENES[0]}_6fps.npz'
    path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])
    result = faults.run_recipe('bedlam', tmp_path)
    faults.assert_one_line_failure(result, str(path))
