"""Bag files: the typestore, typed readers and the writer of rosbag2 (sqlite3 / MCAP) files, and message
sequence gaps. ROS-free (the ``rosbags`` library, no rclpy); used by the recorder node, replay and analysis."""
