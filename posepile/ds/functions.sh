#!/usr/bin/env bash
# Shared helpers for the dataset recipes (posepile/ds/<name>/main.sh). Source this file.

# DATA_ROOT must name an existing folder: every recipe reads and writes under it.
check_data_root() {
  if [[ -z "${DATA_ROOT:-}" ]]; then
    echo "DATA_ROOT is not set: export DATA_ROOT=/path/to/datasets (the folder that holds one folder per dataset)" >&2
    return 1
  fi
  if [[ ! -d "$DATA_ROOT" ]]; then
    echo "DATA_ROOT=$DATA_ROOT does not exist or is not a folder: create it first (mkdir -p \"$DATA_ROOT\")" >&2
    return 1
  fi
}

_sha256_of() {
  sha256sum "$1" | cut -d' ' -f1
}

# download_verified URL SHA256 [DEST]
# Downloads into DEST.part (resuming a partial download), checks the SHA-256 and only then renames it to
# DEST. A mismatch deletes the .part file and fails, naming the URL and both hashes. An existing DEST with
# the right hash is kept; one with a wrong hash is an error (never silently replaced or used).
download_verified() {
  local url="$1" expected="${2,,}" dest="${3:-$(basename "${1%%\?*}")}"
  if [[ -z "$url" || -z "$expected" ]]; then
    echo "usage: download_verified URL SHA256 [DEST]" >&2
    return 2
  fi
  if [[ -f "$dest" ]]; then
    local have
    have=$(_sha256_of "$dest")
    if [[ "$have" == "$expected" ]]; then
      return 0
    fi
    echo "$dest exists but its SHA-256 is $have, expected $expected: remove it to download again" >&2
    return 1
  fi
  mkdir -p "$(dirname "$dest")"
  local part="$dest.part"
  if command -v curl >/dev/null; then
    curl --fail --location --silent --show-error --continue-at - --output "$part" "$url" || {
      echo "download of $url failed (partial data kept in $part, rerun to resume)" >&2
      return 1
    }
  elif command -v wget >/dev/null; then
    wget --quiet --continue --output-document="$part" "$url" || {
      echo "download of $url failed (partial data kept in $part, rerun to resume)" >&2
      return 1
    }
  else
    echo "neither curl nor wget is installed" >&2
    return 1
  fi
  local got
  got=$(_sha256_of "$part")
  if [[ "$got" != "$expected" ]]; then
    rm -f "$part"
    echo "checksum mismatch for $url: got $got, expected $expected (download deleted)" >&2
    return 1
  fi
  mv -f "$part" "$dest"
}

# extract_safely ARCHIVE DIR
# Extracts a .tar, .tar.gz/.tgz, .tar.bz2, .tar.xz or .zip into DIR after checking every member: absolute
# paths, '..' components, links pointing outside DIR and device/fifo entries are refused, and then NOTHING
# is extracted. Extraction goes to a temporary folder inside DIR's parent, then moves into DIR.
extract_safely() {
  local archive="$1" dest="$2"
  if [[ ! -f "$archive" ]]; then
    echo "extract_safely: archive not found: $archive" >&2
    return 1
  fi
  mkdir -p "$dest"
  local tmp
  tmp=$(mktemp -d "$(dirname "$(realpath "$dest")")/.extract-XXXXXX")
  if ! python3 - "$archive" "$tmp" <<'PYEOF'
import os
import posixpath
import sys
import tarfile
import zipfile

archive, target = sys.argv[1], sys.argv[2]


def refuse(member, reason):
    sys.exit(f'extract_safely: refusing {archive}: member {member!r} {reason}; nothing was extracted')


def check_path(name):
    if name.startswith('/') or name.startswith('\\') or (len(name) > 1 and name[1] == ':'):
        refuse(name, 'has an absolute path')
    parts = name.replace('\\', '/').split('/')
    if '..' in parts:
        refuse(name, "contains a '..' component")


def inside(base_dir, link_target):
    resolved = posixpath.normpath(posixpath.join(base_dir, link_target))
    return not (resolved == '..' or resolved.startswith('../') or resolved.startswith('/'))


if zipfile.is_zipfile(archive):
    with zipfile.ZipFile(archive) as z:
        for info in z.infolist():
            check_path(info.filename)
            mode = info.external_attr >> 16
            if mode and (mode & 0o170000) == 0o120000:  # a symlink stored in the zip
                target_name = z.read(info).decode('utf-8', 'replace')
                if target_name.startswith('/') or not inside(posixpath.dirname(info.filename), target_name):
                    refuse(info.filename, f'is a link to {target_name!r} outside the destination')
        z.extractall(target)
else:
    try:
        tar = tarfile.open(archive)
    except tarfile.TarError as e:
        sys.exit(f'extract_safely: {archive} is neither a zip nor a readable tar archive ({e})')
    with tar:
        members = tar.getmembers()
        for m in members:
            check_path(m.name)
            if m.issym():
                if m.linkname.startswith('/') or not inside(posixpath.dirname(m.name), m.linkname):
                    refuse(m.name, f'is a symlink to {m.linkname!r} outside the destination')
            elif m.islnk():
                check_path(m.linkname)
                if not inside('', m.linkname):
                    refuse(m.name, f'is a hard link to {m.linkname!r} outside the destination')
            elif not (m.isfile() or m.isdir()):
                refuse(m.name, 'is a device, fifo or other special file')
        tar.extractall(target, members=members, filter='tar' if hasattr(tarfile, 'data_filter') else None)
PYEOF
  then
    rm -rf "$tmp"
    return 1
  fi
  # move the extracted entries into place (merging with what DEST already holds)
  (shopt -s dotglob; cp -a "$tmp"/* "$dest"/ 2>/dev/null || true)
  rm -rf "$tmp"
}

# extract_archives DIR DEST [PATTERN...]
# Extracts every archive in DIR matching the patterns (default *.zip *.tgz *.tar.gz *.tar) into DEST with
# extract_safely, once: a marker file next to the archive records a finished extraction.
extract_archives() {
  local dir="$1" dest="$2"
  shift 2
  local patterns=("$@")
  [[ ${#patterns[@]} -gt 0 ]] || patterns=('*.zip' '*.tgz' '*.tar.gz' '*.tar')
  [[ -d "$dir" ]] || return 0
  local pattern archive marker
  for pattern in "${patterns[@]}"; do
    for archive in "$dir"/$pattern; do
      [[ -e "$archive" ]] || continue
      marker="$(dirname "$archive")/.$(basename "$archive").extracted"
      [[ -f "$marker" ]] || { extract_safely "$archive" "$dest" && touch "$marker"; }
    done
  done
}
