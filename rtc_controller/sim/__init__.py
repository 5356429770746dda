"""The MuJoCo twin of the dual-arm rig (ROS-free): model, Cartesian controller, task, expert, cameras, episodes.

MuJoCo is imported only by the modules that need it (``scene`` users, ``world``, ``render``). Its offscreen
rendering backend is chosen when MuJoCo is first imported: this package sets ``MUJOCO_GL=egl`` (headless, Mesa's
EGL renders on the CPU where there is no GPU) unless the environment already chose one.
"""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
