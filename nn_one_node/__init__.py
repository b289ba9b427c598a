"""nn_one_node: a multi-input, one-output neural model served and trained on ROS 2."""
