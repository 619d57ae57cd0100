"""posepile/ds/mri/main.sh end to end on a fake mRI release (mirrored colour-0 videos, labels in metres)."""
import numpy as np
import pytest

from tests import faults
from tests.fakes import mri as fake
from tests.markers import dot_errors
from tests.test_freeman_recipe import n_kept


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    data_root = tmp_path_factory.mktemp('mri_data')
    written = fake.write_fake_release(data_root / 'mri')
    result = faults.run_recipe('mri', data_root, env_extra={'POSEPILE_WORKERS': '1'})
    assert result.returncode == 0, result.stderr[-3000:]
    from posepile.storage.annotations import load_dataset
    return data_root, written, load_dataset(data_root / 'cache' / 'mri.posepile')


def test_counts_units_and_camera(built):
    data_root, written, dataset = built
    # the all-zero rows (outside gt_avail_frames) are no frames; the sampler on the rest (buffer 500 > length)
    expected = {s: n_kept(j[2:12] * 1000) for s, j in written.items()}
    assert 1 < expected['subject1'] < 10
    assert len(dataset.examples[0]) == sum(expected.values())
    for example in dataset.examples[0]:
        subject, frame = example.image_path.split('/')[1], int(example.image_path.split('/')[2][:6])
        assert 2 <= frame <= 11
        np.testing.assert_allclose(example.world_coords, written[subject][frame] * 1000, atol=0.05)
        np.testing.assert_allclose(example.camera.t, 0, atol=1e-6)  # camera 1 is the labels' origin
        assert example.camera.world_up.tolist() == [0, 1, 0]


def test_dots_sit_at_the_projected_joints_of_the_unmirrored_frame(built):
    """The videos are mirrored; crops from un-mirrored frames put the dots at the projected joints (a crop of the
    mirrored frame would put them tens of px away)."""
    data_root, _, dataset = built
    errors = []
    for example in dataset.examples[0]:
        projected = example.camera.world_to_image(example.world_coords)
        radius = max(3, int(round(3 * example.camera.intrinsic_matrix[0, 0] / fake.CAM1_K[0, 0])))
        errors += dot_errors(data_root / example.image_path, projected, radius)
    assert len(errors) > 20, len(errors)
    assert np.median(errors) < 0.5 and np.max(errors) < 1.5, (np.median(errors), np.max(errors))


def test_truncated_labels_is_one_line(tmp_path):
    fake.write_fake_release(tmp_path / 'mri', n_frames=6, gt_range=(1, 4))
    path = tmp_path / 'mri/label_dict/subject2_all_labels.cpl'
    path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])
    result = faults.run_recipe('mri', tmp_path)
    faults.assert_one_line_failure(result, str(path))
