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
    'coco': 'posepile.ds.coco.main:make_dataset',
    'coco_single': 'posepile.ds.coco.main:make_single_person',
    'mpii': 'posepile.ds.mpii.main:make_dataset',
    'posetrack': 'posepile.ds.posetrack.main:make_dataset',
    'jrdb': 'posepile.ds.jrdb.main:make_dataset',
    'aic': 'posepile.ds.aic.main:make_dataset',
    'mpii_yolo': 'posepile.ds.mpii_yolo.main:make_dataset',
    'halpe': 'posepile.ds.halpe.main:make_dataset',
    'coco_wb': 'posepile.ds.coco_wb.main:make_dataset',
    'demo': 'posepile.ds.demo.main:make_dataset',
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
