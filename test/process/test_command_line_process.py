"""Every node executable, started with a command-line mistake a user makes (issue 24): one clear
line that says what to change, exit 2, never a traceback."""

import pytest

NODES = ['predictor', 'trainer', 'assembler', 'sim_robot', 'sim_sensor']


@pytest.mark.parametrize('node', NODES)
@pytest.mark.parametrize('mistake, ros_args, args, reason', [
    ('a params file that is not there', ['--params-file', '/no/such/nn_one.yaml'], [],
     'cannot start: params file /no/such/nn_one.yaml: no such file'),
    ('--managed among the ROS arguments', ['--managed'], [],
     'cannot start: --managed is an option of the node, not a ROS argument: put it before '
     '--ros-args'),
    ('an argument rcl does not know', ['--bogus'], [],
     r"cannot start: bad ROS arguments: unknown ROS arguments \['--bogus'\]"),
    ('a parameter override that does not parse', ['-p', 'num_features:=['], [],
     "cannot start: bad ROS arguments: .*Couldn't parse parameter override rule"),
])
def test_a_command_line_mistake_is_one_line_and_exit_2(ros, tmp_path, node, mistake, ros_args,
                                                        args, reason):
    proc = ros.start(node, ros_args=ros_args, args=args)
    proc.wait_for_output(reason)
    assert proc.proc.wait(timeout=20) == 2, mistake
    out = proc.output()
    assert 'Traceback' not in out, out
    assert len([line for line in out.splitlines() if 'cannot start' in line]) == 1, out
