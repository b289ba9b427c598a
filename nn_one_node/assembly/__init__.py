"""The assembly of rows: a robot's typed topics into feature rows and late-labeled samples,
without ROS (the ``assembler`` node and ``nn_one_bag`` drive the same code).

Modules, lowest first: ``errors`` (ConfigError, MessageFault), ``entries`` (the entry grammar),
``msgtypes`` (message type resolution), ``leaves`` (the leaf getters and REP 117), ``getters``
(an entry compiled against its type), ``config`` (the parameter table, its checks and
AssemblerConfig), ``ring`` (the row history) and ``assembler`` (the Assembler).
"""
