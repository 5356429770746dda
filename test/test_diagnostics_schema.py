"""The switch status the executor node writes reads back as the same SwitchRecord (analysis.diagnostics_schema)."""

import numpy as np

from rtc_controller.analysis.diagnostics_schema import SwitchRecord, status_name, switch_values
from rtc_controller.control.timeline import SwitchEvent


def _event() -> SwitchEvent:
    return SwitchEvent(t_switch_s=1.7e9 + 0.25, t_obs_s=1.7e9, delay_s=0.31, k_star=16, guided_d=16,
                       jump=np.array([0.003, 0.004, 0.0]), jump_linear_m=0.005, jump_angular_rad=0.01,
                       jump_gripper_m=0.0, from_hold=False)  # fmt: skip


def test_written_keys_read_back_as_the_record():
    ev = _event()
    values = switch_values(ev)
    assert [k for k, _ in values] == ["t_switch_s", "t_obs_s", "delay_s", "k_star", "guided_d", "jump_norm",
                                      "jump_linear_m", "jump_angular_rad", "jump_gripper_m", "from_hold"]
    back = SwitchRecord.from_values({k: repr(v) for k, v in values})  # as strings, like KeyValue
    assert back == SwitchRecord.from_event(ev)
    assert back.jump == ev.jump_norm == 0.005 and back.guided_d == 16 and back.from_hold is False


def test_the_ros_side_writes_the_schema():
    from rtc_controller.ros.executor_diagnostics import switch_event_to_status

    st = switch_event_to_status(_event(), "executor_node")
    assert st.name == status_name("executor_node", "switch")
    rec = SwitchRecord.from_values({kv.key: kv.value for kv in st.values})
    assert rec.k_star == 16 and abs(rec.jump - 0.005) < 1e-9 and abs(rec.t_switch_s - (1.7e9 + 0.25)) < 1e-6


def test_strict_reading_refuses_a_switch_status_it_cannot_read():
    import pytest

    values = {k: repr(v) for k, v in switch_values(_event())}
    assert SwitchRecord.from_values(values, strict=True) == SwitchRecord.from_event(_event())
    with pytest.raises(KeyError):
        SwitchRecord.from_values({k: v for k, v in values.items() if k != "k_star"}, strict=True)
    with pytest.raises(ValueError):
        SwitchRecord.from_values(values | {"t_obs_s": "later"}, strict=True)
