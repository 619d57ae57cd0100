"""posepile/ds/functions.sh: DATA_ROOT check, verified downloads, and archive extraction that refuses
hostile members."""
import hashlib
import io
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

FUNCTIONS = Path(__file__).resolve().parent.parent / 'posepile' / 'ds' / 'functions.sh'


def run_bash(script, cwd, env_extra=None):
    import os
    env = dict(os.environ)
    env.update(env_extra or {})
    return subprocess.run(['bash', '-c', f'set -euo pipefail; source "{FUNCTIONS}"; {script}'], cwd=cwd,
                          capture_output=True, text=True, env=env)


def test_check_data_root(tmp_path):
    result = run_bash('check_data_root', tmp_path, {'DATA_ROOT': ''})
    assert result.returncode != 0 and 'DATA_ROOT is not set' in result.stderr
    result = run_bash('check_data_root', tmp_path, {'DATA_ROOT': str(tmp_path / 'missing')})
    assert result.returncode != 0 and 'does not exist' in result.stderr
    assert run_bash('check_data_root', tmp_path, {'DATA_ROOT': str(tmp_path)}).returncode == 0


def test_download_verified_good_bad_and_resume(tmp_path):
    source = tmp_path / 'source.bin'
    payload = bytes(range(256)) * 4000
    source.write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    url = source.as_uri()

    result = run_bash(f'download_verified "{url}" {"0" * 64} out/bad.bin', tmp_path)
    assert result.returncode != 0
    assert 'checksum mismatch' in result.stderr and url in result.stderr and digest in result.stderr
    assert not (tmp_path / 'out/bad.bin').exists() and not (tmp_path / 'out/bad.bin.part').exists()

    # resume: a correct partial download is continued, not restarted
    (tmp_path / 'out').mkdir(exist_ok=True)
    (tmp_path / 'out/good.bin.part').write_bytes(payload[:1000])
    result = run_bash(f'download_verified "{url}" {digest} out/good.bin', tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / 'out/good.bin').read_bytes() == payload
    assert not (tmp_path / 'out/good.bin.part').exists()
    # an existing file with the right hash is accepted, with a wrong hash refused
    assert run_bash(f'download_verified "{url}" {digest} out/good.bin', tmp_path).returncode == 0
    (tmp_path / 'out/good.bin').write_bytes(b'tampered')
    result = run_bash(f'download_verified "{url}" {digest} out/good.bin', tmp_path)
    assert result.returncode != 0 and 'SHA-256' in result.stderr


def _tar(path, entries):
    """entries: list of (name, kind, data_or_target)."""
    with tarfile.open(path, 'w:gz') as tar:
        for name, kind, value in entries:
            info = tarfile.TarInfo(name)
            if kind == 'file':
                info.size = len(value)
                tar.addfile(info, io.BytesIO(value))
            elif kind == 'sym':
                info.type = tarfile.SYMTYPE
                info.linkname = value
                tar.addfile(info)
            elif kind == 'hard':
                info.type = tarfile.LNKTYPE
                info.linkname = value
                tar.addfile(info)
            elif kind == 'fifo':
                info.type = tarfile.FIFOTYPE
                tar.addfile(info)


@pytest.mark.parametrize('entries,reason', [
    ([('ok.txt', 'file', b'x'), ('/etc/evil', 'file', b'x')], 'absolute path'),
    ([('ok.txt', 'file', b'x'), ('a/../../evil', 'file', b'x')], "'..'"),
    ([('link', 'sym', '../../outside'), ('ok.txt', 'file', b'x')], 'symlink'),
    ([('link', 'sym', '/etc/passwd')], 'symlink'),
    ([('ok.txt', 'file', b'x'), ('hard', 'hard', '../outside')], "'..'"),
    ([('pipe', 'fifo', None)], 'special file'),
])
def test_extract_safely_refuses_hostile_tar_and_writes_nothing(tmp_path, entries, reason):
    archive = tmp_path / 'evil.tar.gz'
    _tar(archive, entries)
    dest = tmp_path / 'work' / 'dest'
    result = run_bash(f'extract_safely "{archive}" "{dest}"', tmp_path)
    assert result.returncode != 0
    assert 'refusing' in result.stderr and reason in result.stderr
    assert list(dest.iterdir()) == [] if dest.exists() else True
    assert sorted(p.name for p in (tmp_path / 'work').iterdir()) == ['dest']  # no temp folder left
    assert not (tmp_path / 'outside').exists() and not (tmp_path / 'evil').exists()


