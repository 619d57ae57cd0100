#!/usr/bin/env bash
# Build every registered dataset whose raw release is in $DATA_ROOT, or the named ones:
#   bash posepile/ds/build_all.sh [NAME...]
# NAME is a registered dataset (h36m_alljoints builds with h36m, coco_single with coco; fit3d, chi3d and
# humansc3d are separate runs of posepile/ds/imar/main.sh). Which raw folder and files prove a release is
# present: posepile/status.py (RECIPES); `posepile status` shows it per dataset. The demo recipe generates its
# own release, so it runs only when named (or once generated).
#
# Each recipe run writes its own log, $DATA_ROOT/logs/<run>.log (overwritten per run), ending with a line
# "[build_all] <run>: exit status N (<date>)" that `posepile status` reads. A failing recipe does not stop the
# others; at the end a summary lists which succeeded, which failed (with the last line of their log) and which
# were skipped because their raw release is absent. Exit status 1 if any failed, else 0.
#
# Slurm: with POSEPILE_SLURM=1 and sbatch on PATH, each recipe run is submitted as one job instead
# (sbatch --wrap "bash posepile/ds/<module>/main.sh ...", output = its log; extra sbatch options from
# POSEPILE_SLURM_OPTIONS, e.g. "--cpus-per-task=16 --time=2-00:00"). Inside a job the stages use all the job's
# CPUs (their --workers default); for sharding one stage across nodes, submit that stage as an array yourself:
# the stages taking --shard default to the array task (SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT).
set -uo pipefail  # no -e: a failing recipe is recorded and the next one runs
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
source "$here/functions.sh"
check_data_root || exit 2

plan="$(cd "$repo" && python -m posepile.status --build-plan "$@")" || exit 2
logs="$DATA_ROOT/logs"
mkdir -p "$logs" || exit 2

use_slurm=0
if [[ "${POSEPILE_SLURM:-0}" == 1 ]]; then
  if command -v sbatch >/dev/null; then
    use_slurm=1
  else
    echo "build_all: POSEPILE_SLURM=1 but sbatch is not on PATH: running here" >&2
  fi
fi

stamp() { date -u +%Y-%m-%dT%H:%M:%SZ; }
last_line() { grep -v -e '^[[:space:]]*$' -e '^\[build_all\]' "$1" | tail -n 1; }

succeeded=() failed=() skipped=() submitted=()
mapfile -t lines <<< "$plan"
for line in "${lines[@]}"; do
  [[ -n "$line" ]] || continue
  IFS=$'\t' read -r run present module expected args <<< "$line"
  if [[ "$present" != 1 ]]; then
    skipped+=("$run (expected $expected)")
    continue
  fi
  log="$logs/$run.log"
  command="bash posepile/ds/$module/main.sh${args:+ $args}"
  if [[ $use_slurm == 1 ]]; then
    wrap="echo '[build_all] $run: $command (started \$(date -u +%FT%TZ))'; $command; rc=\$?;"
    wrap+=" echo \"[build_all] $run: exit status \$rc (\$(date -u +%FT%TZ))\"; exit \$rc"
    # shellcheck disable=SC2086  # POSEPILE_SLURM_OPTIONS holds several options
    if job=$(sbatch --parsable --job-name "posepile-$run" --chdir "$repo" --output "$log" \
        ${POSEPILE_SLURM_OPTIONS:-} --wrap "$wrap"); then
      submitted+=("$run (job ${job%%;*}, log $log)")
    else
      failed+=("$run: sbatch failed")
    fi
    continue
  fi
  echo "build_all: $run: $command (log: $log)" >&2
  (
    echo "[build_all] $run: $command (started $(stamp))"
    # shellcheck disable=SC2086  # args are dataset names
    (cd "$repo" && bash "posepile/ds/$module/main.sh" $args) < /dev/null
    rc=$?
    echo "[build_all] $run: exit status $rc ($(stamp))"
    exit $rc
  ) > "$log" 2>&1
  if [[ $? == 0 ]]; then
    succeeded+=("$run")
  else
    failed+=("$run: $(last_line "$log")  [log: $log]")
  fi
done

echo "build_all summary: ${#succeeded[@]} succeeded, ${#failed[@]} failed, ${#skipped[@]} skipped (raw release" \
  "absent)${submitted[*]:+, ${#submitted[@]} submitted to Slurm}"
for item in "${submitted[@]+"${submitted[@]}"}"; do echo "  submitted  $item"; done
for item in "${succeeded[@]+"${succeeded[@]}"}"; do echo "  succeeded  $item"; done
for item in "${failed[@]+"${failed[@]}"}"; do echo "  FAILED     $item"; done
if [[ $# -gt 0 ]]; then
  for item in "${skipped[@]+"${skipped[@]}"}"; do echo "  skipped    $item"; done
elif [[ ${#skipped[@]} -gt 0 ]]; then
  names=()
  for item in "${skipped[@]}"; do names+=("${item%% *}"); done
  echo "  skipped    ${names[*]} (posepile status shows where each release is expected)"
fi
[[ ${#failed[@]} == 0 ]]
