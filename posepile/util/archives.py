"""Safe, verified extraction of downloaded archives (.zip, .tar, .tar.gz/.tgz, .tar.bz2, .tar.xz).

`extract_safely(archive, dest)`:
- refuses the whole archive, extracting nothing, when a member has an absolute path or a '..' component,
  is a link pointing outside the destination, or is a device, fifo or other special file;
- checks before starting that the destination's file system has room for the unpacked size;
- extracts into a temporary folder next to the destination, then checks the result against the archive's
  listing (every file present with its size) before moving the entries into place;
- reports a truncated or corrupt archive, and a full disk with the path being written, as one line
  (`ArchiveError`), leaving no partial extraction behind.

Command line (used by posepile/ds/functions.sh): `python -m posepile.util.archives ARCHIVE DEST`.
"""
import errno
import os
import posixpath
import shutil
import sys
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path

from posepile.util.errors import InputError

FREE_SPACE_MARGIN = 1.05  # unpacked size x this must be free (file system overhead)


class ArchiveError(InputError):
    pass


def _check_name(archive, name):
    if name.startswith(('/', '\\')) or (len(name) > 1 and name[1] == ':'):
        raise ArchiveError(f'{archive}: refusing the archive: member {name!r} has an absolute path; '
                           'nothing was extracted')
    if '..' in name.replace('\\', '/').split('/'):
        raise ArchiveError(f"{archive}: refusing the archive: member {name!r} contains a '..' component; "
                           'nothing was extracted')


def _inside(base_dir, link_target):
    resolved = posixpath.normpath(posixpath.join(base_dir, link_target))
    return not (resolved == '..' or resolved.startswith('../') or resolved.startswith('/'))


def _zip_listing(archive, z):
    """{member name: size} of the files; raises ArchiveError for unsafe members."""
    files = {}
    for info in z.infolist():
        _check_name(archive, info.filename)
        mode = info.external_attr >> 16
        if mode and (mode & 0o170000) == 0o120000:  # a symlink stored in the zip
            target = z.read(info).decode('utf-8', 'replace')
            if target.startswith('/') or not _inside(posixpath.dirname(info.filename), target):
                raise ArchiveError(f'{archive}: refusing the archive: member {info.filename!r} is a link to '
                                   f'{target!r} outside the destination; nothing was extracted')
        elif not info.is_dir():
            files[info.filename] = info.file_size
    return files


def _tar_listing(archive, tar):
    files = {}
    for m in tar.getmembers():
        _check_name(archive, m.name)
        if m.issym():
            if m.linkname.startswith('/') or not _inside(posixpath.dirname(m.name), m.linkname):
                raise ArchiveError(f'{archive}: refusing the archive: member {m.name!r} is a symlink to '
                                   f'{m.linkname!r} outside the destination; nothing was extracted')
        elif m.islnk():
            _check_name(archive, m.linkname)
            if not _inside('', m.linkname):
                raise ArchiveError(f'{archive}: refusing the archive: member {m.name!r} is a hard link to '
                                   f'{m.linkname!r} outside the destination; nothing was extracted')
        elif m.isfile():
            files[m.name] = m.size
        elif not m.isdir():
            raise ArchiveError(f'{archive}: refusing the archive: member {m.name!r} is a device, fifo or other '
                               'special file; nothing was extracted')
    return files


def _check_free_space(archive, dest, needed_bytes):
    free = shutil.disk_usage(dest).free
    if needed_bytes * FREE_SPACE_MARGIN > free:
        raise ArchiveError(f'{archive}: not enough free space in {dest} to extract it: needs '
                           f'{needed_bytes / 1e9:.2f} GB, {free / 1e9:.2f} GB free')


def _disk_full(archive, error, path):
    return ArchiveError(f'{archive}: disk full while extracting (writing {path}): {error.strerror}; '
                        'the partial extraction was removed, free space and rerun')


def extract_safely(archive, dest):
    """Extract `archive` into `dest` (see the module docstring); returns the number of files extracted."""
    archive, dest = Path(archive), Path(dest)
    if not archive.is_file():
        raise ArchiveError(f'{archive}: archive not found')
    dest.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix='.extract-', dir=dest.resolve().parent))
    try:
        try:
            if zipfile.is_zipfile(archive):
                with zipfile.ZipFile(archive) as z:
                    files = _zip_listing(archive, z)
                    _check_free_space(archive, dest, sum(files.values()))
                    z.extractall(tmp)
            else:
                with tarfile.open(archive) as tar:
                    files = _tar_listing(archive, tar)
                    _check_free_space(archive, dest, sum(files.values()))
                    kwargs = {'filter': 'tar'} if hasattr(tarfile, 'data_filter') else {}
                    tar.extractall(tmp, **kwargs)
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise _disk_full(archive, e, e.filename or tmp) from e
            raise
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error) as e:
            raise ArchiveError(f'{archive}: truncated or corrupt archive ({type(e).__name__}: {e}); '
                               'nothing was extracted') from e
        _verify(archive, tmp, files)
        _move_into(archive, tmp, dest)
        return len(files)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _verify(archive, tmp, files):
    for name, size in files.items():
        path = tmp / name
        if not path.is_file() or path.stat().st_size != size:
            have = path.stat().st_size if path.is_file() else 'missing'
            raise ArchiveError(f'{archive}: member {name!r} did not extract completely ({have} of {size} bytes); '
                               'truncated archive?')


def _move_into(archive, tmp, dest):
    """Move the extracted entries into dest, merging folders; a file already there is replaced."""
    for root, dirs, names in os.walk(tmp):
        relative = Path(root).relative_to(tmp)
        target_dir = dest / relative
        try:
            target_dir.mkdir(parents=True, exist_ok=True)
            for name in names:
                target = target_dir / name
                if target.is_dir() and not target.is_symlink():
                    raise ArchiveError(f'{archive}: member {str(relative / name)!r} would replace the folder '
                                       f'{target}')
                os.replace(Path(root) / name, target)
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise _disk_full(archive, e, target_dir) from e
            raise ArchiveError(f'{archive}: cannot move extracted files into {target_dir}: {e}') from e


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print('usage: python -m posepile.util.archives ARCHIVE DEST', file=sys.stderr)
        return 2
    n = extract_safely(argv[0], argv[1])
    print(f'extracted {n} files from {argv[0]}')
    return 0


if __name__ == '__main__':
    from posepile.util.errors import run_cli
    sys.exit(run_cli(main, prog='extract_safely'))