def test_extract_safely_refuses_zip_escape(tmp_path):
    archive = tmp_path / 'evil.zip'
    with zipfile.ZipFile(archive, 'w') as z:
        z.writestr('fine.txt', 'x')
        z.writestr('../escaped.txt', 'x')
    result = run_bash(f'extract_safely "{archive}" "{tmp_path / "dest"}"', tmp_path)
    assert result.returncode != 0 and "'..'" in result.stderr
    assert not (tmp_path / 'escaped.txt').exists()
    assert list((tmp_path / 'dest').iterdir()) == []


def test_extract_safely_extracts_benign_archives(tmp_path):
    tar_path = tmp_path / 'good.tar.gz'
    _tar(tar_path, [('top/a.txt', 'file', b'hello'), ('top/inner', 'sym', 'a.txt'),
                    ('top/sub/b.txt', 'file', b'world')])
    zip_path = tmp_path / 'good.zip'
    with zipfile.ZipFile(zip_path, 'w') as z:
        z.writestr('z/c.txt', 'zip!')
    dest = tmp_path / 'dest'
    assert run_bash(f'extract_safely "{tar_path}" "{dest}"', tmp_path).returncode == 0
    assert run_bash(f'extract_safely "{zip_path}" "{dest}"', tmp_path).returncode == 0
    assert (dest / 'top/a.txt').read_bytes() == b'hello'
    assert (dest / 'top/inner').is_symlink() and (dest / 'top/inner').read_bytes() == b'hello'
    assert (dest / 'top/sub/b.txt').read_bytes() == b'world'
    assert (dest / 'z/c.txt').read_text() == 'zip!'


def test_extract_archives_once_per_archive(tmp_path):
    archives = tmp_path / 'archives'
    archives.mkdir()
    _tar(archives / 'a.tar.gz', [('x/1.txt', 'file', b'one')])
    with zipfile.ZipFile(archives / 'b.zip', 'w') as z:
        z.writestr('y/2.txt', 'two')
    dest = tmp_path / 'dest'
    assert run_bash(f'extract_archives "{archives}" "{dest}"', tmp_path).returncode == 0
    assert (dest / 'x/1.txt').read_bytes() == b'one' and (dest / 'y/2.txt').read_text() == 'two'
    (dest / 'x/1.txt').write_bytes(b'changed')  # a second run must not extract again
    assert run_bash(f'extract_archives "{archives}" "{dest}"', tmp_path).returncode == 0
    assert (dest / 'x/1.txt').read_bytes() == b'changed'
    assert run_bash(f'extract_archives "{tmp_path / "none"}" "{dest}"', tmp_path).returncode == 0


def _targz(path, files):
    with tarfile.open(path, 'w:gz') as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _noise(n, seed):
    import numpy as np
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()  # incompressible


