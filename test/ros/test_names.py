"""``nn_one_node.names.expand_topic_name`` (pure, used by nn_one_bag) against rclpy's own
expansion, on a table of names, node names and namespaces: the same fully qualified name, or a
refusal from both. rclpy's side is what a node does: ``rclpy.expand_topic_name`` followed by
``validate_full_topic_name`` (as ``create_subscription`` does), and a real node's
``resolve_topic_name(only_expand=True)``."""

import pytest
import rclpy
from rclpy.expand_topic_name import expand_topic_name as rclpy_expand
from rclpy.validate_full_topic_name import validate_full_topic_name

from nn_one_node.names import InvalidName, expand_topic_name, node_namespace

NAMES = [
    'scan', '/scan', 'odom', 'joint_states', 'a/b/c', '/a/b/c', '_x', 'x_', 'a/__b', 'A9/b_1',
    '~', '~/bump', '~/a/b', '{node}', '{node}/state', 'a{node}b', '{ns}/x', '{namespace}/x',
    '{ns}', '~/{node}', 'ns/{node}/x', '{node}{ns}', '/{node}/x', '/{ns}/x',
    # refused: by rcl's check of the name, by a substitution, or by rmw's check of the result
    '', '/', 'scan/', '/scan/', '~/', '1scan', 'a/1b', '/1b', 'sc an', 'scan-2', 'sc.an',
    'ä', '~scan', 'a~', '/a~b', '{bad}/x', '{}', '{node', 'a}', '{a{b}}', '{1}', '{a/b}',
    '{a b}', 'a//b', '//scan', '/a//b', '~//a', '{ns}/{ns}', 'x' * 246, 'x' * 247,
    '/' + 'x' * 246, '/' + 'x' * 247,
]
NAMESPACES = ['/', '/robot1', '/robot1/arm', '/r_2']
NODES = ['assembler', 'asm_2']
REFUSED = 'refused'


def rclpy_result(name, node, namespace):
    try:
        out = rclpy_expand(name, node, namespace)
        validate_full_topic_name(out)
        return out
    except (ValueError, rclpy.exceptions.InvalidTopicNameException):
        return REFUSED


def ours(name, node, namespace):
    try:
        return expand_topic_name(name, node, namespace)
    except InvalidName as err:
        assert repr(name) in str(err) or repr(namespace) in str(err) or repr(node) in str(err)
        return REFUSED


@pytest.mark.parametrize('namespace', NAMESPACES)
@pytest.mark.parametrize('node', NODES)
def test_expansion_agrees_with_rclpy(node, namespace):
    disagree = []
    for name in NAMES:
        want, got = rclpy_result(name, node, namespace), ours(name, node, namespace)
        if want != got:
            disagree.append((name, want, got))
    assert not disagree
    # the table holds both outcomes, so the comparison above tests something
    outcomes = [ours(n, node, namespace) == REFUSED for n in NAMES]
    assert sum(outcomes) > 20 and outcomes.count(False) > 15


@pytest.mark.parametrize('namespace', ['', 'r1', '/r1/', '//r1', '/1r', '/r 1', '/r1/~', '/r-1',
                                       '/' + 'n' * 244, '/' + 'n' * 245, '/r1', '/robot_1/arm'])
def test_bad_namespaces_are_refused_as_rclpy_refuses_them(namespace):
    assert rclpy_result('x', 'assembler', namespace) == ours('x', 'assembler', namespace)


@pytest.mark.parametrize('node', ['', '1a', 'a/b', 'as sembler', 'a-b', 'n' * 255, 'n' * 256])
def test_bad_node_names_are_refused_as_rclpy_refuses_them(node):
    assert rclpy_result('~/x', node, '/') == ours('~/x', node, '/')


@pytest.mark.parametrize('given', ['', '/', 'robot1', '/robot1', 'robot1/arm'])
def test_a_real_node_resolves_as_the_pure_function_does(domain_id, given):
    """A node made with namespace ``given`` (rcl completes it as ``node_namespace`` does)
    resolves each valid name of the table as ``expand_topic_name`` does."""
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain_id)
    try:
        node = rclpy.create_node('assembler', namespace=given, context=context)
        try:
            assert node.get_namespace() == node_namespace(given)
            checked = 0
            for name in NAMES:
                try:
                    want = expand_topic_name(name, 'assembler', node_namespace(given))
                except InvalidName:
                    continue
                assert node.resolve_topic_name(name, only_expand=True) == want, name
                checked += 1
            assert checked > 15
        finally:
            node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)
