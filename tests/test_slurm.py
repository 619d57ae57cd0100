"""A crop stage submitted as a real Slurm job array: every array task handles its shard (from
SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT), and together they produce the full result."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from posepile.preproc.pipeline import load_crop_results

REPO = Path(__file__).resolve().parent.parent
N_TASKS = 12


def _slurm_is_up():
    if shutil.which('sbatch') is None or shutil.which('sinfo') is None:
        return False
    result = subprocess.run(['sinfo', '-h', '-o', '%T'], capture_output=True, text=True)
    return result.returncode == 0 and any(s in result.stdout for s in ('idle', 'mixed', 'allocated'))


@pytest.mark.skipif(not _slurm_is_up(), reason='no running Slurm cluster (CI sets one up with .ci/setup_slurm.sh)')
def test_job_array_runs_all_shards(tmp_path):
    data_root = tmp_path / 'data'
    data_root.mkdir()
    script = tmp_path / 'job.sh'
    script.write_text(f'''#!/bin/bash
#SBATCH --array=0-2
#SBATCH --output={tmp_path}/slurm-%A_%a.out
#SBATCH --cpus-per-task=1
cd {REPO}
export OMP_NUM_THREADS=1
echo "task $SLURM_ARRAY_TASK_ID of $SLURM_ARRAY_TASK_COUNT"
exec {sys.executable} -m tests.crop_stage_job {data_root} {N_TASKS}
''')
    result = subprocess.run(['sbatch', '--wait', '--parsable', str(script)], capture_output=True, text=True,
                            timeout=600, env=dict(os.environ))
    logs = '\n'.join(p.read_text() for p in sorted(tmp_path.glob('slurm-*.out')))
    assert result.returncode == 0, result.stderr + logs
    assert sorted(line for line in logs.splitlines() if line.startswith('task ')) == [
        'task 0 of 3', 'task 1 of 3', 'task 2 of 3']
    shard_files = sorted(p.name for p in (data_root / 'results').glob('*.pkl'))
    assert shard_files == [f'crops_shard-{i:04d}-of-0003.pkl' for i in range(3)]
    results = load_crop_results(data_root / 'results')
    assert [key for key, _ in results] == [f'{i:04d}' for i in range(N_TASKS)]
