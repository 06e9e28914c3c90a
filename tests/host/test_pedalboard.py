"""Real-host tests: the release VST3 bundle loaded in pedalboard (Spotify's
JUCE-based Python host).

Run through `bash tests/run-all.sh`, which builds the bundle first
(`cargo xtask bundle tubeline --release`). The bundle path can be overridden
with TUBELINE_VST3 (it must be the `.vst3` bundle folder, not the `.so`).

Facts about pedalboard these tests rely on (checked against pedalboard 0.9):
- Parameters are named by display name plus unit in snake case
  ("Input Trim" in dB -> `input_trim_db`). Assigning an unknown attribute
  silently does nothing, so `set_param` checks the name first.
- pedalboard compensates the reported latency itself: `process()` returns
  output aligned with the input (test_reported_latency_is_compensated checks
  this with an impulse), so the other tests compare sample by sample.
- pedalboard processes with the host's offline mode, so the plugin runs at
  High quality here.
- A parameter change made between `process()` calls ramps over 20 ms inside
  the plugin, so level measurements skip the first SETTLE seconds.
"""

import math
import os
from pathlib import Path

import numpy as np
import pytest

import pedalboard  # noqa: E402  (a missing pedalboard must fail, not skip)

ROOT = Path(__file__).resolve().parents[2]
VST3 = Path(
    os.environ.get("TUBELINE_VST3")
    or Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target") / "bundled" / "Tubeline.vst3"
)

SR = 48_000
FREQ = 1_000.0
LEVEL_DBFS = -20.0  # peak level of the test sine
DURATION = 0.5  # seconds
SETTLE = 0.05  # seconds skipped before measuring (the parameter ramp is 20 ms)

# Every parameter pedalboard shows, by its pedalboard name: display name (unit).
CORE_PARAMETERS = {
    # Input
    "calibration": "Calibration",
    "source": "Source",
    "input_trim_db": "Input Trim (dB)",
    # Preamp
    "pad": "Pad",
    "polarity": "Polarity",
    # Output
    "output_trim_db": "Output Trim (dB)",
    "mix": "Mix (%)",
    "bypass": "Bypass",
    "compare_dry": "Compare Dry",
    "quality": "Quality",
}
DI_PARAMETERS = {
    "di": "DI",
    "di_ratio": "DI Ratio",
    "di_pad": "DI Pad (dB)",
    "ground_lift": "Ground Lift",
    "mains": "Mains (Hz)",
    "di_source": "DI Source",
    "di_load_ohm": "DI Load (ohm)",
    "cable_m": "Cable (m)",
}
MIC_PARAMETERS = {
    "mic": "Mic",
    "input_impedance": "Input Impedance",
    "input_transformer": "Input Transformer",
}
PREAMP_PARAMETERS = {
    "preamp": "Preamp",
    "preamp_type": "Preamp Type",
    "gain_db": "Gain (dB)",
    "level_db": "Level (dB)",
    "tube": "Tube",
    "bias": "Bias",
    "high_pass": "High-pass",
    "preamp_output_db": "Preamp Output (dB)",
    "auto_gain": "Auto Gain",
}
# A later issue that adds parameters (e.g. the headphone amp) adds them here.
HEADPHONE_PARAMETERS = {
    "headphone_amp": "Headphone Amp",
    "amp_output_impedance_ohm": "Amp Output Impedance (ohm)",
    "amp_volume_db": "Amp Volume (dB)",
    "amp_swing_v": "Amp Swing (V)",
    "headphone": "Headphone",
    "normalize_level": "Normalize Level",
}
EXPECTED_PARAMETERS = {
    **CORE_PARAMETERS,
    **DI_PARAMETERS,
    **MIC_PARAMETERS,
    **PREAMP_PARAMETERS,
    **HEADPHONE_PARAMETERS,
}

# The switch of every stage in the chain and its "out" value. A later issue
# that adds a stage adds its switch here, so "all stages out" stays true.
STAGES_OUT = {
    "di": False,
    "preamp": False,
    "headphone_amp": False,
}

