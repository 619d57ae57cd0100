"""A tiny AGORA release: renders (3840x2160 PNG with dots at the joints), SMPL/SMPLX `<section>_withjv.pkl`
tables pickled in pandas' own layout (written without pandas, see write_dataframe_pickle), colour-coded masks,
seg_rgbs.txt, the per-person SMPL-X fit pickles of `gt_path_smplx` (numpy arrays, plus a torch-tensor entry as
in pickles written with torch objects) and toy SMPL-X models ($DATA_ROOT/body_models/smplx/SMPLX_<GENDER>.npz with
hand means).

The 27 SMPL-X skeleton joints among the dataset's 66 are the toy model's joints of each fit, put into the camera
with AGORA's own projection conventions (written here from AGORA's evaluation code, independently of the
recipe): X_cam = Rx(pitch) Ry(-camYaw) (Ry(Yaw - 90) diag(1, -1, -1) X_fit + unreal2cv2(X, Y, Z) - camPos). The toy
model's rest joints are laid out on a 3 x 9 grid (0.3 m x 0.26 m) and the fits have small body rotations, so that
the rendered dots stay apart; the other 39 joints are dots on a pixel grid right of them.
"""
import collections
import copyreg
import io
import pickle
import types
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

WIDTH, HEIGHT = 3840, 2160
# the first lines of AirSim's docs/seg_rgbs.txt
SEG_RGBS = [(0, 0, 0), (153, 108, 6), (112, 105, 191), (89, 121, 72), (190, 225, 64), (206, 190, 59)]
BACKGROUND = 45.0
DOT_SIGMA_PX = 6.0
SMPLX_SELECTION = (*range(25), 28, 43, *range(55, 67), 68, 71, 73)


# ------------------------------------------------------------------------------------------------
# pandas DataFrame pickles without pandas
class _PandasObject:
    """Instances pickle as the pandas object named by the class's _pickle_as."""
    _pickle_as = None

    def __init__(self, reduced):
        self.reduced = reduced

    def __reduce_ex__(self, protocol):
        return self.reduced


def _pandas_class(module, name):
    return type(name, (_PandasObject,), {'_pickle_as': (module, name)})


DataFrame = _pandas_class('pandas.core.frame', 'DataFrame')
BlockManager = _pandas_class('pandas.core.internals.managers', 'BlockManager')
Index = _pandas_class('pandas.core.indexes.base', 'Index')
RangeIndex = _pandas_class('pandas.core.indexes.range', 'RangeIndex')
new_Index = _pandas_class('pandas.core.indexes.base', '_new_Index')
unpickle_block = _pandas_class('pandas._libs.internals', '_unpickle_block')


class _PandasLayoutPickler(pickle._Pickler):
    """Writes the stand-in classes under their pandas names, and numpy 2's numpy._core.* under numpy 1's
    numpy.core.* (the names in pickles written in 2021)."""
    dispatch = dict(pickle._Pickler.dispatch)
    dispatch[types.FunctionType] = lambda self, obj: self.save_global(obj)
    dispatch[types.BuiltinFunctionType] = lambda self, obj: self.save_global(obj)

    def save_global(self, obj, name=None):
        target = getattr(obj, '_pickle_as', None) if isinstance(obj, type) else None
        if target is None:
            module = getattr(obj, '__module__', None) or pickle.whichmodule(obj, name)
            target = (module, name or obj.__qualname__)
            if not target[0].startswith('numpy._core'):
                return super().save_global(obj, name)
            target = (target[0].replace('numpy._core', 'numpy.core', 1), target[1])
        self.save(target[0])
        self.save(target[1])
        self.write(pickle.STACK_GLOBAL)
        self.memoize(obj)


def _index(labels):
    return Index((new_Index, (Index, {'data': np.array(labels, dtype=object), 'name': None}), None))


def _range_index(n):
    return RangeIndex((new_Index, (RangeIndex, {'name': None, 'start': 0, 'stop': n, 'step': 1}), None))


