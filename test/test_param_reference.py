"""docs/parameters.md is what the parameter tables generate (``tools/param_reference``)."""

from pathlib import Path

from rtc_controller.control.executor_params import PARAMS
from rtc_controller.tools.param_reference import render

DOC = Path(__file__).resolve().parents[1] / "docs" / "parameters.md"


def test_the_reference_is_current_and_complete():
    text = render()
    assert DOC.read_text() == text, "regenerate: python -m rtc_controller.tools.param_reference > docs/parameters.md"
    assert "| `max_guidance_weight` | `10.0` | yes |" in text and "| `policy` | `'sim'` | no |" in text
    assert all(f"| `{name}` |" in text for name in PARAMS)
