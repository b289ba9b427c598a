"""Leave out the launch tests whose dependencies are missing (test_launch_deps.py says which and
why, one skip each): no test module skips at import time (see launch_deps)."""

from launch_deps import NEEDS, missing

collect_ignore = [module for module in NEEDS if missing(module)]
