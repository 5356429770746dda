"""Bag and episode analysis (ROS-free): the diagnostics schema the executor node writes and the reports read,
one jump and one jerk definition, a run's records from its bag, statistics, figures and report sections. The
demo, eval and replay CLIs (``tools/``) only call it."""
