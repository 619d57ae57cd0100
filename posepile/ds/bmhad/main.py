"""Berkeley MHAD: multi-camera Bayer frames and Kinect colour frames with optical mocap markers.

Raw layout under $DATA_ROOT/bmhad (as the original PosePile read it; s = subject 1-12, a = action 1-11,
r = repetition 1-5, all two-digit):
    Camera/Cluster<c>/Cam<k>/S<s>/A<a>/R<r>/img_l<c>_c<k>_s<s>_a<a>_r<r>_<i:05d>.pgm
                              8-bit Bayer mosaic (2x2 tile G B / R G: 'GB' pattern), 640x480, clusters 01-04
    Kinect/Kin<k>/S<s>/A<a>/R<r>/kin_k<k>_s<s>_a<a>_r<r>_color_<i:05d>.ppm          Kinect colour, k = 01, 02
    Camera/Correspondences/corr_moc_img_s<s>_a<a>_r<r>.txt            one row per camera frame i (row i),
    Kinect/Correspondences/corr_moc_kin<k>_s<s>_a<a>_r<r>.txt         3rd column = the mocap sample index
    Mocap/OpticalData/moc_s<s>_a<a>_r<r>.c3d                          43 markers, mm (480 Hz)
    Calibration/RwTw_<cluster>.txt     'Rw=<9 numbers> \\nTw=<3 numbers> \\n': world -> cluster (mm)
    Calibration/camcfg_<cluster>.yml   OpenCV YAML: 'Number of cameras', Camera_<k>: K (3x3), Dist (4,
                                       OpenCV k1 k2 p1 p2), PosRel (t (mm), then rotation vector: cluster ->
                                       camera); clusters l01-l04 and k01, k02 (the Kinects)
Camera extrinsics = [R(PosRel) | t] @ [Rw | Tw]. World: the mocap axes remapped as the original
((x, y, z) -> (-x, z, y), y up). A marker missing in the C3D (NaN, or exactly at the origin) is NaN.

Bayer demosaicing: we ASSUME the mosaic's first row is G B G B..., the second R G R G... OpenCV names Bayer
codes by the 2nd and 3rd pixels of the SECOND row, so this tile is OpenCV's 'GR' pattern: COLOR_BayerGR2RGB
gives RGB (tested on a synthetic mosaic in tests/test_bmhad_recipe.py). The original converted with
COLOR_BAYER_GB2RGB (OpenCV's G R / B G tile) and wrote the result as RGB. One of the two swaps red and blue;
no real frame was available to settle which (docs/fidelity.md, bmhad: UNSURE).

Takes missing upstream (the dataset website lists them) are skipped with a logged reason: s04_a08_r05
everywhere, s05_a02_r05 and s10_a08_r05 in clusters l03 and l04. Selection per take (shared by the cameras
of a cluster): AdaptivePoseSampler2(100 mm, check_validity, NaN unchanged, buffer = the take's frame count),
as the original. Box: projected markers' box x1.05. All examples are TRAIN.

Stages: select (selection.json), frames (the selected frames decoded - Bayer demosaiced, PPM read - and
written as JPEG q92 to posepile_work/frames/, as the original's conversion, but only the selected ones),
crop, assemble.
"""
import itertools
import logging
import re
from pathlib import Path

import numpy as np

from posepile.preproc import pipeline
from posepile.util.errors import InputError

NAME = 'bmhad'
# the 43 markers in the C3D order, names as the original (mixes match joints by name)
JOINT_NAMES = ('head,lhead,rhead,rback,backl,backt,lback,lside,bell,chest,rside,lsho1,lsho2,larm,'
               'lelb,lwri,lhan1,lhan2,lhan3,rsho1,rsho2,rarm,relb,rwri,rhan1,rhan2,rhan3,lhipb,'
               'lhipf,lhipl,lleg,lkne,lank,lhee,lfoo,rhipb,rhipf,rhipl,rleg,rkne,rank,rhee,rfoo')
# the original's edges, with the comma its string lacked ('bell-chest' was glued to the next path)
JOINT_EDGES = ('head-rhead,lsho1-rsho1-rsho2-rarm-relb-rwri-rhan3,rhan1-rwri-rhan2,'
               'lhipb-rhipb-rhipl-rhipf-rleg-rkne-rank-rhee-rfoo,bell-rside-rhipf,bell-chest,'
               'backl-rback-rhipb,backl-backt')
