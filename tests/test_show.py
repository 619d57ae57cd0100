import numpy as np

from posepile.datasets3d import TRAIN, Pose3DDataset, Pose3DExample
from posepile.joint_info import JointInfo
from posepile.show import make_contact_sheet, write_html, write_png
from posepile.util import masks
from posepile.util.camera import Camera


def _dataset(n=5):
    ji = JointInfo('pelv,lhip,rhip,lkne,rkne,neck', 'pelv-lhip-lkne,pelv-neck')
    cam = Camera([0, 0, 0], np.eye(3), [[200, 0, 49.5], [0, 200, 59.5], [0, 0, 1]], world_up=(0, -1, 0))
    coords = np.array([[0, 0, 2000], [120, 0, 2000], [-120, 0, 2000], [120, 400, 2000], [-120, 400, 2000],
                       [0, -450, 2000]], np.float32)
    mask = np.zeros((120, 100), bool)
    mask[20:100, 30:70] = True
    examples = [Pose3DExample(f'{i}.jpg', coords, [20, 10, 60, 100], cam, mask=masks.encode(mask),
                              image=np.full((120, 100, 3), 50, np.uint8)) for i in range(n)]
    return Pose3DDataset(ji, examples)


def test_contact_sheet_draws_skeleton_masks_and_side_views(tmp_path):
    ds = _dataset()
    sheet, indices = make_contact_sheet(ds, TRAIN, n=5, tile_size=100, n_side_views=2)
    assert list(indices) == [0, 1, 2, 3, 4]
    # 5 crops + 2 side views = 7 tiles in a 3x3 grid.
    assert sheet.shape == (300, 300, 3)
    tile = sheet[:100, :100].astype(int)
    # Left side drawn red, right side blue, the masked region tinted yellow-ish.
    left_knee = ds.examples[TRAIN][0].camera.world_to_image(ds.examples[TRAIN][0].world_coords[3]) * (100 / 120) + [8, 0]
    u, v = np.round(left_knee).astype(int)
    assert tile[v, u, 0] > 200 and tile[v, u, 2] < 150
    right_knee = ds.examples[TRAIN][0].camera.world_to_image(ds.examples[TRAIN][0].world_coords[4]) * (100 / 120) + [8, 0]
    u, v = np.round(right_knee).astype(int)
    assert tile[v, u, 2] > 200
    masked_pixel, unmasked_pixel = tile[20, 40], tile[5, 20]
    assert masked_pixel[0] > unmasked_pixel[0] + 50 and masked_pixel[1] > unmasked_pixel[1] + 40
    # Side views are not empty.
    side = sheet[200:300, 0:100]
    assert np.count_nonzero(side.max(-1) > 100) > 50
    out = tmp_path / 'sheet.png'
    write_png(out, sheet)
    write_html(ds, TRAIN, indices, out, tmp_path / 'sheet.html', large_size=128)
    assert out.stat().st_size > 1000
    assert len(list((tmp_path / 'sheet_large').glob('*.png'))) == 5
    assert 'sheet_large/000003.png' in (tmp_path / 'sheet.html').read_text()
