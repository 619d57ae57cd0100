"""Check the demo's last `summary:` line against the floors the project promises (see README)."""
import json
import sys
from pathlib import Path

# Floors measured on the demo capture and justified in posepile/ds/demo/README.md.
MIN_SEG_IOU = 0.70
MAX_REPROJ_PX = 1.0


def main(log_path):
    lines = [ln for ln in Path(log_path).read_text().splitlines() if ln.startswith('summary: ')]
    if not lines:
        sys.exit(f'{log_path}: the demo printed no "summary: " line')
    summary = json.loads(lines[-1][len('summary: '):])
    required = ['frames', 'examples', 'seg_iou', 'reproj_px', 'mpjpe_mm', 'seconds', 'contact_sheet']
    missing = [k for k in required if k not in summary]
    problems = [f'missing keys {missing}'] if missing else []
    if not missing:
        if summary['examples'] <= 0:
            problems.append('no examples were built')
        if not summary['seg_iou'] >= MIN_SEG_IOU:
            problems.append(f'segmentation IoU {summary["seg_iou"]} < {MIN_SEG_IOU}')
        if not summary['reproj_px'] < MAX_REPROJ_PX:
            problems.append(f'crop reprojection error {summary["reproj_px"]} px >= {MAX_REPROJ_PX}')
        if not Path(summary['contact_sheet']).is_file():
            problems.append(f'contact sheet {summary["contact_sheet"]} does not exist')
    if problems:
        sys.exit('demo summary check failed: ' + '; '.join(problems))
    print('demo summary OK:', json.dumps(summary))


if __name__ == '__main__':
    main(sys.argv[1])
