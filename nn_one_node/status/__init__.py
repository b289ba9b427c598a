"""The status view of a running stack, without ROS: what the nodes' ``/diagnostics`` and
parameters say, gathered into one document (``view``), with the advice for each WARN
(``advice``), rendered as a table or JSON (``render``). ``tools/status.py`` is its rclpy side."""
