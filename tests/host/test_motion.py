"""Real-host motion tests: parameter changes between process() calls.

The release VST3 bundle is loaded in pedalboard (see test_pedalboard.py) and
driven like a DAW does: 256-sample process() calls with reset=False, so the
plugin's state carries over from call to call, and a parameter is changed
between two calls after a pre-roll.

For every base state (the plugin's defaults, each stage in alone, every stage
out) and every parameter change in MOVES, three runs are made with the same
input: A held, B held, and A->B (B set between two calls PRE_ROLL seconds in).
Held runs are cached by their full settings, so A (usually the base state) is
rendered once per base state and input.

- Burst check (stereo pink noise, -20 dBFS RMS): over the BURST_SPAN after
  the change, no 5 ms window of the A->B output is more than BURST_DB above
  the louder of the two held runs in the same window.
- Click check (100 Hz sine, -20 dBFS peak): the > 4 kHz band of the output
  (a zero-phase 4th-order Butterworth magnitude applied in the FFT domain) in
  10 ms windows after the change stays CLICK_REL_DB below the signal power in
  that window (the A->B run's own power, but not less than the quieter held
  run's), or within CLICK_HELD_DB of the louder held run's HF power in the
  same window (the distortion the stage makes anyway).

Streaming calls (reset=False) are not latency-compensated by pedalboard; all
three runs are delayed alike, and the analysed span is extended by the
reported latency.

Run with `-s` to see the table of the worst burst and click per parameter
and base state; a failure shows the table too.
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
BLOCK = 256
PRE_ROLL_BLOCKS = 94  # ~0.5 s before the change (a whole number of calls)
BURST_SPAN = 0.400  # seconds analysed after the change
TAIL = 0.060  # rendered after the analysed span (FFT filter edge, latency)
LEVEL_DBFS = -20.0
SINE_FREQ = 100.0

BURST_WIN = 0.005
BURST_DB = 1.5
CLICK_WIN = 0.010
CLICK_HZ = 4_000.0
CLICK_REL_DB = -50.0
CLICK_HELD_DB = 6.0
FLOOR = 1e-14  # power floor (-140 dB) so silent windows do not divide by zero

# Base states: stage switches; everything else at the plugin's defaults. With
# the preamp out the source is pro line (as in test_pedalboard.all_stages_out):
# a mic-level source with no preamp is 54 dB down.
PRO = "Pro line +4 dBu"
BASES = {
    "defaults": {},
    "di_only": {"di": True, "preamp": False, "headphone_amp": False, "source": PRO},
    "preamp_only": {"di": False, "preamp": True, "headphone_amp": False},
    "hp_only": {"di": False, "preamp": False, "headphone_amp": True, "source": PRO},
    "all_out": {"di": False, "preamp": False, "headphone_amp": False, "source": PRO},
}

# Parameter moves: name -> (A, B). A value of None for A means "the base
# state's value", and TOGGLE for B means "the other switch position".
TOGGLE = object()
MOVES = {
    "preamp": (None, TOGGLE),
    "di": (None, TOGGLE),
    "headphone_amp": (None, TOGGLE),
    "gain_db": (40.0, 20.0),
    "level_db": (-20.0, -6.0),
    "tube": ("12AX7", "12AU7"),
    "bias": ("0.00 (nominal)", "+0.50 (hot)"),
    "pad": (True, False),
    "source": (None, "Instrument"),
    "quality": ("Live", "High"),
    "auto_gain": (None, TOGGLE),
    "amp_output_impedance_ohm": (0.1, 120.0),
    "cable_m": (3.0, 30.0),
    "mic": ("Dynamic", "Ribbon"),
    "input_impedance": ("2.4 kohm", "300 ohm"),
    "preamp_type": ("Tube", "Solid-state"),
    "input_transformer": (False, True),
}


# --------------------------------------------------------------------------
# signals and analysis
# --------------------------------------------------------------------------

N_TOTAL = PRE_ROLL_BLOCKS * BLOCK + int(math.ceil((BURST_SPAN + TAIL) * SR / BLOCK)) * BLOCK
CHANGE = PRE_ROLL_BLOCKS * BLOCK  # first sample of the call that sees B


def pink_noise(seed=1234):
    """Stereo pink noise (1/f power, 20 Hz - 20 kHz) at LEVEL_DBFS RMS."""
    rng = np.random.default_rng(seed)
    spec = rng.standard_normal((2, N_TOTAL // 2 + 1)) + 1j * rng.standard_normal((2, N_TOTAL // 2 + 1))
    f = np.fft.rfftfreq(N_TOTAL, 1.0 / SR)
    shape = np.zeros_like(f)
    band = (f >= 20.0) & (f <= 20_000.0)
    shape[band] = 1.0 / np.sqrt(f[band])
    x = np.fft.irfft(spec * shape, n=N_TOTAL)
    x *= 10.0 ** (LEVEL_DBFS / 20.0) / np.sqrt(np.mean(x**2))
    return x.astype(np.float32)


def sine_100():
    t = np.arange(N_TOTAL) / SR
    amp = 10.0 ** (LEVEL_DBFS / 20.0)
    rows = [amp * np.sin(2 * np.pi * SINE_FREQ * t + c * np.pi / 2) for c in range(2)]
    return np.asarray(rows, dtype=np.float32)


def highpass(y):
    """The > CLICK_HZ band: zero-phase 4th-order Butterworth magnitude,
    applied to the zero-padded whole render (edges far from the change)."""
    n = 2 * y.shape[1]
    spec = np.fft.rfft(y.astype(np.float64), n=n)
    f = np.fft.rfftfreq(n, 1.0 / SR)
    with np.errstate(divide="ignore"):
        mag = 1.0 / np.sqrt(1.0 + (CLICK_HZ / np.maximum(f, 1e-9)) ** 8)
    return np.fft.irfft(spec * mag, n=n)[:, : y.shape[1]]


def window_power(y, win_s, span):
    """Mean power over both channels in consecutive windows of win_s seconds
    from the change, covering `span` samples."""
    w = int(round(win_s * SR))
    count = int(math.ceil(span / w))
    seg = y[:, CHANGE : CHANGE + count * w].astype(np.float64)
    return np.mean(seg.reshape(seg.shape[0], count, w) ** 2, axis=(0, 2))


def db(p):
    return 10.0 * np.log10(np.maximum(p, FLOOR))


# --------------------------------------------------------------------------
# host driving
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundle():
    if not VST3.is_dir():
        pytest.fail(
            f"VST3 bundle {VST3} not found: build it with `cargo xtask bundle tubeline --release`"
        )
    return str(VST3)


def set_param(plugin, name, value):
    assert name in plugin.parameters, (
        f"no parameter {name!r}; pedalboard shows: {sorted(plugin.parameters.keys())}"
    )
    setattr(plugin, name, value)
    got = getattr(plugin, name)
    if isinstance(value, float):
        assert abs(float(got) - value) < 1e-3 * max(1.0, abs(value)), f"{name}: set {value}, read {got}"
    else:
        assert got == value, f"{name}: set {value!r}, read {got!r}"


class Host:
    """One plugin instance (loading is slow) reused for every run. Each run
    sets its settings, starts with a reset and then streams with reset=False."""

    def __init__(self, bundle):
        self.plugin = pedalboard.load_plugin(bundle)
        self.defaults = {name: getattr(self.plugin, name) for name in self.plugin.parameters}
        self.latency = None

    def render(self, settings, x, change=None):
        p = self.plugin
        for name, value in {**self.defaults, **settings}.items():
            if getattr(p, name) != value:
                set_param(p, name, value)
        # Deliver the settings and clear the state: a reset call, then a
        # silent settle so the 20 ms parameter ramps end before the input.
        p.process(np.zeros((2, BLOCK), dtype=np.float32), SR, buffer_size=BLOCK, reset=True)
        silence = np.zeros((2, BLOCK), dtype=np.float32)
        for _ in range(8):
            p.process(silence, SR, buffer_size=BLOCK, reset=False)
        out = np.empty_like(x)
        for start in range(0, x.shape[1], BLOCK):
            if change is not None and start == CHANGE:
                name, value = change
                set_param(p, name, value)
            y = p.process(x[:, start : start + BLOCK], SR, buffer_size=BLOCK, reset=False)
            assert y.shape == (2, BLOCK), f"output shape {y.shape}"
            out[:, start : start + BLOCK] = y
        assert np.all(np.isfinite(out)), f"non-finite output ({settings}, change {change})"
        self.latency = max(self.latency or 0, int(p.reported_latency_samples))
        return out


def move_states(base, name, defaults):
    a, b = MOVES[name]
    a_val = base.get(name, defaults[name]) if a is None else a
    if b is TOGGLE:
        b_val = not bool(a_val)
    else:
        b_val = b
    state_a = {**base, name: a_val}
    state_b = {**base, name: b_val}
    return a_val, b_val, state_a, state_b


def key(settings):
    return tuple(sorted((k, repr(v)) for k, v in settings.items()))


# --------------------------------------------------------------------------
# the test
# --------------------------------------------------------------------------


def test_parameter_moves_make_no_bursts_or_clicks(bundle):
    host = Host(bundle)
    noise, sine = pink_noise(), sine_100()
    held_cache = {}

    def held(settings, kind, x):
        k = (key(settings), kind)
        if k not in held_cache:
            held_cache[k] = host.render(settings, x)
        return held_cache[k]

    rows = []
    failures = []
    for base_name, base in BASES.items():
        for name in MOVES:
            a_val, b_val, state_a, state_b = move_states(base, name, host.defaults)

            # burst: pink noise
            ya, yb = held(state_a, "noise", noise), held(state_b, "noise", noise)
            yab = host.render(state_a, noise, change=(name, b_val))
            span = int(BURST_SPAN * SR) + host.latency
            pa, pb, pab = (window_power(y, BURST_WIN, span) for y in (ya, yb, yab))
            excess = db(pab) - db(np.maximum(pa, pb))
            bi = int(np.argmax(excess))
            burst_db, burst_ms = float(excess[bi]), bi * BURST_WIN * 1e3
            # reported, not checked: the deepest dip below the quieter held run
            dip = db(pab) - db(np.minimum(pa, pb))
            di_ = int(np.argmin(dip))
            dip_db, dip_ms = float(dip[di_]), di_ * BURST_WIN * 1e3

            # click: 100 Hz sine
            sa, sb = held(state_a, "sine", sine), held(state_b, "sine", sine)
            sab = host.render(state_a, sine, change=(name, b_val))
            qa, qb, qab = (window_power(y, CLICK_WIN, span) for y in (sa, sb, sab))
            ha, hb, hab = (window_power(highpass(y), CLICK_WIN, span) for y in (sa, sb, sab))
            ref = np.maximum(qab, np.minimum(qa, qb))
            rel = db(hab) - db(ref)  # HF re the signal power
            over_held = db(hab) - db(np.maximum(ha, hb))  # HF re the held runs' HF
            margin = np.minimum(rel - CLICK_REL_DB, over_held - CLICK_HELD_DB)  # > 0 fails
            ci = int(np.argmax(margin))
            click = (float(rel[ci]), float(over_held[ci]), float(db(hab[ci])), ci * CLICK_WIN * 1e3)

            ok_burst = burst_db <= BURST_DB
            ok_click = margin[ci] <= 0.0
            move = f"{name} {a_val!r}->{b_val!r}".replace("'", "")
            rows.append((base_name, move, burst_db, burst_ms, dip_db, dip_ms, *click, ok_burst and ok_click))
            if not ok_burst:
                failures.append(
                    f"BURST {base_name} / {move}: +{burst_db:.2f} dB over the louder held run "
                    f"in the 5 ms window at {burst_ms:.0f} ms after the change (limit +{BURST_DB} dB)"
                )
            if not ok_click:
                failures.append(
                    f"CLICK {base_name} / {move}: > 4 kHz at {click[0]:.1f} dB re signal and "
                    f"{click[1]:+.1f} dB re held HF ({click[2]:.1f} dBFS) in the 10 ms window at {click[3]:.0f} ms "
                    f"after the change (limits {CLICK_REL_DB} dB / +{CLICK_HELD_DB} dB)"
                )

    # Instance reuse is sound only if a run does not depend on the runs
    # before it: render the first held state again after all the others.
    first_settings = BASES["defaults"]
    again = host.render(first_settings, noise)
    drift = float(np.max(np.abs(again - held(first_settings, "noise", noise))))
    print(f"\nheld defaults rendered again after {len(held_cache)} runs: max difference {drift:.3g}")
    if drift > 1e-4:
        failures.append(f"RESET the reused instance does not render alike (max difference {drift:.3g})")
    table = format_table(rows, host.latency)
    print("\n" + table)
    if failures:
        print("\nFAILURES:\n" + "\n".join(failures))
    assert not failures, "\n".join(failures) + "\n\n" + table


def format_table(rows, latency):
    lines = [
        f"worst burst (5 ms windows, dB over the louder held run; limit +{BURST_DB}) and "
        f"click (10 ms windows, > 4 kHz: dB re signal / dB re held HF; limits "
        f"{CLICK_REL_DB} / +{CLICK_HELD_DB}, either passes) in the {BURST_SPAN * 1e3:.0f} ms "
        f"after the change; latency {latency} samples",
        "(dip: the deepest 5 ms window below the quieter held run, reported only)",
        f"{'base':<12} {'move':<44} {'burst dB':>8} {'@ms':>4} {'dip dB':>7} {'@ms':>4}"
        f" {'HF/sig':>7} {'HF/held':>7} {'HF dBFS':>7} {'@ms':>4}  ok",
    ]
    for base, move, bdb, bms, ddb, dms, rel, over, hdb, cms, ok in rows:
        lines.append(
            f"{base:<12} {move:<44} {bdb:>+8.2f} {bms:>4.0f} {ddb:>+7.1f} {dms:>4.0f}"
            f" {rel:>7.1f} {over:>+7.1f} {hdb:>7.1f} {cms:>4.0f}  "
            + ("ok" if ok else "FAIL")
        )
    return "\n".join(lines)
