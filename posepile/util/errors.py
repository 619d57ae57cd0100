"""The error contract: bad input is reported as ONE line naming the file and the problem.

Every reader raises `InputError` (or a subclass, e.g. a dataset's FormatError) with a message that starts
with the file's path. Command-line entry points run through `run_cli`, which prints that line (plus a hint)
instead of a traceback; the traceback is shown with `--verbose` or POSEPILE_DEBUG=1. Errors keep their
message when they cross a process pool (plain single-argument exceptions pickle intact).
"""
import logging
import os
import sys


class InputError(ValueError):
    """A raw input (or an input of a later stage) is missing, malformed or implausible; the message names
    the file and the problem in one line."""


def debug_enabled(argv=None):
    argv = sys.argv if argv is None else argv
    return os.environ.get('POSEPILE_DEBUG', '') not in ('', '0') or '--verbose' in argv


def one_line(error):
    """The error as one line: the message of an InputError or OSError (they name the file), else the
    exception type and its message."""
    message = ' | '.join(line.strip() for line in str(error).splitlines() if line.strip()) or repr(error)
    if isinstance(error, (InputError, OSError)):
        return message
    return f'{type(error).__name__}: {message}'


def run_cli(main, argv=None, prog=None):
    """Run `main(argv)`; on an exception print one line to stderr and return exit status 1 (or re-raise
    with --verbose / POSEPILE_DEBUG=1). KeyboardInterrupt exits with 130."""
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = debug_enabled(argv)
    if '--verbose' in argv:
        argv = [a for a in argv if a != '--verbose']
        logging.getLogger().setLevel(logging.DEBUG)
    try:
        result = main(argv)
    except KeyboardInterrupt:
        print(f'{prog or "posepile"}: interrupted', file=sys.stderr)
        return 130
    except SystemExit:
        raise
    except Exception as e:  # noqa: BLE001 - the contract: every failure ends as one line
        if debug:
            raise
        print(f'{prog or "posepile"}: error: {one_line(e)}  (traceback: --verbose or POSEPILE_DEBUG=1)',
              file=sys.stderr)
        return 1
    return result if isinstance(result, int) else 0
