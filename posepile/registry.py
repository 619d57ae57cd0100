"""Registered dataset names -> builder functions, imported lazily ('module:function')."""
import importlib

DATASETS = {
    'h36m': 'posepile.ds.h36m.main:make_dataset',
    'h36m_alljoints': 'posepile.ds.h36m.main:make_alljoints',
    'tdhp': 'posepile.ds.tdhp.main:make_dataset',
    'mupots': 'posepile.ds.mupots.main:make_dataset',
    'tdpw': 'posepile.ds.tdpw.main:make_dataset',
    'panoptic': 'posepile.ds.panoptic.main:make_dataset',
    'surreal': 'posepile.ds.surreal.main:make_dataset',
    'aspset': 'posepile.ds.aspset.main:make_dataset',
    'tdoh': 'posepile.ds.tdoh.main:make_dataset',
    'humbi': 'posepile.ds.humbi.main:make_dataset',
    'tdpeople': 'posepile.ds.tdpeople.main:make_dataset',
    'gpa': 'posepile.ds.gpa.main:make_dataset',
    'sailvos': 'posepile.ds.sailvos.main:make_dataset',
    'agora': 'posepile.ds.agora.main:make_dataset',
    'spec': 'posepile.ds.spec.main:make_dataset',
    'thuman2': 'posepile.ds.thuman2.main:make_dataset',
    'dfaust': 'posepile.ds.dfaust.main:make_dataset',
    'hi4d_rerender': 'posepile.ds.hi4d_rerender.main:make_dataset',
    'behave': 'posepile.ds.behave.main:make_dataset',
    'rich': 'posepile.ds.rich.main:make_dataset',
    'rich_body': 'posepile.ds.rich.main:make_body_dataset',
    'coco': 'posepile.ds.coco.main:make_dataset',
    'coco_single': 'posepile.ds.coco.main:make_single_person',
    'mpii': 'posepile.ds.mpii.main:make_dataset',
    'posetrack': 'posepile.ds.posetrack.main:make_dataset',
    'jrdb': 'posepile.ds.jrdb.main:make_dataset',
    'aic': 'posepile.ds.aic.main:make_dataset',
    'mpii_yolo': 'posepile.ds.mpii_yolo.main:make_dataset',
    'mpii_yolo_alljoints': 'posepile.ds.mpii_yolo.main:make_alljoints',
    'halpe': 'posepile.ds.halpe.main:make_dataset',
    'coco_wb': 'posepile.ds.coco_wb.main:make_dataset',
    'densepose_coco': 'posepile.ds.densepose_coco.main:make_dataset',
    'densepose_posetrack': 'posepile.ds.densepose_posetrack.main:make_dataset',
    'densepose_posetrack_like_coco': 'posepile.ds.densepose_posetrack.main:make_like_coco',
    'demo': 'posepile.ds.demo.main:make_dataset',
    'totalcapture': 'posepile.ds.totalcapture.main:make_dataset',
    'aist': 'posepile.ds.aist.main:make_dataset',
    'fit3d': 'posepile.ds.imar.main:make_fit3d',
    'chi3d': 'posepile.ds.imar.main:make_chi3d',
    'humansc3d': 'posepile.ds.imar.main:make_humansc3d',
    'hspace': 'posepile.ds.hspace.main:make_dataset',
    'human4d': 'posepile.ds.human4d.main:make_dataset',
    'mads': 'posepile.ds.mads.main:make_dataset',
    'umpm': 'posepile.ds.umpm.main:make_dataset',
    'tdhp_full': 'posepile.ds.tdhp.main:make_full_dataset',
    'muco': 'posepile.ds.muco.main:make_dataset',
    'jta': 'posepile.ds.jta.main:make_dataset',
    'ikea': 'posepile.ds.ikea.main:make_dataset',
    'bmhad': 'posepile.ds.bmhad.main:make_dataset',
    'bml_movi': 'posepile.ds.bml_movi.main:make_dataset',
    'intercap': 'posepile.ds.intercap.main:make_dataset',
    'hi4d': 'posepile.ds.hi4d.main:make_dataset',
    'moyo': 'posepile.ds.moyo.main:make_dataset',
    'arctic': 'posepile.ds.arctic.main:make_dataset',
    'dna_rendering': 'posepile.ds.dna_rendering.main:make_dataset',
    'genebody': 'posepile.ds.genebody.main:make_dataset',
    'zjumocap': 'posepile.ds.zjumocap.main:make_dataset',
    'humman': 'posepile.ds.humman.main:make_dataset',
    'egohumans': 'posepile.ds.egohumans.main:make_dataset',
    'egoexo4d': 'posepile.ds.egoexo4d.main:make_dataset',
    'synbody': 'posepile.ds.synbody.main:make_dataset',
    'freeman': 'posepile.ds.freeman.main:make_dataset',
    'mri': 'posepile.ds.mri.main:make_dataset',
    'bedlam': 'posepile.ds.bedlam.main:make_dataset',
    'sloper4d': 'posepile.ds.sloper4d.main:make_dataset',
    'egobody': 'posepile.ds.egobody.main:make_dataset',
}