# Nominal level of each source relative to the pro line (+4 dBu): with every
# stage out, this is the level change the Source parameter alone gives.
SOURCE_OFFSET_DB = {
    "Mic": -50.0 - 4.0,
    "Instrument": -20.0 - 4.0,
    "Consumer line -10 dBV": (-10.0 - 20.0 * math.log10(0.7745966692414834)) - 4.0,
    "Pro line +4 dBu": 0.0,
}


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def sine(channels, seconds=DURATION, dbfs=LEVEL_DBFS, freq=FREQ):
    """A sine at `dbfs` peak, one row per channel (channel n is phase-shifted
    by n * 90 degrees, so a channel mix-up shows)."""
    t = np.arange(int(seconds * SR)) / SR
    amp = 10.0 ** (dbfs / 20.0)
    rows = [amp * np.sin(2 * np.pi * freq * t + c * np.pi / 2) for c in range(channels)]
    return np.asarray(rows, dtype=np.float32)


def steady(x):
    """The part of a signal after the parameter ramp."""
    return x[:, int(SETTLE * SR) :]


def rms(x):
    return float(np.sqrt(np.mean(np.square(x.astype(np.float64)))))


def gain_db(y, x):
    """Level of `y` relative to `x`, in dB, over the steady part."""
    return 20.0 * math.log10(rms(steady(y)) / rms(steady(x)))


def max_err(y, x):
    return float(np.max(np.abs(y.astype(np.float64) - x.astype(np.float64))))


def best_lag(y, x, max_lag=512):
    """The delay of `y` against `x` (first channel) that matches best."""
    a, b = x[0].astype(np.float64), y[0].astype(np.float64)
    errs = [np.max(np.abs(b[lag:] - a[: len(a) - lag])) for lag in range(max_lag)]
    return int(np.argmin(errs))


def set_param(plugin, name, value):
    """Set a parameter by its pedalboard name and return the value read back.
    pedalboard silently ignores unknown attributes, so check the name first."""
    assert name in plugin.parameters, (
        f"no parameter {name!r}; pedalboard shows: {sorted(plugin.parameters.keys())}"
    )
    setattr(plugin, name, value)
    return getattr(plugin, name)


def all_stages_out(plugin):
    """Every stage out and a pro-line source: the chain is an exact identity.
    (The plugin's defaults put the tube preamp in, with a mic source.)"""
    for name, out in STAGES_OUT.items():
        set_param(plugin, name, out)
    set_param(plugin, "source", "Pro line +4 dBu")


def process(plugin, x):
    y = plugin.process(x, SR)
    assert y.shape == x.shape, f"output shape {y.shape} != input shape {x.shape}"
    assert np.all(np.isfinite(y)), "non-finite output"
    return y


def assert_same(y, x, what, tol=1e-6):
    err = max_err(y, x)
    if err > tol:
        lag = best_lag(y, x)
        pytest.fail(
            f"{what}: max |out - in| = {err:.3g} > {tol:g}"
            + (f" (the output matches best {lag} samples late: latency not compensated?)" if lag else "")
        )


# --------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def bundle():
    if not VST3.is_dir():
        pytest.fail(
            f"VST3 bundle {VST3} not found: build it with `cargo xtask bundle tubeline --release`"
        )
    so = VST3 / "Contents" / "x86_64-linux" / "Tubeline.so"
    assert so.is_file(), f"bundle {VST3} has no {so.relative_to(VST3)}"
    return str(VST3)


@pytest.fixture
def plugin(bundle):
    """A fresh instance with default settings and every stage out."""
    p = pedalboard.load_plugin(bundle)
    all_stages_out(p)
    # pedalboard hands parameter changes to the plugin inside the next
    # process() call, where the chain ramps them over 20 ms like any
    # automation. One short warm-up render delivers them; every later
    # process() starts with a reset, so tests see the settled chain.
    p.process(np.zeros((2, 4800), dtype=np.float32), SR)
    return p


CHANNELS = pytest.mark.parametrize("channels", [1, 2], ids=["mono", "stereo"])


# --------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------


def test_loads_as_vst3_effect(bundle):
    p = pedalboard.load_plugin(bundle)
    assert isinstance(p, pedalboard.VST3Plugin)
    assert p.name == "Tubeline"
    assert p.is_effect and not p.is_instrument