def _blocks(columns):
    """[(2D values, column positions)]: one float64, int64 and object block like pandas' consolidation."""
    names = list(columns)
    kinds = {}
    for i, name in enumerate(names):
        values = columns[name]
        if all(isinstance(v, float) for v in values):
            kind = np.float64
        elif all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
            kind = np.int64
        else:
            kind = object
        kinds.setdefault(kind, []).append(i)
    blocks = []
    n_rows = len(columns[names[0]])
    for kind, positions in kinds.items():
        values = np.empty((len(positions), n_rows), dtype=kind)
        for k, position in enumerate(positions):
            for row, value in enumerate(columns[names[position]]):
                values[k, row] = value
        blocks.append((values, np.array(positions, np.int64)))
    return blocks


def dataframe_bytes(columns, layout='pandas1.2', protocol=5):
    """Pickle bytes of pandas.DataFrame(columns) as written by pandas 1.2 (BlockManager NEWOBJ + the '0.14.1'
    state tuple) or pandas >= 1.3 ('pandas1.5': BlockManager(blocks, axes), blocks via _unpickle_block)."""
    names = list(columns)
    n_rows = len(columns[names[0]])
    axes = [_index(names), _range_index(n_rows)]
    blocks = _blocks(columns)
    if layout == 'pandas1.2':
        state = ([*axes], [v for v, _ in blocks], [_index([names[i] for i in p]) for _, p in blocks],
                 {'0.14.1': {'axes': [*axes], 'blocks': [{'values': v, 'mgr_locs': p} for v, p in blocks]}})
        manager = BlockManager((copyreg.__newobj__, (BlockManager,), state))
    else:
        reduced_blocks = tuple(_PandasObject((unpickle_block, (v, p, 2))) for v, p in blocks)
        manager = BlockManager((BlockManager, (reduced_blocks, axes)))
    frame_state = {'_mgr': manager, '_typ': 'dataframe', '_metadata': [], 'attrs': {},
                   '_flags': {'allows_duplicate_labels': True}}
    frame = DataFrame((copyreg.__newobj__, (DataFrame,), frame_state))
    buffer = io.BytesIO()
    _PandasLayoutPickler(buffer, protocol).dump(frame)
    return buffer.getvalue()


def write_dataframe_pickle(path, columns, layout='pandas1.2'):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(dataframe_bytes(columns, layout))


# ------------------------------------------------------------------------------------------------
# The release
# (image name, focal mm, table camera (camX, camY, camZ cm, camYaw deg), people) with people as
# (isValid, occlusion %, amodal rectangle [x, y, w, h] px, joint grid rectangle, depth mm)
SCENES = {
    'train_0': [
        ('ag_trainset_renderpeople_bfh_archviz_5_10_cam00_00001.png', 18, (10.0, 20.0, 30.0, 5.0), [
            (True, 10.0, (600, 500, 700, 1300), (650, 550, 600, 1200), 9000.0),
            (True, 30.0, (1100, 600, 800, 1200), (1350, 650, 500, 1100), 11000.0),  # behind person 0 at left
            (False, 0.0, (2600, 500, 600, 1200), (2650, 550, 500, 1100), 9000.0)]),
        ('ag_trainset_3dpeople_bfh_hdri_50mm_5_15_00002.png', 50, (0.0, 0.0, 0.0, 0.0), [
            (True, 80.0, (300, 400, 600, 1200), (350, 450, 500, 1100), 12000.0),  # too occluded
            (True, 5.0, (1200, 900, 80, 300), (1210, 910, 60, 280), 12000.0),  # box side < 100 px
            (True, 0.0, (2000, 400, 700, 1400), (2050, 450, 600, 1300), 10000.0)]),
    ],
    'validation_0': [
        ('ag_validationset_renderpeople_bfh_flowers_5_15_00003.png', 28, (350.0, -120.0, 160.0, 30.0), [
            (True, 20.0, (500, 400, 700, 1400), (550, 450, 600, 1300), 8000.0),
            (True, 40.0, (2200, 500, 700, 1300), (2250, 550, 600, 1200), 8500.0)]),
    ],
}
MAX_OCCLUSION = 75
MIN_SIDE = 100
PX_PER_MM = 0.42  # focal / depth of the people (scaled by their listed depth / 10 m)
GENDERS = ('female', 'male')
SMPLX_SKELETON = (*range(25), 28, 43)
LAYOUT_M = (0.3, 0.26)  # column and row spacing of the toy model's rest skeleton joints
N_MODEL_JOINTS = 55


