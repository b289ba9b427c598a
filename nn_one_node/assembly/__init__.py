"""The assembly of rows: a robot's typed topics into feature rows and late-labeled samples,
without ROS (the ``assembler`` node and ``nn_one_bag`` drive the same code).

Modules, lowest first: ``errors`` (ConfigError, MessageFault), ``entries`` (the entry grammar),
``msgtypes`` (message type resolution), ``sector`` (a scan's beams by angle), ``leaves`` (the
leaf getters and a LaserScan's invalid readings), ``getters`` (an entry compiled against its
type), ``config`` (the parameter table, its checks, AssemblerConfig and the feature count),
``ring`` (the row history) and ``assembler`` (the Assembler).
"""