N_MARKERS = 43
CLUSTERS = ('l01', 'l02', 'l03', 'l04', 'k01', 'k02')
SUBJECTS, ACTIONS, REPETITIONS = range(1, 13), range(1, 12), range(1, 6)
MISSING_EVERYWHERE = {(4, 8, 5)}
MISSING_IN_CLUSTERS = {(5, 2, 5): ('l03', 'l04'), (10, 8, 5): ('l03', 'l04')}
# mocap axes -> world axes (x -> -x, y <-> z), as the original
AXIS_REMAP = np.array([[-1, 0, 0], [0, 0, 1], [0, 1, 0]], np.float64)
WORLD_UP = (0, 1, 0)
IMAGE_SHAPE = (480, 640)  # height, width (px) of both kinds of frames
SELECTION_THRESHOLD_MM = 100
BOX_EXPANSION = 1.05
FRAME_JPEG_QUALITY = 92
MAX_ABS_COORD_MM = 20000

logger = logging.getLogger(__name__)


class BmhadFormatError(InputError):
    """A raw Berkeley MHAD file is malformed (the message names the file)."""


def raw_root(data_root=None):
    return pipeline.raw_root(NAME, data_root)


def work_dir(data_root=None):
    return pipeline.work_dir(NAME, data_root)


def take_name(take):
    s, a, r = take
    return f's{s:02d}_a{a:02d}_r{r:02d}'


def missing_upstream(take, cluster):
    """The reason a take is missing upstream for a cluster, or None."""
    if tuple(take) in MISSING_EVERYWHERE:
        return f'{take_name(take)} is missing in the release (all cameras)'
    if cluster in MISSING_IN_CLUSTERS.get(tuple(take), ()):
        return f'{take_name(take)} is missing in the release for cluster {cluster}'
    return None


# ------------------------------------------------------------------------------------------------
# Readers
def load_mocap(c3d_path):
    """float32 (T, 43, 3) world mm (axes remapped, y up) from a C3D file; missing markers NaN."""
    import ezc3d
    c3d_path = Path(c3d_path)
    if not c3d_path.exists():
        raise FileNotFoundError(f'mocap file not found: {c3d_path}')
    from posepile.util import c3d as c3d_header
    c3d_header.check_complete(c3d_path, BmhadFormatError)  # ezc3d crashes the process on truncated files
    try:
        c3d = ezc3d.c3d(str(c3d_path))
        points = np.asarray(c3d['data']['points'], np.float64)
        units = list(c3d['parameters']['POINT']['UNITS']['value'] or ['mm'])
    except Exception as e:  # noqa: BLE001 - ezc3d raises plain RuntimeError/IOError on bad files
        raise BmhadFormatError(f'{c3d_path}: cannot read C3D ({e})') from None
    if points.ndim != 3 or points.shape[0] < 3 or points.shape[1] != N_MARKERS or points.shape[2] == 0:
        raise BmhadFormatError(f'{c3d_path}: {points.shape[1] if points.ndim == 3 else "?"} markers x '
                               f'{points.shape[-1]} samples, expected {N_MARKERS} markers')
    coords = points[:3].transpose(2, 1, 0)
    if str(units[0]).strip().lower() == 'm':
        coords = coords * 1000
    coords[np.all(coords == 0, axis=-1)] = np.nan
    if np.nanmax(np.abs(coords), initial=0) > MAX_ABS_COORD_MM:
        raise BmhadFormatError(f'{c3d_path}: marker coordinates reach {np.nanmax(np.abs(coords)):.0f}: not mm')
    return (coords @ AXIS_REMAP.T).astype(np.float32)


def load_correspondence(txt_path, n_mocap):
    """int64 (N,) mocap sample index of each frame (row i = frame i; the 3rd column)."""
    txt_path = Path(txt_path)
    if not txt_path.exists():
        raise FileNotFoundError(f'correspondence file not found: {txt_path}')
    try:
        table = np.loadtxt(txt_path, ndmin=2)
    except ValueError as e:
        raise BmhadFormatError(f'{txt_path}: not a numeric table ({e})') from None
    if table.shape[0] == 0 or table.shape[1] < 3:
        raise BmhadFormatError(f'{txt_path}: {table.shape[1]} columns, expected >= 3 (3rd = mocap index)')
    indices = table[:, 2]
    if not np.all(np.isfinite(indices)) or np.any(indices != np.round(indices)):
        raise BmhadFormatError(f'{txt_path}: the mocap indices (3rd column) are not integers')
    indices = indices.astype(np.int64)
    if indices.min() < 0 or indices.max() >= n_mocap:
        raise BmhadFormatError(f'{txt_path}: mocap index {indices.max()} outside the {n_mocap} mocap samples')
    return indices


