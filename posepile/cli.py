"""The `posepile` command: list, build, info, export, verify, show, eval, demo."""
import argparse
import importlib
import logging
import sys

SUBCOMMANDS = {
    # name: (module:function taking argv, one-line help)
    'export': ('posepile.storage.barecat_store:main_export', 'export a built dataset to Barecat archives'),
    'verify': ('posepile.storage.barecat_store:main_verify', 'verify a Barecat export (checksums, decoding)'),
    'show': ('posepile.show:main', 'contact sheet of crops with skeletons and masks'),
    'demo': ('posepile.ds.demo.main:main', 'run the demo pipeline on a synthetic capture'),
    'status': ('posepile.status:main', 'per dataset: raw release found, stages done, examples per split, last error'),
    'mix': ('posepile.merging.mix_build:main', 'training mixes of the paper: posepile mix build NAME OUT/'),
}


def cmd_list(args):
    from posepile import registry
    from posepile.datasets3d import cache_path
    from posepile.paths import DataRootError
    try:
        built = {name: cache_path(name).exists() for name in registry.DATASETS}
        note = None
    except DataRootError:
        built = None
        note = 'DATA_ROOT not set'
    print(f'{"dataset":<16} {"builder":<44} built')
    for name, target in sorted(registry.DATASETS.items()):
        status = note if built is None else ('yes' if built[name] else 'no')
        print(f'{name:<16} {target:<44} {status}')


def cmd_build(args):
    from posepile.datasets3d import get_dataset
    dataset = get_dataset(args.name, force_rebuild=args.force)
    print(dataset)


def cmd_info(args):
    from posepile.datasets3d import SPLIT_NAMES, get_dataset
    dataset = get_dataset(args.name)
    print(dataset)
    print('joints:', ','.join(dataset.joint_info.names))
    for split, examples in dataset.examples.items():
        print(f'{SPLIT_NAMES[split]}: {len(examples)} examples')


def cmd_eval(args, rest):
    module = importlib.import_module(f'posepile.ds.{args.name}.eval')
    return module.main(rest)


def main(argv=None):
    """The `posepile` command; a failure ends as one line on stderr and exit status 1 (--verbose or
    POSEPILE_DEBUG=1 show the traceback)."""
    from posepile.util.errors import run_cli
    return run_cli(_main, argv, prog='posepile')


def _main(argv):
    argv = list(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(name)s %(levelname)s: %(message)s')
    parser = argparse.ArgumentParser(
        prog='posepile', description='Build 3D human pose datasets from raw releases and score benchmarks.')
    sub = parser.add_subparsers(dest='command', metavar='COMMAND')
    sub.add_parser('list', help='registered datasets and whether they are built')
    p = sub.add_parser('build', help='build (or load from cache) a registered dataset')
    p.add_argument('name')
    p.add_argument('--force', action='store_true', help='rebuild even if cached')
    p = sub.add_parser('info', help='counts per split and joints of a dataset')
    p.add_argument('name')
    p = sub.add_parser('eval', help='run a benchmark: posepile eval NAME --pred-path preds.npz')
    p.add_argument('name')
    for name, (_, help_text) in SUBCOMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)

    if argv and argv[0] in SUBCOMMANDS:
        target, _ = SUBCOMMANDS[argv[0]]
        module_name, function_name = target.split(':')
        try:
            module = importlib.import_module(module_name)
        except ImportError as e:
            sys.exit(f'posepile {argv[0]}: not available ({e})')
        return getattr(module, function_name)(argv[1:])

    args, rest = parser.parse_known_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == 'eval':
        return cmd_eval(args, rest)
    if rest:
        parser.error(f'unrecognised arguments: {" ".join(rest)}')
    {'list': cmd_list, 'build': cmd_build, 'info': cmd_info}[args.command](args)
    return 0


if __name__ == '__main__':
    sys.exit(main())
