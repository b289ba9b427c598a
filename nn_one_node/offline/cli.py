"""``nn_one_bag``: train and evaluate the model on recorded rosbag2 bags, as the robot does live.

    nn_one_bag info BAG [--params-file CONFIG.yaml] [--namespace NS]
    nn_one_bag train BAG... --params-file CONFIG.yaml --out MODEL.yaml [--report R.png] [--json M]
    nn_one_bag train R1_BAG R2_BAG... --fleet '/r*' --params-file CONFIG.yaml --out MODEL.yaml
    nn_one_bag evaluate BAG... --params-file CONFIG.yaml --weights MODEL.yaml [--report] [--json]
    nn_one_bag record --params-file CONFIG.yaml [--namespace NS] [--duration S] OUT

Reads bags with ``rosbags`` (mcap and sqlite3; no ROS install beyond the venv), streaming them in
receive-time order. The samples are built by the live assembler's code from the params file's
``assembler`` section, or taken from recorded ``labeled_samples`` arrays; training follows the
params file's ``trainer`` section on bag time (see ``offline``). Exit codes: 0 done, 2 bad input
(a missing, truncated or corrupt bag, a topic or type the config needs that the bag lacks, a bad
params or weights file, nothing to learn from; any start-up mistake), with the reason in one
line on stderr; on any failure the model file is neither written nor changed. Topic names are
resolved as the nodes resolve them (``names.expand_topic_name``): relative names under
``--namespace`` (default ``/``), as the assembler and the trainer in that namespace would.
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from nn_one_node import blas_threads  # noqa: F401 - one BLAS thread, as the trainer node
from nn_one_node.offline.bagio import BagError
from nn_one_node.offline.commands import (DEFAULT_LABELED_TOPIC, EXIT_BAD_INPUT, PROG, Failure,
                                          Progress)
from nn_one_node.offline.evaluate_command import cmd_evaluate
from nn_one_node.offline.info_command import cmd_info
from nn_one_node.offline.record_command import cmd_record
from nn_one_node.offline.train_command import cmd_train

# The command line, and what the tests and benchmarks take from this module.
__all__ = ['EXIT_BAD_INPUT', 'PROG', 'Failure', 'Progress', 'console_main', 'main', 'parser']

EPILOG = f"""examples:
  {PROG} record --params-file robot_params.yaml run1/          # Ctrl-C to stop
  {PROG} info run1/ --params-file robot_params.yaml
  {PROG} train run1/ run2/ --params-file robot_params.yaml --out model.yaml \\
      --report train.png --json train.json
  {PROG} evaluate run3/ --params-file robot_params.yaml --weights model.yaml \\
      --report eval.png
  {PROG} train r1_run/ r2_run/ --fleet '/r*' --params-file robot_params.yaml \\
      --out fleet_model.yaml --json fleet.json     # one model from both robots
  ros2 run nn_one_node predictor --ros-args --params-file model.yaml

samples come from the assembler section of the params file (typed topics: Imu, JointState,
LaserScan, Odometry, ... and a label topic), or, without one, from the labeled_samples arrays of
the bag (--source chooses). Topic names resolve as the nodes resolve them: relative names
(scan) under --namespace (default /: /scan; --namespace /robot1: /robot1/scan), ~/name under
the node (/assembler/name). Exit code 2: bad input (the reason is printed; no model written).
"""


class _Parser(argparse.ArgumentParser):
    """A usage mistake is one line (the command, the mistake, where help is) and exit code 2."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f'{self.prog}: error: {message} (see {self.prog} --help)\n')


def parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG, description='Train and evaluate the nn_one_node model on recorded rosbag2 '
        'bags (mcap or sqlite3), building samples as the live nodes do.', epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest='command', required=True,
                           metavar='{train,evaluate,info,record}', parser_class=_Parser)

    def names(sp) -> None:
        sp.add_argument('--namespace', default='/', metavar='NS',
                        help="the nodes' namespace: relative topic names in the params file "
                        "resolve under it, as the nodes' do (default /; e.g. /robot1: 'scan' "
                        'is /robot1/scan)')

    def common(sp, params_required: bool) -> None:
        sp.add_argument('bags', nargs='+', metavar='BAG',
                        help='bag directories (or .mcap / .db3 files), read as one stream in '
                        'receive-time order')
        sp.add_argument('--params-file', required=params_required, metavar='CONFIG.yaml',
                        help='ROS params file: its assembler and trainer sections are used')
        sp.add_argument('--source', choices=('auto', 'assembler', 'labeled'), default='auto',
                        help='samples from the assembler section (typed topics) or from '
                        'recorded labeled_samples arrays; auto: assembler if the params file '
                        'has an assembler section (default)')
        sp.add_argument('--labeled-topic', default=DEFAULT_LABELED_TOPIC,
                        help='topic of the labeled arrays, resolved as the trainer resolves it '
                        f'(default {DEFAULT_LABELED_TOPIC})')
        sp.add_argument('--clock', choices=('auto', 'receive', 'clock'), default='auto',
                        help='bag time: the receive timestamps, or the recorded /clock as the '
                        'nodes see it with use_sim_time; auto: /clock if the bag has it')
        names(sp)

    def outputs(sp) -> None:
        sp.add_argument('--report', metavar='REPORT.png', help='write a PNG report')
        sp.add_argument('--json', metavar='METRICS.json',
                        help="write the figures (the report's among them) as JSON")
        sp.add_argument('-q', '--quiet', action='store_true', help='no progress bar')

    t = sub.add_parser('train', help='learn a model from bags; write it as a weights file',
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    common(t, True)
    outputs(t)
    t.add_argument('--fleet', action='append', metavar='PATTERN',
                   help="the bags of several robots: learn one model from every robot whose "
                   "namespace matches PATTERN (/r*, /r1,/r2; repeatable; the fleet trainer's "
                   'patterns), each read under its namespace, their samples interleaved in '
                   'bag time; per-robot samples and accuracy reported (not with --namespace)')
    t.add_argument('--out', required=True, metavar='MODEL.yaml',
                   help="the model, in the trainer's weights-file format (written atomically; "
                   "load it with predictor --params-file or as the trainer's weights_file)")
    t.set_defaults(func=cmd_train)
    e = sub.add_parser('evaluate', help='score a model on bags',
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    common(e, False)
    outputs(e)
    e.add_argument('--weights', required=True, metavar='MODEL.yaml',
                   help="a weights file (the trainer's, or a params file with weights/bias)")
    e.set_defaults(func=cmd_evaluate)
    i = sub.add_parser('info', help='topics, types and counts; which config entries a bag '
                       'satisfies', epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    common(i, False)
    i.set_defaults(quiet=True)
    i.add_argument('--json', metavar='INFO.json', help='write the same as JSON')
    i.set_defaults(func=cmd_info)
    r = sub.add_parser('record', help='record the topics a params file needs to a bag train '
                       'takes (rclpy subscriptions; Ctrl-C to stop)', epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument('out', nargs='?', metavar='OUT', help='the bag directory to write (new)')
    r.add_argument('--params-file', required=True, metavar='CONFIG.yaml',
                   help="the params file: its assembler section's feature and label topics, "
                   'with their types, are recorded')
    names(r)
    r.add_argument('--duration', type=float, metavar='S',
                   help='stop after S seconds (default: at Ctrl-C or SIGTERM)')
    r.add_argument('--storage', choices=('mcap', 'sqlite3'), default='mcap',
                   help='rosbag2 storage (default mcap)')
    r.add_argument('--print-topics', action='store_true',
                   help='print the topics to record, one a line, and exit (for ros2 bag record)')
    r.set_defaults(func=cmd_record)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (Failure, BagError) as err:
        print(f'{PROG} {args.command}: error: {err}', file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f'{PROG} {args.command}: interrupted; nothing written', file=sys.stderr)
        return 130


def console_main() -> None:
    sys.exit(main())


if __name__ == '__main__':
    console_main()
