"""DensePose chart coordinates (I, U, V) -> points on the SMPL mesh (vertex triplet + barycentric coordinates).

DensePose annotates each image point with a body chart I (1..24) and chart coordinates (U, V) in [0, 1]. The
charts are a UV unwrapping of the SMPL mesh that DensePose ships as `UV_data/UV_Processed.mat` (downloaded by
DensePose's `DensePoseData/get_densepose_uv.sh`; not redistributable here). Its fields, as DensePose's own
`detectron/utils/densepose_methods.py` reads them:
  All_FaceIndices (F, 1)  chart I of each UV triangle (1..24)
  All_Faces       (F, 3)  the triangle's corners: 1-based indices into the UV vertex arrays below
  All_U_norm      (V, 1)  U of each UV vertex
  All_V_norm      (V, 1)  V of each UV vertex
  All_vertices    (1, V)  the 1-based SMPL vertex id of each UV vertex (seams duplicate SMPL vertices)

A point goes to the first UV triangle of its chart (in file order) that contains (U, V), boundary included,
with its barycentric coordinates there (DensePose's IUV2FBC rule); a point outside every triangle of its chart
goes to the nearest UV vertex of the chart (barycentric coordinates one-hot on that corner). The result is
the SMPL vertex ids of the triangle's corners and the barycentric coordinates: the body point is
sum_k bary[k] * smpl_vertices[ids[k]].
"""
import logging
from pathlib import Path

import numpy as np

from posepile.util.errors import InputError

logger = logging.getLogger(__name__)

N_CHARTS = 24
UV_FIELDS = ('All_FaceIndices', 'All_Faces', 'All_U_norm', 'All_V_norm', 'All_vertices')


class UVDataError(InputError):
    pass