def read_cluster_extrinsics(txt_path):
    """4x4 world -> cluster transform (mm) from RwTw_<cluster>.txt."""
    txt_path = Path(txt_path)
    text = txt_path.read_text()
    match_r = re.search(r'^\s*Rw\s*=(.*)$', text, flags=re.MULTILINE)
    match_t = re.search(r'^\s*Tw\s*=(.*)$', text, flags=re.MULTILINE)
    try:
        rotation = np.array(match_r.group(1).split(), np.float64).reshape(3, 3)
        translation = np.array(match_t.group(1).split(), np.float64).reshape(3)
    except (AttributeError, ValueError):
        raise BmhadFormatError(f'{txt_path}: expected lines "Rw=<9 numbers>" and "Tw=<3 numbers>"') from None
    _check_rotation(txt_path, 'Rw', rotation)
    return np.block([[rotation, translation[:, None]], [np.zeros((1, 3)), np.ones((1, 1))]])


def _check_rotation(path, what, rotation):
    if not np.all(np.isfinite(rotation)) or not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-3) or \
            np.linalg.det(rotation) < 0:
        raise BmhadFormatError(f'{path}: {what} is not a rotation matrix')


def _yaml_matrix(yml_path, node, name, size):
    child = node.getNode(name)
    value = None if child.empty() else child.mat()
    if value is None or value.size != size or not np.all(np.isfinite(value)):
        raise BmhadFormatError(f'{yml_path}: {name} must hold {size} finite numbers')
    return np.asarray(value, np.float64).reshape(-1)


def load_cluster_cameras(calibration_dir, cluster):
    """[Camera] of one cluster (mm, world y up) from RwTw_<cluster>.txt and camcfg_<cluster>.yml."""
    import cv2

    from posepile.util.camera import Camera
    extrinsics = read_cluster_extrinsics(Path(calibration_dir) / f'RwTw_{cluster}.txt')
    yml_path = Path(calibration_dir) / f'camcfg_{cluster}.yml'
    if not yml_path.exists():
        raise FileNotFoundError(f'camera configuration not found: {yml_path}')
    try:
        storage = cv2.FileStorage(str(yml_path), cv2.FILE_STORAGE_READ)
    except cv2.error as e:
        raise BmhadFormatError(f'{yml_path}: not an OpenCV YAML file ({e.msg.strip()})') from None
    count_node = storage.getNode('Number of cameras')
    if count_node.empty() or not count_node.isInt() or count_node.real() < 1:
        raise BmhadFormatError(f"{yml_path}: 'Number of cameras' is missing or not a positive integer")
    cameras = []
    for i_camera in range(int(count_node.real())):
        node = storage.getNode(f'Camera_{i_camera + 1}')
        if node.empty():
            raise BmhadFormatError(f'{yml_path}: Camera_{i_camera + 1} is missing')
        intrinsics = _yaml_matrix(yml_path, node, 'K', 9).reshape(3, 3)
        distortion = _yaml_matrix(yml_path, node, 'Dist', 4)
        translation, rotvec = np.split(_yaml_matrix(yml_path, node, 'PosRel', 6), [3])
        relative = np.eye(4)
        relative[:3, :3] = cv2.Rodrigues(rotvec)[0]
        relative[:3, 3] = translation
        cameras.append(Camera(extrinsic_matrix=relative @ extrinsics, intrinsic_matrix=intrinsics,
                              distortion_coeffs=distortion, world_up=WORLD_UP))
    storage.release()
    return cameras