def test_parameter_list(bundle):
    p = pedalboard.load_plugin(bundle)
    shown = {name: param.name for name, param in p.parameters.items()}
    missing = sorted(set(EXPECTED_PARAMETERS) - set(shown))
    unexpected = sorted(set(shown) - set(EXPECTED_PARAMETERS))
    assert not missing and not unexpected, (
        f"parameter list changed: missing {missing}, unexpected {unexpected} "
        f"(update EXPECTED_PARAMETERS and STAGES_OUT when adding a parameter)"
    )
    for name, label in EXPECTED_PARAMETERS.items():
        display = label.split(" (")[0]
        assert shown[name] == display, f"{name}: display name {shown[name]!r}, expected {display!r}"


def test_parameter_choices_and_defaults(bundle):
    p = pedalboard.load_plugin(bundle)
    params = p.parameters
    assert list(params["calibration"].valid_values) == ["+18 dBu", "+20 dBu", "+22 dBu", "+24 dBu"]
    assert list(params["source"].valid_values) == list(SOURCE_OFFSET_DB)
    assert list(params["quality"].valid_values) == ["Live", "High"]
    assert params["input_trim_db"].range[:2] == (-24.0, 24.0)
    assert params["output_trim_db"].range[:2] == (-24.0, 24.0)
    assert params["mix"].range[:2] == (0.0, 100.0)
    assert p.calibration == "+18 dBu"
    assert p.source == "Mic"
    assert p.input_trim_db == 0.0 and p.output_trim_db == 0.0
    assert not p.pad and not p.polarity and not p.bypass
    assert p.mix == 100.0
    assert p.quality == "Live"
    # Useful on insert: the tube preamp is in by default, the DI and the
    # headphone amp are out.
    defaults_in = {"preamp"}
    for name, out in STAGES_OUT.items():
        assert bool(getattr(p, name)) == (name in defaults_in), f"stage switch {name} default"
    assert bool(p.auto_gain)


def test_reported_latency_is_compensated(plugin):
    latency = plugin.reported_latency_samples
    assert isinstance(latency, int) and 0 <= latency < SR // 10, f"latency {latency}"
    x = np.zeros((2, 4800), dtype=np.float32)
    x[:, 1000] = 1.0
    y = process(plugin, x)
    latency = plugin.reported_latency_samples
    assert latency > 0, "the chain has an oversampler: its latency should be reported"
    peak = int(np.argmax(np.abs(y[0])))
    assert peak == 1000, (
        f"impulse at 1000 came out at {peak}: the reported latency ({latency}) "
        f"does not match the real one ({latency + peak - 1000})"
    )
    assert_same(y, x, "impulse through default settings")


@CHANNELS
def test_default_settings_are_identity(plugin, channels):
    x = sine(channels)
    assert_same(process(plugin, x), x, "default settings")


@CHANNELS
def test_pad_is_minus_20_db(plugin, channels):
    assert bool(set_param(plugin, "pad", True))
    x = sine(channels)
    g = gain_db(process(plugin, x), x)
    assert abs(g - (-20.0)) <= 0.01, f"pad gives {g:.4f} dB, expected -20.00"


@CHANNELS
def test_polarity_negates(plugin, channels):
    assert bool(set_param(plugin, "polarity", True))
    x = sine(channels)
    y = process(plugin, x)
    ys, xs = steady(y), steady(x)
    for c in range(channels):
        corr = np.corrcoef(ys[c], xs[c])[0, 1]
        assert corr < -0.999999, f"channel {c}: correlation {corr}, expected -1"
    assert_same(ys, -xs, "polarity reverse vs the negated input")


@CHANNELS
@pytest.mark.parametrize(
    "name, value",
    [("input_trim_db", -6.0), ("output_trim_db", 3.0), ("input_trim_db", 12.5), ("output_trim_db", -18.0)],
)
def test_trims_give_their_gain(plugin, channels, name, value):
    got = set_param(plugin, name, value)
    assert abs(got - value) < 0.05, f"{name} = {value} read back as {got}"
    x = sine(channels)
    g = gain_db(process(plugin, x), x)
    assert abs(g - got) <= 0.01, f"{name} = {got} dB gives {g:.4f} dB"