class IUVConverter:
    """Converts DensePose (I, U, V) annotations into (SMPL vertex triplets, barycentric coordinates).

    chart_of_face (F,) int: chart 1..24 of each UV triangle; faces (F, 3) int: 0-based UV vertex indices;
    u, v (V,) float: UV vertex coordinates; smpl_ids (V,) int: 0-based SMPL vertex id of each UV vertex.
    """

    def __init__(self, chart_of_face, faces, u, v, smpl_ids):
        self.chart_of_face = np.asarray(chart_of_face).reshape(-1).astype(np.int64)
        self.faces = np.asarray(faces).reshape(-1, 3).astype(np.int64)
        self.uv = np.stack([np.asarray(u, np.float64).reshape(-1), np.asarray(v, np.float64).reshape(-1)], -1)
        self.smpl_ids = np.asarray(smpl_ids).reshape(-1).astype(np.int64)
        if len(self.chart_of_face) != len(self.faces):
            raise ValueError(f'{len(self.chart_of_face)} chart indices for {len(self.faces)} faces')
        if len(self.smpl_ids) != len(self.uv):
            raise ValueError(f'{len(self.smpl_ids)} SMPL ids for {len(self.uv)} UV vertices')
        if len(self.faces) and (self.faces.min() < 0 or self.faces.max() >= len(self.uv)):
            raise ValueError(f'face corners index [{self.faces.min()}, {self.faces.max()}], but there are '
                             f'{len(self.uv)} UV vertices')
        self._faces_of_chart = {c: np.flatnonzero(self.chart_of_face == c) for c in np.unique(self.chart_of_face)}

    @classmethod
    def from_mat(cls, path):
        """The converter for DensePose's UV_Processed.mat (its 1-based indices made 0-based)."""
        from scipy.io import loadmat
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f'{path} not found: download DensePose\'s UV data (DensePoseData/'
                                    'get_densepose_uv.sh in facebookresearch/DensePose) and put UV_Processed.mat there')
        try:
            data = loadmat(str(path))
        except Exception as e:  # scipy raises several types for truncated / non-MAT files
            raise UVDataError(f'{path}: not a readable MATLAB file ({type(e).__name__}: {e})') from e
        missing = [field for field in UV_FIELDS if field not in data]
        if missing:
            raise UVDataError(f'{path}: missing {", ".join(missing)} (expected DensePose\'s UV_Processed.mat with '
                              f'{", ".join(UV_FIELDS)})')
        try:
            return cls(data['All_FaceIndices'], np.asarray(data['All_Faces']) - 1, data['All_U_norm'],
                       data['All_V_norm'], np.asarray(data['All_vertices']) - 1)
        except ValueError as e:
            raise UVDataError(f'{path}: inconsistent UV data ({e})') from e

    def __call__(self, charts, u, v):
        """charts (N,) in 1..24, u, v (N,) -> (smpl_ids (N, 3) int32, barycoords (N, 3) float32).

        Raises ValueError when a chart has no UV triangles (not 1..24 for DensePose's file)."""
        charts = np.asarray(charts).reshape(-1)
        points = np.stack([np.asarray(u, np.float64).reshape(-1), np.asarray(v, np.float64).reshape(-1)], -1)
        if len(points) != len(charts):
            raise ValueError(f'{len(charts)} chart indices but {len(points)} (U, V) pairs')
        if len(charts) and not np.all(np.isfinite(points)):
            raise ValueError('non-finite U or V')
        face_of_point = np.zeros(len(charts), np.int64)
        barycoords = np.zeros((len(charts), 3), np.float64)
        rounded = np.round(charts.astype(np.float64)).astype(np.int64)
        if len(charts) and np.any(rounded != charts):
            raise ValueError(f'chart indices must be whole numbers, got {charts[rounded != charts][0]}')
        for chart in np.unique(rounded):
            face_ids = self._faces_of_chart.get(int(chart))
            if face_ids is None or len(face_ids) == 0:
                raise ValueError(f'chart {chart} has no UV triangles (DensePose charts are 1..{N_CHARTS})')
            selected = np.flatnonzero(rounded == chart)
            face_of_point[selected], barycoords[selected] = self._locate(points[selected], face_ids)
        return self.smpl_ids[self.faces[face_of_point]].astype(np.int32), barycoords.astype(np.float32)

    def _locate(self, points, face_ids):
        """For points (n, 2) of one chart: (face index (n,), barycentric coordinates (n, 3))."""
        corners = self.uv[self.faces[face_ids]]  # (m, 3, 2)
        edge1 = corners[:, 1] - corners[:, 0]
        edge2 = corners[:, 2] - corners[:, 0]
        doubled_area = _cross(edge1, edge2)  # (m,)
        offset = points[:, None, :] - corners[None, :, 0]  # (n, m, 2)
        with np.errstate(divide='ignore', invalid='ignore'):
            r = _cross(offset, edge2[None]) / doubled_area  # weight of corner 1
            t = _cross(edge1[None], offset) / doubled_area  # weight of corner 2
        inside = (doubled_area != 0) & (r >= 0) & (t >= 0) & (r + t <= 1)
        found = inside.any(axis=1)
        first = np.argmax(inside, axis=1)
        rows = np.arange(len(points))
        r_found, t_found = r[rows, first], t[rows, first]
        barycoords = np.stack([1 - r_found - t_found, r_found, t_found], -1)
        faces = face_ids[first]
        if not np.all(found):  # outside every triangle: the nearest UV vertex of the chart
            outside = np.flatnonzero(~found)
            distances = np.linalg.norm(points[outside, None, None, :] - corners[None], axis=-1)  # (k, m, 3)
            flat = np.argmin(distances.reshape(len(outside), -1), axis=1)
            nearest_face, nearest_corner = np.divmod(flat, 3)
            faces[outside] = face_ids[nearest_face]
            barycoords[outside] = np.eye(3)[nearest_corner]
            logger.debug('%d of %d points outside their chart\'s triangles: nearest vertex', len(outside),
                         len(points))
        return faces, barycoords


def _cross(a, b):
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def dp_box_to_image(dp_x, dp_y, bbox, image_size):
    """DensePose-COCO point coordinates (dp_x, dp_y in 0..255 across the person box) -> image px (N, 2).

    The box is rounded to whole pixels and the points stretched over it (DensePose's own visualisation:
    x = round(box_x) + dp_x / 255 * round(box_w)); the box is first clipped to the image (width, height), as the
    original PosePile does, which matters only for boxes crossing the right or bottom border.
    """
    x, y, w, h = np.round(np.asarray(bbox, np.float64).reshape(4))
    width, height = image_size
    w = min(x + w, width) - x
    h = min(y + h, height) - y
    dp_x = np.asarray(dp_x, np.float64).reshape(-1)
    dp_y = np.asarray(dp_y, np.float64).reshape(-1)
    return np.stack([x + dp_x / 255 * w, y + dp_y / 255 * h], -1).astype(np.float32)
