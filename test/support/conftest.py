"""The support modules are imported by the tests, not collected: --doctest-modules would
import each one (launch_support needs launch, installed only on a ROS machine)."""

collect_ignore_glob = ['*.py']
