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
# Extracts a .tar, .tar.gz/.tgz, .tar.bz2, .tar.xz or .zip into DIR (posepile/util/archives.py): unsafe
# members (absolute paths, '..', links leaving DIR, devices/fifos) refuse the whole archive; free space is
# checked first; the result is checked against the archive's listing; a truncated archive or a full disk
# is reported in one line naming the file, and nothing partial is left behind.
extract_safely() {
  python -m posepile.util.archives "$1" "$2"
}

# extract_archives DIR DEST [PATTERN...]
# Extracts every archive in DIR matching the patterns (default *.zip *.tgz *.tar.gz *.tar) into DEST with
# extract_safely, once: a marker file next to the archive records a finished extraction (with the archive's
# size and mtime, so a replaced archive is extracted again). Every archive is tried; if any failed, the
# function fails with a one-line summary, unless SKIP_BROKEN=1, which reports them and goes on.
extract_archives() {
  local dir="$1" dest="$2"
  shift 2
  local patterns=("$@")
  [[ ${#patterns[@]} -gt 0 ]] || patterns=('*.zip' '*.tgz' '*.tar.gz' '*.tar')
  [[ -d "$dir" ]] || return 0
  local pattern archive marker stamp failed=()
  for pattern in "${patterns[@]}"; do
    for archive in "$dir"/$pattern; do
      [[ -e "$archive" ]] || continue
      marker="$(dirname "$archive")/.$(basename "$archive").extracted"
      stamp="$(stat -c '%s %Y' "$archive")"
      if [[ -f "$marker" && "$(cat "$marker")" == "$stamp" ]]; then
        continue
      fi
      if extract_safely "$archive" "$dest"; then
        echo "$stamp" > "$marker"
      else
        failed+=("$archive")
      fi
    done
  done
  if [[ ${#failed[@]} -gt 0 ]]; then
    if [[ "${SKIP_BROKEN:-0}" == 1 ]]; then
      echo "extract_archives: SKIP_BROKEN=1: going on without ${#failed[@]} archive(s): ${failed[*]}" >&2
      return 0
    fi
    echo "extract_archives: ${#failed[@]} archive(s) could not be extracted: ${failed[*]} (fix them, or set SKIP_BROKEN=1 to build the rest)" >&2
    return 1
  fi
}
