"""The composition layer (ROS-free): what binds the layers below into the nodes' parts (the driver factory)."""
