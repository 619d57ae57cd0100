#!/usr/bin/env bash
# Install (if needed) and run the demo: a synthetic multi-view capture through the whole pipeline.
# Outputs go to ${DEMO_DATA_ROOT:-./out/demo}; rerunning resumes where it stopped.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$repo_root/scripts/setup_env.sh"
cd "$repo_root"
export DATA_ROOT="${DEMO_DATA_ROOT:-$repo_root/out/demo}"
mkdir -p "$DATA_ROOT"
exec bash posepile/ds/demo/main.sh "$@"