def read_pgm(path):
    """uint8 (H, W) raw image of an 8-bit binary PGM (P5), checked against its header."""
    path = Path(path)
    data = path.read_bytes()
    match = re.match(rb'P5\s+(?:#[^\n]*\n\s*)*(\d+)\s+(?:#[^\n]*\n\s*)*(\d+)\s+(?:#[^\n]*\n\s*)*(\d+)\s', data)
    if not match:
        raise BmhadFormatError(f'{path}: not a binary PGM (P5) file')
    width, height, maxval = (int(g) for g in match.groups())
    if maxval > 255:
        raise BmhadFormatError(f'{path}: {maxval = }, expected an 8-bit PGM')
    pixels = np.frombuffer(data, np.uint8, offset=match.end())
    if pixels.size < width * height:
        raise BmhadFormatError(f'{path}: {pixels.size} bytes of pixels, the header promises {width}x{height}')
    return pixels[:width * height].reshape(height, width)


def demosaic(raw):
    """RGB uint8 from the 'GB' Bayer mosaic (tile G B / R G); OpenCV calls this tile 'GR'."""
    import cv2
    return cv2.cvtColor(raw, cv2.COLOR_BayerGR2RGB)


def read_frame(path):
    """RGB uint8 of a camera frame (.pgm, demosaiced) or a Kinect colour frame (.ppm)."""
    import cv2
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f'frame not found: {path}')
    if path.suffix == '.pgm':
        image = demosaic(read_pgm(path))
    else:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise BmhadFormatError(f'{path}: cannot decode the image')
        image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if image.shape[:2] != IMAGE_SHAPE:
        raise BmhadFormatError(f'{path}: {image.shape[1]}x{image.shape[0]} px, expected '
                               f'{IMAGE_SHAPE[1]}x{IMAGE_SHAPE[0]}')
    return image


# ------------------------------------------------------------------------------------------------
# Paths of a take
def frame_relpath(cluster, i_camera, take, i_frame):
    """Path of a frame relative to the raw root."""
    t = take_name(take)
    s, a, r = take
    sub = f'S{s:02d}/A{a:02d}/R{r:02d}'
    if cluster.startswith('k'):
        k = int(cluster[1:])
        return f'Kinect/Kin{k:02d}/{sub}/kin_k{k:02d}_{t}_color_{i_frame:05d}.ppm'
    c = int(cluster[1:])
    return f'Camera/Cluster{c:02d}/Cam{i_camera + 1:02d}/{sub}/img_l{c:02d}_c{i_camera + 1:02d}_{t}_{i_frame:05d}.pgm'


def correspondence_path(root, cluster, take):
    if cluster.startswith('k'):
        return Path(root) / 'Kinect/Correspondences' / f'corr_moc_kin{int(cluster[1:]):02d}_{take_name(take)}.txt'
    return Path(root) / 'Camera/Correspondences' / f'corr_moc_img_{take_name(take)}.txt'


def mocap_path(root, take):
    return Path(root) / 'Mocap/OpticalData' / f'moc_{take_name(take)}.c3d'


def find_takes(root):
    """The takes whose mocap file exists (sorted)."""
    takes = []
    for take in itertools.product(SUBJECTS, ACTIONS, REPETITIONS):
        if mocap_path(root, take).exists():
            takes.append(take)
        elif take not in MISSING_EVERYWHERE:
            logger.debug('%s: no mocap file', take_name(take))
    return takes


# ------------------------------------------------------------------------------------------------
# Stages
def select_stage(data_root=None):
    """Per take and cluster, the frames kept by adaptive selection; writes posepile_work/selection.json
    {'<cluster>/<take>': [frame indices]}."""
    from tqdm import tqdm

    from posepile.util import fileio
    from posepile.util.sampling import select_frames
    out_path = work_dir(data_root) / 'selection.json'
    if out_path.exists():
        return fileio.load_json(out_path)
    root = raw_root(data_root)
    takes = find_takes(root)
    if not takes:
        raise FileNotFoundError(f'{root / "Mocap/OpticalData"} holds no moc_s*_a*_r*.c3d: extract the release '
                                f'(main.sh step 1)')
    selection = {}
    for take in tqdm(takes, desc='bmhad select'):
        mocap = load_mocap(mocap_path(root, take))
        for cluster in CLUSTERS:
            reason = missing_upstream(take, cluster)
            if reason:
                logger.info('skipped: %s', reason)
                continue
            poses = mocap[load_correspondence(correspondence_path(root, cluster, take), len(mocap))]
            kept = select_frames(poses, SELECTION_THRESHOLD_MM, buffer_size=len(poses), check_validity=True,
                                 nan_unchanged=True)
            selection[f'{cluster}/{take_name(take)}'] = kept.tolist()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fileio.save_json(selection, out_path)
    return selection


