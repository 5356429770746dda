"""The composition layer (ROS-free): what binds the layers below into the nodes' parts (drivers: the driver
factory; policies: the policy registry)."""
