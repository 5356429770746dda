"""docs/parameters.md is what the parameter schema generates (``tools/param_reference``)."""

from pathlib import Path

from rtc_controller.app.node_tables import table
from rtc_controller.tools.param_reference import NODES, render

DOC = Path(__file__).resolve().parents[1] / "docs" / "parameters.md"


def test_the_reference_is_current_and_complete():
    text = render()
    assert DOC.read_text() == text, "regenerate: python -m rtc_controller.tools.param_reference > docs/parameters.md"
    assert "| `max_guidance_weight` | float | `10.0` |  | yes |" in text and "| `policy` | str | `'sim'` |  | no |" in text
    assert "| `fixed_d` | int | `-1` | action steps | yes |" in text
    for node in NODES:
        assert f"## `{node}`" in text
        assert all(f"| `{name}` |" in text for name in table(node)), node