@CHANNELS
def test_trims_add_up(plugin, channels):
    a = set_param(plugin, "input_trim_db", -6.0)
    b = set_param(plugin, "output_trim_db", 3.0)
    x = sine(channels)
    g = gain_db(process(plugin, x), x)
    assert abs(g - (a + b)) <= 0.01, f"in {a} dB + out {b} dB gives {g:.4f} dB"


def _make_wet_differ(plugin):
    """Pad and polarity on, so the wet signal is far from the dry one."""
    set_param(plugin, "pad", True)
    set_param(plugin, "polarity", True)


@CHANNELS
def test_mix_zero_gives_dry(plugin, channels):
    _make_wet_differ(plugin)
    assert set_param(plugin, "mix", 0.0) == 0.0
    x = sine(channels)
    assert_same(steady(process(plugin, x)), steady(x), "mix 0 %")


@CHANNELS
def test_mix_half_blends(plugin, channels):
    # Wet = -0.1 * dry (pad and polarity), so 50 % gives 0.5 - 0.05 = 0.45.
    _make_wet_differ(plugin)
    assert set_param(plugin, "mix", 50.0) == 50.0
    x = sine(channels)
    g = gain_db(process(plugin, x), x)
    expected = 20 * math.log10(0.45)
    assert abs(g - expected) <= 0.01, f"mix 50 % gives {g:.4f} dB, expected {expected:.4f}"


@CHANNELS
def test_bypass_gives_dry(plugin, channels):
    _make_wet_differ(plugin)
    set_param(plugin, "output_trim_db", 6.0)
    assert bool(set_param(plugin, "bypass", True))
    x = sine(channels)
    assert_same(steady(process(plugin, x)), steady(x), "bypass")


@CHANNELS
@pytest.mark.parametrize("cal", ["+20 dBu", "+22 dBu", "+24 dBu"])
def test_calibration_alone_is_identity(plugin, channels, cal):
    assert set_param(plugin, "calibration", cal) == cal
    x = sine(channels)
    y = process(plugin, x)
    g = gain_db(y, x)
    assert abs(g) <= 0.01, f"calibration {cal} with all stages out changes the level by {g:.4f} dB"
    assert_same(steady(y), steady(x), f"calibration {cal} with all stages out")


@CHANNELS
@pytest.mark.parametrize("source", list(SOURCE_OFFSET_DB))
def test_source_sets_the_nominal_level(plugin, channels, source):
    assert set_param(plugin, "source", source) == source
    x = sine(channels)
    g = gain_db(process(plugin, x), x)
    expected = SOURCE_OFFSET_DB[source]
    assert abs(g - expected) <= 0.01, (
        f"source {source!r} with all stages out gives {g:.4f} dB, expected {expected:.2f} "
        f"(its nominal level relative to +4 dBu)"
    )


@pytest.mark.parametrize("quality", ["Live", "High"])
def test_quality_setting_keeps_identity(plugin, quality):
    # pedalboard renders offline, where the plugin always uses High quality.
    assert set_param(plugin, "quality", quality) == quality
    x = sine(2)
    assert_same(process(plugin, x), x, f"quality {quality}")


@CHANNELS
def test_non_finite_input_gives_finite_output(plugin, channels):
    set_param(plugin, "pad", True)
    x = sine(channels, seconds=0.2, dbfs=-6.0)
    bad = x.copy()
    bad[:, 100] = np.nan
    bad[:, 2000:2010] = np.inf
    bad[:, 5000] = -np.inf
    bad[:, 7000:7500] = np.nan
    y = plugin.process(bad, SR)
    assert y.shape == bad.shape
    assert np.all(np.isfinite(y)), f"{np.count_nonzero(~np.isfinite(y))} non-finite output samples"
    assert np.max(np.abs(y)) < 1.0, f"output peak {np.max(np.abs(y))} after non-finite input"
    # and the next render (pedalboard resets the plugin first) is clean again
    y2 = process(plugin, x)
    g = gain_db(y2, x)
    assert abs(g - (-20.0)) <= 0.01, f"after non-finite input the pad gives {g:.4f} dB"