def test_a_broken_archive_that_is_not_the_last_fails_the_loop(tmp_path):
    archives = tmp_path / 'archives'
    archives.mkdir()
    _targz(archives / 'a_subject1.tar.gz', {'S1/data.bin': _noise(200_000, 1)})
    _targz(archives / 'b_subject2.tar.gz', {'S2/data.bin': _noise(200_000, 2)})
    good = (archives / 'a_subject1.tar.gz').read_bytes()
    (archives / 'a_subject1.tar.gz').write_bytes(good[:len(good) // 2])  # truncated download
    result = run_bash(f'extract_archives "{archives}" "{tmp_path / "out"}"; echo reached', tmp_path)
    assert result.returncode != 0 and 'reached' not in result.stdout
    assert 'a_subject1.tar.gz' in result.stderr and 'truncated or corrupt' in result.stderr
    assert (tmp_path / 'out' / 'S2' / 'data.bin').stat().st_size == 200_000  # the others were extracted
    assert not (tmp_path / 'out' / 'S1').exists()  # nothing partial
    assert not list(tmp_path.glob('.extract-*'))
    # SKIP_BROKEN=1 reports and goes on
    result = run_bash(f'extract_archives "{archives}" "{tmp_path / "out"}"; echo reached', tmp_path,
                      {'SKIP_BROKEN': '1'})
    assert result.returncode == 0 and 'reached' in result.stdout and 'a_subject1.tar.gz' in result.stderr
    # the repaired archive is extracted by a plain rerun; the finished one is not extracted again
    (archives / 'a_subject1.tar.gz').write_bytes(good)
    (tmp_path / 'out' / 'S2' / 'data.bin').write_bytes(b'kept')
    assert run_bash(f'extract_archives "{archives}" "{tmp_path / "out"}"', tmp_path).returncode == 0
    assert (tmp_path / 'out' / 'S1' / 'data.bin').stat().st_size == 200_000
    assert (tmp_path / 'out' / 'S2' / 'data.bin').read_bytes() == b'kept'


def test_free_space_and_disk_full_are_reported_with_the_path(tmp_path, monkeypatch):
    import errno
    import shutil as shutil_module

    from posepile.util import archives
    _targz(tmp_path / 'x.tar.gz', {'big/part.bin': _noise(100_000, 3)})
    usage = shutil_module.disk_usage(tmp_path)
    monkeypatch.setattr(archives.shutil, 'disk_usage', lambda p: usage._replace(free=50_000))
    with pytest.raises(archives.ArchiveError, match=r'x\.tar\.gz: not enough free space .* needs 0\.00 GB'):
        archives.extract_safely(tmp_path / 'x.tar.gz', tmp_path / 'out')
    monkeypatch.undo()

    def disk_full(self, path, **kwargs):
        raise OSError(errno.ENOSPC, 'No space left on device', str(Path(path) / 'big' / 'part.bin'))
    monkeypatch.setattr(archives.tarfile.TarFile, 'extractall', disk_full)
    with pytest.raises(archives.ArchiveError, match=r'x\.tar\.gz: disk full while extracting \(writing .*part\.bin'):
        archives.extract_safely(tmp_path / 'x.tar.gz', tmp_path / 'out')
    assert not any((tmp_path / 'out').iterdir())
    assert not list(tmp_path.glob('.extract-*'))


def test_c3d_completeness_from_the_raw_header(tmp_path):
    """A cut C3D is refused from its raw header (ezc3d would read fewer frames, or crash)."""
    from posepile.util import c3d
    from posepile.util.errors import InputError
    from tests.fakes import aspset as fake_aspset
    fake_aspset.write_fake_release(tmp_path / 'aspset', n_frames=12)
    path = sorted((tmp_path / 'aspset').glob('**/*.c3d'))[0]
    header = c3d.check_complete(path)
    assert (header.first_frame, header.n_frames, header.n_points) == (1, 12, 17)
    assert header.required_bytes <= path.stat().st_size
    path.write_bytes(path.read_bytes()[:header.required_bytes - 1])
    with pytest.raises(InputError, match=r'\.c3d: truncated C3D: the header promises 12 frames'):
        c3d.check_complete(path)
    (tmp_path / 'x.c3d').write_bytes(b'\0' * 600)
    with pytest.raises(InputError, match='not a C3D file'):
        c3d.check_complete(tmp_path / 'x.c3d')
