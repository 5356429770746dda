"""The executor's mode table (``control/executor_modes``) and the core following it."""

import ast
from pathlib import Path

import pytest

from rtc_controller.control.executor_modes import ACTIVE, EVENTS, MODES, TRANSITIONS, next_mode, transition

EXECUTOR = Path(__file__).resolve().parents[1] / "rtc_controller" / "control" / "executor.py"


def test_the_table_names_only_known_modes_and_events():
    for (mode, event), after in TRANSITIONS.items():
        assert mode in MODES and event in EVENTS and after in MODES


def test_stopped_is_final_and_every_mode_can_stop():
    assert all(next_mode(m, "stop") == "stopped" for m in MODES)
    assert [e for e in EVENTS if next_mode("stopped", e) not in (None, "stopped")] == []


def test_a_fault_is_left_only_by_rearm_or_stop():
    assert {e for e in EVENTS if next_mode("faulted", e)} == {"rearm", "stop"}
    assert next_mode("faulted", "rearm") == "holding", "after a fault the arms hold until ~/resume"
    assert all(next_mode(m, "fault") == "faulted" for m in ("idle", *ACTIVE))


def test_resume_leaves_hold_only():
    assert next_mode("holding", "resume") == "running"
    assert next_mode("holding", "resume_with_approach") == "approaching"
    assert next_mode("running", "resume") is None and next_mode("idle", "resume") is None
    with pytest.raises(ValueError, match="no transition for event 'resume' in mode 'faulted'"):
        transition("faulted", "resume")


def test_the_executor_sets_its_mode_only_through_the_table():
    """Every ``self.mode = …`` in the executor core is a table lookup (``transition``/``next_mode``) or idle."""
    tree = ast.parse(EXECUTOR.read_text())
    literal = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Attribute) and t.attr == "mode" for t in targets):
                if isinstance(node.value, ast.Constant) and node.value.value != "idle":
                    literal.append(node.lineno)
    assert not literal, f"executor.py sets a mode literally at lines {literal}: use executor_modes.transition"
