"""The offline guidance demo reproduces the expected ordering at the seed's settings: stop < full < none."""

from rtc_controller.tools import guidance_demo


def test_stop_beats_full_beats_none_at_seed_settings():
    _, prefix, weights, chunks, table = guidance_demo.run(
        horizon=100, delay=16, execution_horizon=64, beta=10.0, num_steps=10, batch=32, seed=0
    )
    assert weights[:16].min() == 1.0 and weights[36:].max() == 0.0
    jumps = {m: table[m]["switch_jump"] for m in table}
    assert jumps["stop"] < jumps["full"] < jumps["none"]
    assert jumps["stop"] < 0.2 * jumps["none"]
    assert table["stop"]["frozen_mismatch"] < 0.1


def test_cli_writes_figure_and_table(tmp_path, capsys):
    assert guidance_demo.main(["--out", str(tmp_path), "--batch", "4", "--horizon", "40", "--delay", "5",
                               "--execution-horizon", "20"]) == 0
    assert (tmp_path / "guidance_stop.png").stat().st_size > 10_000
    assert (tmp_path / "guidance_full.png").stat().st_size > 10_000
    assert "switch jump" in capsys.readouterr().out
