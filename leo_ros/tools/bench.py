"""
leo-bench: benchmarks for leo_ros's speed and accuracy targets.

``leo-bench NAME [ARGS...]`` runs one benchmark; each prints a table and, as its last line,
``key=value`` pairs that scripts can parse. Figures are medians over one run on this machine.
"""

import importlib
import sys

#: benchmark name -> module with ``main(argv) -> int``
BENCHMARKS = {
    'conversions': ('leo_ros.ros.bench', 'PointCloud2 <-> numpy conversion time'),
    'segmentation': ('leo_ros.perception.bench', 'segmentation accuracy and speed per scene '
                     'kind: PCD files, generated clutter'),
    'actions': ('leo_ros.actions.bench', 'action tokenizer error and tokens per action'),
    'policy': ('leo_ros.model.bench', 'policy decision time, first and later instructions'),
    'e2e': ('leo_ros.tools.bench_e2e', 'instruction in -> first command out, with the world'),
    'sim': ('leo_ros.sim.bench', 'world render time per frame and data-engine throughput'),
    'replay': ('leo_ros.tools.bench_replay', 'frames/s through perception from a bag, beside '
               'live; --ros: replay real-time factor and drops'),
    'soak': ('leo_ros.tools.bench_soak', 'RSS slope per node over unique instructions and '
             '30 Hz clouds'),
    'stop': ('leo_ros.tools.bench_stop', '/leo/stop -> last motion message, Nav2 and gripper '
             'in the loop'),
}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ('-h', '--help') or argv[0] not in BENCHMARKS:
        print(__doc__.strip() + '\n\nbenchmarks:')
        for name, (_, summary) in BENCHMARKS.items():
            print(f'  {name:14s}{summary}')
        if argv and argv[0] not in ('-h', '--help'):
            print(f'\nunknown benchmark: {argv[0]}', file=sys.stderr)
            return 2
        return 0
    module = importlib.import_module(BENCHMARKS[argv[0]][0])
    return module.main(argv[1:])
