"""The MuJoCo twin of the dual-arm rig (ROS-free): model, Cartesian controller, task, expert, cameras, episodes.

MuJoCo is imported only by the modules that need it (``scene``, ``world``, ``render``), so the rest of the
package never pulls it in.
"""