def _parse_take(name):
    s, a, r = re.fullmatch(r's(\d+)_a(\d+)_r(\d+)', name).groups()
    return int(s), int(a), int(r)


def _converted_relpath(frame_rel):
    return f'{NAME}/posepile_work/frames/{Path(frame_rel).with_suffix(".jpg").as_posix()}'


def _convert_one(job):
    from posepile.util import improc
    source, target = job
    if Path(target).exists() and improc.is_readable_image(target):
        return target
    improc.write_jpeg_atomic(target, read_frame(source), FRAME_JPEG_QUALITY)
    return target


def _load_all_cameras(data_root):
    calibration = raw_root(data_root) / 'Calibration'
    return {cluster: load_cluster_cameras(calibration, cluster) for cluster in CLUSTERS}


def frames_stage(shard=None, n_workers=None, data_root=None):
    """The selected frames as RGB JPEG q92 (Bayer demosaiced / PPM decoded) in posepile_work/frames/."""
    from posepile.util.parallel import parallel_map, parse_shard, shard_items
    root = raw_root(data_root)
    data_root_path = root.parent
    cameras = _load_all_cameras(data_root)
    jobs = []
    for seq_key, frames in sorted(select_stage(data_root).items()):
        cluster, take = seq_key.split('/')
        for i_camera, i_frame in itertools.product(range(len(cameras[cluster])), frames):
            rel = frame_relpath(cluster, i_camera, _parse_take(take), i_frame)
            jobs.append((str(root / rel), str(data_root_path / _converted_relpath(rel))))
    index, count = parse_shard(shard)
    parallel_map(_convert_one, shard_items(jobs, index, count), n_workers=n_workers, desc='bmhad frames')


def gt_box(camera, world_mm):
    from posepile.util import boxes
    return boxes.expand(boxes.bb_of_points(camera.world_to_image(world_mm)), BOX_EXPANSION)


def make_crop_tasks(data_root=None):
    """(key, example, crop relpath) per selected frame and camera."""
    from posepile.datasets3d import Pose3DExample
    root = raw_root(data_root)
    cameras = _load_all_cameras(data_root)
    tasks = []
    for seq_key, frames in sorted(select_stage(data_root).items()):
        cluster, take_str = seq_key.split('/')
        take = _parse_take(take_str)
        mocap = load_mocap(mocap_path(root, take))
        poses = mocap[load_correspondence(correspondence_path(root, cluster, take), len(mocap))]
        for (i_camera, camera), i_frame in itertools.product(enumerate(cameras[cluster]), frames):
            rel = frame_relpath(cluster, i_camera, take, i_frame)
            world = poses[i_frame]
            example = Pose3DExample(_converted_relpath(rel), world, gt_box(camera, world), camera,
                                    activity_name=f'a{take[1]:02d}', scene_name=f's{take[0]:02d}')
            tasks.append((f'0/{cluster}/{i_camera}/{take_str}/{i_frame:05d}', example,
                          f'{NAME}_downscaled/{Path(rel).with_suffix(".jpg").as_posix()}'))
    return tasks


def crop_stage(shard=None, n_workers=None, data_root=None):
    """Perspective-correct crops around the projected markers' box x1.05."""
    pipeline.dataset_crop_stage(NAME, make_crop_tasks(data_root), shard=shard, n_workers=n_workers,
                                data_root=data_root)


def make_dataset(data_root=None):
    """Berkeley MHAD: all TRAIN, 43 markers, world mm (y up)."""
    from posepile.datasets3d import Pose3DDataset
    from posepile.joint_info import JointInfo
    splits = pipeline.examples_by_split(NAME, data_root)
    return Pose3DDataset(JointInfo(JOINT_NAMES, JOINT_EDGES), splits[0])


def assemble_stage(data_root=None):
    """The dataset for get_dataset('bmhad')."""
    pipeline.save_datasets({NAME: lambda: make_dataset(data_root)})


def main(argv=None):
    pipeline.run_stages(argv, 'python -m posepile.ds.bmhad.main', 'Berkeley MHAD stages', {
        'select': select_stage, 'frames': frames_stage, 'crop': crop_stage, 'assemble': assemble_stage})


if __name__ == '__main__':
    main()
