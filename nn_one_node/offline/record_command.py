"""``nn_one_bag record``: record the topics a params file's assembler section needs (its
features' and its label's, with their types, under ``--namespace``) to a rosbag2 bag that
``nn_one_bag train`` takes as it is. ``--print-topics`` only prints them, one a line, for
``ros2 bag record $(...)`` on a robot with ROS.

The subscriptions are rclpy's (``ros/recorder.py``, imported only here: the other commands run
without ROS); everything checked before them is a start-up mistake, one line and exit code 2.
"""

from __future__ import annotations

import math
import os
import sys

from nn_one_node.offline.commands import (CLOCK_TOPIC, CLOCK_TYPE, Failure, check_namespace,
                                          load_document)
from nn_one_node.offline.recording import (BagSink, check_domain_id, check_out, summary,
                                           topics_to_record)


def cmd_record(args) -> int:
    document = load_document(args.params_file)
    namespace = check_namespace(args.namespace)
    topics = topics_to_record(document, namespace, args.params_file)
    if args.print_topics:
        for topic in sorted(topics):
            print(topic)
        return 0
    if args.out is None:
        raise Failure('the bag to write (OUT) is missing: nn_one_bag record --params-file F OUT')
    if args.duration is not None and not (math.isfinite(args.duration) and args.duration > 0):
        raise Failure(f'--duration must be a number of seconds > 0, got {args.duration:g}')
    check_out(args.out)
    check_domain_id(os.environ)
    try:
        from nn_one_node.ros.recorder import record
    except ImportError as err:
        raise Failure('record needs rclpy (source a ROS 2 install, or the venv of this package): '
                      f'{err}') from None
    parent = os.path.dirname(os.path.abspath(args.out))
    try:
        os.makedirs(parent, exist_ok=True)
        sink = BagSink(args.out, args.storage)
    except OSError as err:
        raise Failure(f'cannot write {args.out}: {err}') from None
    print(f'nn_one_bag record: recording {len(topics)} topic(s) to {args.out} '
          f'({", ".join(f"{t} ({ty})" for t, ty in sorted(topics.items()))}); '
          'Ctrl-C to stop', file=sys.stderr, flush=True)
    try:
        # /clock too where something publishes it (a simulator): train then reads the time the
        # nodes saw with use_sim_time (its --clock auto), which the messages' stamps are in
        seconds = record(topics, sink, args.duration, optional={CLOCK_TOPIC: CLOCK_TYPE})
    finally:
        sink.close()
    missing = sorted(t for t in topics if not sink.counts.get(t))
    print(summary(args.out, args.storage, seconds, sink.counts, missing, args.params_file,
                  namespace))
    return 0
