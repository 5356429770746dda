"""The demo report's figures say what they show, per episode, in the table's units; the report's closing line."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from rtc_controller.action_space import action_names  # noqa: E402
from rtc_controller.analysis import plots as demo_plots  # noqa: E402
from rtc_controller.analysis.runs import ModeRun, SwitchRecord  # noqa: E402


def _run(mode="stop", *, switch_times=(1.0, 2.0, 50.0), starts=(0, 5)):
    names = tuple(action_names())
    t = np.linspace(0.0, 8.0, 81)
    sw = [SwitchRecord(ts, 0.3, 16, 16, 0.01, 0.004, 0.0, False) for ts in switch_times]
    return ModeRun(mode, sw, t, t * 0, t, t * 0, t, np.zeros((81, len(names))), names, np.ones(10), np.ones(10) * 2,
                   0.0, 0, episode_starts=starts)


def test_trajectory_draws_only_the_first_episodes_switches_and_names_the_arm():
    fig = demo_plots._plot_trajectory(plt, [_run()])
    ax = fig.axes[0]
    assert len(ax.lines) == 1 + 2, "the trajectory and the two switches inside 0…8 s, not the one at 50 s"
    assert "left arm" in ax.get_title()
    plt.close(fig)


def test_jumps_in_mm_and_lateness_with_episode_boundaries_and_outside_legend():
    fig = demo_plots._plot_jumps(plt, [_run()])
    assert "[mm]" in fig.axes[1].get_ylabel()
    assert fig.axes[1].get_lines()  # the boxplot of 4 mm jumps
    plt.close(fig)
    fig = demo_plots._plot_lateness(plt, [_run()])
    ax = fig.axes[0]
    assert [ln.get_xdata()[0] for ln in ax.lines[2:]] == [4.5], "one boundary between the two episodes"
    fig.canvas.draw()
    legend = ax.get_legend().get_window_extent()
    assert legend.x0 >= ax.get_window_extent().x1, "the legend sits right of the data"
    plt.close(fig)


def test_the_closing_line_states_the_order_and_whether_success_separates():
    jumps = {"none": {"mean_jump": 0.12}, "stop": {"mean_jump": 0.005}, "full": {"mean_jump": 0.023}}
    assert demo_plots.conclusion(jumps) == "What this run shows: mean jump at chunk switches stop 0.005 < full 0.023 < none 0.12."
    few = {m: {**s, "successes": k, "episodes": 5} for (m, s), k in zip(jumps.items(), (2, 4, 3))}
    assert "5 episode(s) per mode do not separate the modes" in demo_plots.conclusion(few)
    many = {m: {**s, "successes": k, "episodes": 100} for (m, s), k in zip(jumps.items(), (10, 95, 60))}
    assert "separates none/stop, none/full, stop/full" in demo_plots.conclusion(many)
