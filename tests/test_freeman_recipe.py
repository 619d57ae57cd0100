"""posepile/ds/freeman/main.sh end to end on a fake FreeMan release (8 views, COCO-17 in cm, one-pass video)."""
import numpy as np
import pytest

from tests import faults
from tests.fakes import freeman as fake
from tests.markers import dot_errors


def n_kept(poses_mm, threshold_mm=100):
    """The sampler written out for a track without missing joints and a buffer longer than it: keep the first
    frame, then a frame that moved >= threshold in some joint away from EVERY frame kept so far."""
    kept = [poses_mm[0]]
    for pose in poses_mm[1:]:
        if min(np.max(np.linalg.norm(pose - old, axis=-1)) for old in kept) >= threshold_mm:
            kept.append(pose)
    return len(kept)


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    data_root = tmp_path_factory.mktemp('freeman_data')
    written = fake.write_fake_release(data_root / 'freeman')
    result = faults.run_recipe('freeman', data_root, env_extra={'POSEPILE_WORKERS': '1'})
    assert result.returncode == 0, result.stderr[-3000:]
    from posepile.storage.annotations import load_dataset
    return data_root, written, load_dataset(data_root / 'cache' / 'freeman.posepile')


def test_counts_splits_and_units(built):
    data_root, written, dataset = built
    expected = {split: sum(8 * n_kept(written[s]['joints_cm'] * 10) for s in fake.SESSIONS[name])
                for split, name in ((0, 'train.txt'), (1, 'validation.txt'))}
    assert 8 < expected[0] < 8 * 2 * 8 and expected[1] > 0  # the sampler drops some frames, not all
    assert len(dataset.examples[0]) == expected[0] and len(dataset.examples[1]) == expected[1]
    assert not dataset.examples[2]  # test.txt sessions are not used
    assert dataset.joint_info.names[:3] == ['nose', 'leye', 'reye'] and len(dataset.joint_info.names) == 17
    for example in dataset.examples[0][:10]:
        session, view, frame = example.image_path.split('/')[1:4]
        frame = int(frame.split('.')[0])
        np.testing.assert_allclose(example.world_coords, written[session]['joints_cm'][frame] * 10, atol=1e-3)
        rvec, tvec_cm, _, _ = written[session]['cameras'][view]  # the crop camera keeps the optical centre
        # the optical centre in mm: -R^T t with t in cm x 10
        np.testing.assert_allclose(example.camera.t, -fake.cv2.Rodrigues(rvec)[0].T @ tvec_cm * 10, atol=1e-3)


def test_dots_sit_at_the_projected_joints(built):
    data_root, _, dataset = built
    errors = []
    for example in dataset.examples[0][::3] + dataset.examples[1][::3]:
        projected = example.camera.world_to_image(example.world_coords)
        radius = max(3, int(round(3 * example.camera.intrinsic_matrix[0, 0] / fake.FOCAL_PX)))
        errors += dot_errors(data_root / example.image_path, projected, radius)
    assert len(errors) > 20, len(errors)
    assert np.median(errors) < 0.5 and np.max(errors) < 1.5, (np.median(errors), np.max(errors))


def test_truncated_keypoints_is_one_line(tmp_path):
    fake.write_fake_release(tmp_path / 'freeman', n_frames=4)
    path = tmp_path / 'freeman/30FPS/keypoints3d' / f'{fake.SESSIONS["train.txt"][0]}.npy'
    path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])
    result = faults.run_recipe('freeman', tmp_path)
    faults.assert_one_line_failure(result, str(path))