# ------------------------------------------------------------------------------------------------
# Toy SMPL-X models and fits
def write_toy_smplx(data_root, gender, seed):
    """(arrays, hand means (l, r)) of a toy SMPL-X .npz at data_root/body_models/smplx/SMPLX_<GENDER>.npz: rest
    joints = vertices 0-54 (identity J_regressor), the 27 skeleton joints on a 3 x 9 grid, 10 shape + 10
    expression columns."""
    from tests.toy_bodymodels import toy_arrays, write_npz
    arrays = toy_arrays('smplx', 20, seed)
    rng = np.random.default_rng(seed + 50)
    v_template = arrays['v_template']
    for k, joint in enumerate(SMPLX_SKELETON):
        v_template[joint] = [(k % 3 - 1) * LAYOUT_M[0], (k // 3 - 4) * LAYOUT_M[1], rng.normal(0, 0.05)]
    parents = arrays['kintree_table'][0]
    for joint in range(N_MODEL_JOINTS):
        if joint not in SMPLX_SKELETON:  # finger joints (not rendered): near their parent
            v_template[joint] = v_template[parents[joint]] + rng.normal(0, 0.02, 3)
    regressor = np.zeros_like(arrays['J_regressor'])
    regressor[np.arange(N_MODEL_JOINTS), np.arange(N_MODEL_JOINTS)] = 1
    arrays.update(v_template=v_template, J_regressor=regressor, shapedirs=arrays['shapedirs'] * 0.2)
    means = rng.normal(0, 0.2, 45), rng.normal(0, 0.2, 45)
    path = Path(data_root) / 'body_models' / 'smplx' / f'SMPLX_{gender.upper()}.npz'
    write_npz(path, arrays, hands_meanl=means[0], hands_meanr=means[1])
    return arrays, means


def _rot_y(deg):
    return Rotation.from_rotvec([0, np.deg2rad(deg), 0]).as_matrix()


def unreal2cv2(points):
    return np.roll(np.asarray(points, np.float64), 2, axis=-1) * [1, -1, 1]


def agora_camera(image_name, cam_xyz_cm, cam_yaw_deg):
    """(R, camPos m) of AGORA's projection code for the fake's three kinds of images."""
    if 'hdri' in image_name:
        position, yaw, pitch = unreal2cv2(np.array([0, 0, 170]) / 100), 0.0, 0.0
    elif 'cam00' in image_name:
        position, yaw, pitch = unreal2cv2(np.array([400, -275, 265]) / 100), 135.0, 30.0
    else:
        position, yaw, pitch = unreal2cv2(np.asarray(cam_xyz_cm) / 100) + [0, -1.7, 0], cam_yaw_deg, 0.0
    rotation = Rotation.from_rotvec([np.deg2rad(pitch), 0, 0]).as_matrix() @ _rot_y(-yaw)
    return rotation, position


def _torch_tensor_entry():
    """An object that pickles as a torch tensor does with pickle.dump (rebuilt from a storage's bytes)."""
    rebuild = _pandas_class('torch._utils', '_rebuild_tensor_v2')
    load_from_bytes = _pandas_class('torch.storage', '_load_from_bytes')
    storage = _PandasObject((load_from_bytes, (b'PK\x03\x04 not a real torch.save stream',)))
    return _PandasObject((rebuild, (storage, 0, (1, 32), (32, 1), False, collections.OrderedDict())))


def write_fit(path, fit):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {key: np.asarray(value, np.float32)[None] for key, value in fit.items()}
    data['pose_embedding'] = _torch_tensor_entry()
    buffer = io.BytesIO()
    _PandasLayoutPickler(buffer, 4).dump(data)
    path.write_bytes(buffer.getvalue())


def make_fit(model, means, rng, camera, person_to_world, centre_cam_m, is_kid=False):
    """(fit dict of float32-exact values, camera-frame joints m (55, 3)): a fit whose body faces the camera with
    small rotations and whose 27 skeleton joints are centred at `centre_cam_m`."""
    rot_cam, cam_pos = camera
    rot_person, offset = person_to_world
    to_cam = rot_cam @ rot_person
    root = Rotation.from_matrix(to_cam.T @ Rotation.from_rotvec(rng.normal(0, 0.02, 3)).as_matrix()).as_rotvec()
    fit = dict(global_orient=root, body_pose=rng.normal(0, 0.01, 63), jaw_pose=rng.normal(0, 0.3, 3),
               leye_pose=rng.normal(0, 0.3, 3), reye_pose=rng.normal(0, 0.3, 3),
               left_hand_pose=rng.normal(0, 0.3, 45), right_hand_pose=rng.normal(0, 0.3, 45),
               betas=rng.normal(0, 1, 11 if is_kid else 10), expression=rng.normal(0, 1, 10), transl=np.zeros(3))
    fit = {k: np.asarray(v, np.float32).astype(np.float64) for k, v in fit.items()}

    def camera_joints(transl):
        pose = np.concatenate([fit['global_orient'], fit['body_pose'], fit['jaw_pose'], fit['leye_pose'],
                               fit['reye_pose'], fit['left_hand_pose'] + means[0], fit['right_hand_pose'] + means[1]])
        joints = model(pose[None], fit['betas'][None, :10], transl[None], expression=fit['expression'][None],
                       return_vertices=False)['joints'][0]
        return (rot_cam @ (rot_person @ joints.T + offset[:, None] - cam_pos[:, None])).T

    shift = centre_cam_m - camera_joints(np.zeros(3))[list(SMPLX_SKELETON)].mean(axis=0)
    fit['transl'] = np.asarray(to_cam.T @ shift, np.float32).astype(np.float64)
    return fit, camera_joints(fit['transl'])


def _grid(rect, n=66, n_cols=6):
    x, y, w, h = rect
    n_rows = -(-n // n_cols)
    us, vs = np.meshgrid(np.linspace(x, x + w, n_cols), np.linspace(y, y + h, n_rows))
    return np.stack([us.ravel(), vs.ravel()], axis=1)[:n] + 0.37  # off the pixel grid


def _camera_joints(pixels, depth_mm, focal_px, rng):
    depth = depth_mm + rng.normal(0, 150, len(pixels))
    xy = (pixels - [WIDTH / 2, HEIGHT / 2]) * depth[:, None] / focal_px
    return np.concatenate([xy, depth[:, None]], axis=1)


def _render_dots(pixels_list):
    canvas = np.full((HEIGHT, WIDTH), BACKGROUND, np.float32)
    r = int(4 * DOT_SIGMA_PX)
    for pixels in pixels_list:
        for u, v in pixels:
            x0, y0 = int(u) - r, int(v) - r
            ys, xs = np.mgrid[y0:y0 + 2 * r + 1, x0:x0 + 2 * r + 1]
            canvas[y0:y0 + 2 * r + 1, x0:x0 + 2 * r + 1] += 200 * np.exp(
                -((xs - u) ** 2 + (ys - v) ** 2) / (2 * DOT_SIGMA_PX ** 2))
    return np.repeat(np.clip(canvas, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def _write_png(path, image):
    import cv2
    path.parent.mkdir(parents=True, exist_ok=True)
    if image.ndim == 3:
        image = image[..., ::-1]
    assert cv2.imwrite(str(path), np.ascontiguousarray(image), [cv2.IMWRITE_PNG_COMPRESSION, 1])


def _mask_path(root, image_name, i_file):
    from posepile.ds.agora.main import MASK_NAME_PATTERN
    m = MASK_NAME_PATTERN.match(image_name)
    phase = 'train' if 'trainset' in image_name else 'validation'
    return Path(root) / phase / m['scene'] / f'{m["name"]}_mask{m["cam"]}_{int(m["num"]):06d}_{i_file:05d}.png'


def _write_masks(root, image_name, people):
    label = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    label[:] = (255, 0, 0)
    for i_person in sorted(range(len(people)), key=lambda i: -people[i][4]):  # far to near
        x, y, w, h = people[i_person][2]
        label[y:y + h, x:x + w] = SEG_RGBS[i_person]
        amodal = np.zeros((HEIGHT, WIDTH), np.uint8)
        amodal[y:y + h, x:x + w] = 255
        _write_png(_mask_path(root, image_name, i_person + 1), amodal)
    _write_png(_mask_path(root, image_name, 0), label)
    return label


def _modal_box(label, i_person, rect):
    x, y, w, h = rect
    inside = np.zeros(label.shape[:2], bool)
    inside[y:y + h, x:x + w] = True
    ys, xs = np.nonzero(np.all(label == SEG_RGBS[i_person], axis=-1) & inside)
    return np.array([xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1], np.float64)


def _project(cam_mm, focal_px):
    return cam_mm[:, :2] / cam_mm[:, 2:] * focal_px + [WIDTH / 2, HEIGHT / 2]


def _person_joints(root, image_name, focal_px, camera, person, rng, models, i_global):
    """(SMPL table joints (45, 3) m, SMPL-X table joints (127, 3) m, the 66 dataset joints mm, fit truth)."""
    _, _, _, (x, y, w, h), depth = person
    depth = focal_px / PX_PER_MM * depth / 10000
    gender = GENDERS[i_global % 2]
    model, means = models[gender]
    yaw, location_cm = float(rng.uniform(0, 360)), np.array([rng.uniform(-500, 500), rng.uniform(-500, 500), 0.0])
    person_to_world = (_rot_y(yaw - 90) @ np.diag([1.0, -1, -1]), unreal2cv2(location_cm / 100))
    centre_px = np.array([x + 0.27 * w, y + h / 2])
    centre_cam = np.array([*(centre_px - [WIDTH / 2, HEIGHT / 2]) / focal_px * depth, depth]) / 1000
    fit, smplx_cam_m = make_fit(model, means, rng, camera, person_to_world, centre_cam)
    other_px = _grid((x + 0.62 * w, y, 0.38 * w, h), n=39, n_cols=3)
    other_mm = _camera_joints(other_px, depth, focal_px, rng)
    full_smpl = np.concatenate([other_mm[:24], rng.normal(0, 300, (21, 3)) + [0, 0, depth]]) / 1000
    full_smplx = (rng.normal(0, 300, (127, 3)) + [0, 0, depth]) / 1000
    full_smplx[:N_MODEL_JOINTS] = smplx_cam_m
    full_smplx[list(SMPLX_SELECTION[27:])] = other_mm[24:] / 1000
    cam_mm = np.concatenate([full_smpl[:24], full_smplx[list(SMPLX_SELECTION)]]) * 1000
    fit_relpath = f'smplx_gt/{Path(image_name).stem}/person_{i_global:02d}/person_{i_global:02d}.obj'
    write_fit(Path(root) / Path(fit_relpath).with_suffix('.pkl'), fit)
    table = dict(gt_path_smplx=fit_relpath, gt_path_smpl=fit_relpath.replace('smplx', 'smpl'), gender=gender,
                 kid=False, Yaw=yaw, X=location_cm[0], Y=location_cm[1], Z=location_cm[2])
    return full_smpl, full_smplx, cam_mm, dict(fit=fit, gender=gender, hand_means=means, table=table)


def write_fake_release(root, layouts=('pandas1.2', 'pandas1.5'), images=True):
    """Writes the release under `root` (= $DATA_ROOT/agora) and the toy SMPL-X models under root/../body_models.
    Returns {section: [dict(image, i_person, kept, cam_mm (66, 3) camera-frame joints, modal box, fit, gender,
    hand_means)]} for every person of the tables."""
    from posepile import bodymodels
    root = Path(root)
    rng = np.random.default_rng(0)
    models = {}
    for i, gender in enumerate(GENDERS):
        _, means = write_toy_smplx(root.parent, gender, seed=3 + i)
        models[gender] = bodymodels.load('smplx', gender, root.parent / 'body_models' / 'smplx'), means
    i_global = 0
    (root / 'seg_rgbs.txt').parent.mkdir(parents=True, exist_ok=True)
    (root / 'seg_rgbs.txt').write_text(''.join(f'{i}\t[{r}, {g}, {b}]\n' for i, (r, g, b) in enumerate(SEG_RGBS)))
    truth = {}
    for (section, scenes), layout in zip(SCENES.items(), layouts * len(SCENES)):
        smpl = {k: [] for k in ('imgPath', 'X', 'Y', 'Z', 'Yaw', 'gender', 'kid', 'occlusion', 'isValid', 'camX',
                                'camY', 'camZ', 'camYaw', 'gt_joints_2d', 'gt_joints_3d', 'gt_verts', 'gt_path_smpl',
                                'gt_path_smplx')}
        smplx = {k: [] for k in smpl}
        truth[section] = []
        for image_name, focal_mm, (cam_x, cam_y, cam_z, cam_yaw), people in scenes:
            focal_px = focal_mm / 36 * WIDTH
            camera = agora_camera(image_name, (cam_x, cam_y, cam_z), cam_yaw)
            joints_3d, joints_3d_x, all_pixels, person_columns = [], [], [], []
            for person in people:
                valid, occlusion, rect = person[:3]
                full_smpl, full_smplx, cam_mm, fit_truth = _person_joints(root, image_name, focal_px, camera, person,
                                                                          rng, models, i_global)
                i_global += 1
                all_pixels.append(_project(cam_mm, focal_px))
                joints_3d.append(full_smpl)
                joints_3d_x.append(full_smplx)
                person_columns.append(fit_truth.pop('table'))
                truth[section].append(dict(image=image_name, cam_mm=cam_mm, valid=valid, occlusion=occlusion,
                                           rect=rect, **fit_truth))
            for table, joints in ((smpl, joints_3d), (smplx, joints_3d_x)):
                n = len(people)
                table['imgPath'].append(image_name)
                for key in ('X', 'Y', 'Z', 'Yaw', 'gender', 'kid', 'gt_path_smpl', 'gt_path_smplx'):
                    table[key].append([columns[key] for columns in person_columns])
                for key, value in (('occlusion', [p[1] for p in people]),
                                   ('isValid', [p[0] for p in people]),
                                   ('gt_joints_2d', [np.zeros((len(j), 2)) for j in joints]),
                                   ('gt_joints_3d', joints), ('gt_verts', [np.zeros((10, 3)) for _ in joints])):
                    table[key].append(value)
                for key, value in (('camX', cam_x), ('camY', cam_y), ('camZ', cam_z), ('camYaw', cam_yaw)):
                    table[key].append(value)
            label = _write_masks(root, image_name, people)
            for i_person, person in enumerate(truth[section][-len(people):]):
                person['i_person'] = i_person
                person['box'] = _modal_box(label, i_person, person['rect'])
                person['kept'] = bool(person['valid'] and person['occlusion'] <= MAX_OCCLUSION and
                                      min(person['box'][2:]) >= MIN_SIDE)
            if images:
                subdir = section if section.startswith('train') else 'validation'
                _write_png(root / subdir / image_name, _render_dots(all_pixels))
        write_dataframe_pickle(root / 'SMPL' / f'{section}_withjv.pkl', smpl, layout)
        write_dataframe_pickle(root / 'SMPLX' / f'{section}_withjv.pkl', smplx, layout)
    return truth
