"""Skeleton definitions: joint names, stick-figure edges and the left/right mirror mapping."""
import numpy as np


def _parse_names(joint_names):
    if isinstance(joint_names, str):
        return [n.strip() for n in joint_names.split(',') if n.strip()]
    if isinstance(joint_names, dict):
        return [name for name, _ in sorted(joint_names.items(), key=lambda kv: kv[1])]
    return [str(n) for n in joint_names]


class JointInfo:
    """Joint names and edges of a skeleton.

    `joint_names`: 'rhip,rkne,rank,...' or a list. `edges`: 'htop-head-neck-rsho,...' (hyphenated paths,
    unknown names are skipped) or a list of index pairs. The mirror image (l<->r) of every edge is added
    when both mirrored joints exist, so a string may list only one side plus the spine.
    """

    def __init__(self, joint_names, edges=None):
        self.names = _parse_names(joint_names)
        if len(set(self.names)) != len(self.names):
            dup = sorted({n for n in self.names if self.names.count(n) > 1})
            raise ValueError(f'Duplicate joint names: {dup}')
        self.ids = {name: i for i, name in enumerate(self.names)}
        self.mirror_mapping = [self.ids.get(_mirror_name(n), i) for i, n in enumerate(self.names)]
        self.stick_figure_edges = []
        self._add_edges(edges)

    @property
    def n_joints(self):
        return len(self.names)

    def _add_edges(self, edges):
        pairs = []
        if edges is None:
            pass
        elif isinstance(edges, str):
            for path in edges.split(','):
                names = [n.strip() for n in path.split('-') if n.strip()]
                for a, b in zip(names[:-1], names[1:]):
                    if a in self.ids and b in self.ids:
                        pairs.append((self.ids[a], self.ids[b]))
        else:
            pairs = [(int(i), int(j)) for i, j in edges]
        result = set()
        for i, j in pairs:
            if not (0 <= i < self.n_joints and 0 <= j < self.n_joints) or i == j:
                raise ValueError(f'Invalid edge ({i}, {j}) for {self.n_joints} joints')
            result.add(tuple(sorted((i, j))))
            mi, mj = self.mirror_mapping[i], self.mirror_mapping[j]
            result.add(tuple(sorted((mi, mj))))
        self.stick_figure_edges = sorted(result)

    def select_joints(self, indices_or_names):
        """A new JointInfo with only the given joints (in the given order), edges remapped."""
        indices = [self.ids[x] if isinstance(x, str) else int(x) for x in indices_or_names]
        new_index = {old: new for new, old in enumerate(indices)}
        edges = [(new_index[i], new_index[j]) for i, j in self.stick_figure_edges
                 if i in new_index and j in new_index]
        return JointInfo([self.names[i] for i in indices], edges)

    def update_names(self, new_names):
        new_names = _parse_names(new_names)
        if len(new_names) != self.n_joints:
            raise ValueError(f'Expected {self.n_joints} names, got {len(new_names)}')
        edges = self.stick_figure_edges
        self.__init__(new_names, edges)

    def get_coord_mapping(self, dst_joint_info):
        """For each destination joint, the source index with the same name, or -1."""
        return np.array([self.ids.get(name, -1) for name in dst_joint_info.names], np.int64)

    def convert_coords(self, coords, dst_joint_info):
        """Coordinates (..., J_src, C) -> (..., J_dst, C) matched by joint name; missing joints are NaN."""
        coords = np.asarray(coords)
        mapping = self.get_coord_mapping(dst_joint_info)
        dtype = coords.dtype if np.issubdtype(coords.dtype, np.floating) else np.float32
        result = np.full(coords.shape[:-2] + (len(mapping), coords.shape[-1]), np.nan, dtype)
        present = mapping >= 0
        result[..., present, :] = coords[..., mapping[present], :]
        return result

    def get_joint2bone_mat(self):
        """(n_edges, n_joints) matrix: bone vector = joint i - joint j for edge (i, j)."""
        mat = np.zeros((len(self.stick_figure_edges), self.n_joints), np.float32)
        for k, (i, j) in enumerate(self.stick_figure_edges):
            mat[k, i] = 1
            mat[k, j] = -1
        return mat

    def __eq__(self, other):
        return (isinstance(other, JointInfo) and self.names == other.names
                and self.stick_figure_edges == other.stick_figure_edges)

    def __repr__(self):
        return f'JointInfo({",".join(self.names)!r}, {len(self.stick_figure_edges)} edges)'


def _mirror_name(name):
    if name.startswith('l'):
        return 'r' + name[1:]
    if name.startswith('r'):
        return 'l' + name[1:]
    return name