class UnknownDatasetError(KeyError):
    def __str__(self):
        return self.args[0]


def get_builder(name):
    if name not in DATASETS:
        raise UnknownDatasetError(
            f'Unknown dataset {name!r}. Registered: {", ".join(sorted(DATASETS))}')
    module_name, function_name = DATASETS[name].split(':')
    module = importlib.import_module(module_name)
    try:
        return getattr(module, function_name)
    except AttributeError:
        raise UnknownDatasetError(f'{module_name} has no builder {function_name}() for {name!r}') from None


# Registered names whose skeleton is not the module's JOINT_NAMES/JOINT_EDGES (or joint_info()):
# name -> (names attribute, edges attribute or a literal edge string when the module keeps it inline).
_SKELETON_ATTRIBUTES = {
    'h36m': ('JOINT_NAMES17', 'JOINT_EDGES17'),
    'h36m_alljoints': ('JOINT_NAMES25', 'JOINT_EDGES25'),
    'panoptic': ('JOINT_NAMES_COCO19', 'JOINT_EDGES_COCO19'),
    'tdhp': ('ALL_JOINT_NAMES', 'ALL_JOINT_EDGES'),
    # edges as in make_dataset() of these modules (not module constants there)
    'mupots': ('JOINT_NAMES', 'htop-head-neck-spin-pelv-lhip-lkne-lank,pelv-rhip-rkne-rank,neck-lsho-lelb-lwri,'
                              'neck-rsho-relb-rwri'),
    'tdpw': ('SMPL_JOINT_NAMES', 'pelv-bell-spin-thor-neck-head,pelv-lhip-lkne-lank-ltoe,pelv-rhip-rkne-rank-rtoe,'
                                 'thor-lcla-lsho-lelb-lwri-lhan,thor-rcla-rsho-relb-rwri-rhan'),
}


def joint_info(name):
    """The declared skeleton (JointInfo) of a registered dataset, read from its module without any data.

    Resolution: a module-level dict JOINT_INFOS {builder function name: JointInfo}, then the attributes
    named in _SKELETON_ATTRIBUTES, then a module function joint_info(), then JOINT_NAMES/JOINT_EDGES.
    """
    from posepile.joint_info import JointInfo
    if name not in DATASETS:
        raise UnknownDatasetError(
            f'Unknown dataset {name!r}. Registered: {", ".join(sorted(DATASETS))}')
    module_name, function_name = DATASETS[name].split(':')
    module = importlib.import_module(module_name)
    declared = getattr(module, 'JOINT_INFOS', {})
    if function_name in declared:
        return declared[function_name]
    if name in _SKELETON_ATTRIBUTES:
        names_attr, edges = _SKELETON_ATTRIBUTES[name]
        return JointInfo(getattr(module, names_attr), getattr(module, edges, edges))
    if callable(getattr(module, 'joint_info', None)):
        return module.joint_info()
    if hasattr(module, 'JOINT_NAMES'):
        return JointInfo(module.JOINT_NAMES, getattr(module, 'JOINT_EDGES', None))
    raise UnknownDatasetError(f'{module_name} declares no skeleton (JOINT_NAMES) for {name!r}')
