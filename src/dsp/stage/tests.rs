//! One suite over every [`Stage`]: each property is one generic function,
//! and `every_stage!` at the bottom lists the stages, one line each (a
//! constructor, the settings to test, the level of the test signal and the
//! recovery time). Adding a stage is implementing the trait and adding its
//! line; there is no skip list.
//!
//! Properties (each at every listed setting: the defaults first, then a
//! demanding one):
//! * block-size invariance: blocks of 1, 7, 64, 1000, 8192 and a mix give
//!   the same output bit for bit, with the settings fixed and with a
//!   change of settings in the middle;
//! * reset = fresh instance: after something loud and a settings change,
//!   `reset` and then the test signal gives bit for bit what a freshly
//!   prepared instance gives;
//! * recovery: NaN, ±inf, ±1e5 V (about 100 dB over a volt) and denormals,
//!   alone and mixed into the signal, never give a non-finite output, and
//!   without a reset the output comes back to within `RECOVERY_TOL` of a
//!   fresh instance's within the stage's stated recovery time;
//! * `response()` equals the DFT of the rendered impulse response at
//!   20 Hz … 20 kHz and 44.1, 48 and 96 kHz, within `RESPONSE_TOL`;
//! * no allocation after `prepare` (set_settings, process, reset; counted
//!   by the test allocator, which is installed in debug builds only).

use super::{DelaySettings, OversamplerStage, OversamplingSettings, Stage, TriodeSettings};
use crate::dsp::delay::DelayLine;
use crate::dsp::headphone::{HeadphoneAmp, HeadphoneModel, HeadphoneSettings};
use crate::dsp::mic::{MicModel, MicSettings, MicSource};
use crate::dsp::oversampling::Quality;
use crate::dsp::signals::music_like;
use crate::dsp::solid::SolidPreamp;
use crate::dsp::transformer::{
    DiBox, DiPad, DiSettings, DiSource, Mains, MicTransformer, MicTransformerSettings, TurnsRatio,
};
use crate::dsp::tube::{HighPass, Preamp, PreampSettings, StageCircuit, TriodeStage, TubeType};
use crate::dsp::{Isa, ProcessSpec};
use num_complex::Complex;
use std::f64::consts::PI;
use std::fmt::Debug;

/// Rate of every property but the response's.
const FS: f64 = 48_000.0;
/// The largest block the suite uses, prepared for.
const MAX_BLOCK: usize = 8192;
/// Block partitions: fixed sizes, then a cycle of sizes that leaves every
/// block edge at another phase of every internal chunk.
const PARTITIONS: [&[usize]; 6] = [
    &[1],
    &[7],
    &[64],
    &[1000],
    &[MAX_BLOCK],
    &[1, 7, 64, 1000, MAX_BLOCK, 3, 513],
];
/// Length of the block-size and reset test signals (several of the largest
/// blocks and a partial one).
const SIGNAL_LEN: usize = 3 * MAX_BLOCK + 4321;
/// Where the block-size test changes settings (odd, so inside a block of
/// every partition but 1).
const SWITCH_AT: usize = 12_345;
/// Output after recovery is within this of a fresh instance's, relative to
/// the fresh output's peak: −120 dB, below the 24-bit floor.
const RECOVERY_TOL: f64 = 1e-6;
/// Largest complex error of `response()` against the DFT of the rendered
/// impulse response, relative to the response's peak over `RESPONSE_HZ`
/// (−120 dB re the passband; 0.00001 dB, 0.0006° where the response is
/// near its peak). What limits the measurement, at its worst 3e-7 (the
/// preamp at 60 dB of gain): the impulse response is rendered for at least
/// `RESPONSE_SECONDS`, by when the slowest pole of any stage (the DI's
/// magnetising corner, under 1 Hz) has decayed below 1e-10; a pair of
/// impulses ±a cancels a non-linear stage's even-order terms, and the odd
/// ones shrink as a² while the rounding of the output (a triode's operating
/// point sits some 170 table segments up its curve, so a coordinate is
/// rounded to ~3e-14 of a segment, and the coupling capacitors' slow tails
/// sum many such roundings) grows as 1/a, so `IMPULSE_LEVELS` tries a range
/// of amplitudes and the best one counts. Relative to the peak, not to
/// |H(f)|, because at 20 Hz behind the 120 Hz high-pass (−31 dB) that
/// rounding is several 1e-6 of |H(f)|. A `response()` that leaves out a
/// section, a gain or a delay, or gives the analog prototype for its
/// digital model, is off by 1e-4 or more.
const RESPONSE_TOL: f64 = 1e-6;
/// Frequencies at which `response()` is checked.
const RESPONSE_HZ: [f64; 11] = [
    20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10_000.0, 15_000.0, 20_000.0,
];
/// Rates at which `response()` is checked.
const RESPONSE_RATES: [f64; 3] = [44_100.0, 48_000.0, 96_000.0];
/// Shortest impulse response rendered for the response test.
const RESPONSE_SECONDS: f64 = 5.0;
/// Amplitudes of the response test's impulses, relative to the stage's
/// signal level; the one that fits best counts (see `RESPONSE_TOL`).
const IMPULSE_LEVELS: [f64; 6] = [1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8];

/// What the suite needs to know of a stage beyond the trait.
struct Case<S: Stage> {
    /// Makes an instance (unprepared, or as its own constructor leaves it).
    make: fn() -> S,
    /// Settings to test: the defaults first, then demanding ones.
    settings: Vec<S::Settings>,
    /// Peak of the test signal, volts: a loud but plausible input, which
    /// reaches a non-linear stage's non-linearity.
    level_volts: f64,
    /// How long after absurd input the output may differ from a fresh
    /// instance's (by more than `RECOVERY_TOL`), ms.
    recovery_ms: f64,
}

/// A fresh instance with `settings`, prepared at `fs` for the build `isa`.
fn fresh_in<S: Stage>(case: &Case<S>, settings: S::Settings, fs: f64, isa: Isa) -> S {
    let mut stage = (case.make)();
    stage.set_settings(settings);
    stage.prepare(&ProcessSpec {
        isa,
        ..ProcessSpec::new(fs, MAX_BLOCK)
    });
    stage
}

/// A fresh instance with `settings`, prepared at `fs` for this CPU's build.
fn fresh<S: Stage>(case: &Case<S>, settings: S::Settings, fs: f64) -> S {
    fresh_in(case, settings, fs, Isa::detect())
}

/// `x` through `stage` in blocks cycling through `sizes`.
fn render<S: Stage>(stage: &mut S, x: &[f64], sizes: &[usize]) -> Vec<f64> {
    let mut y = x.to_vec();
    let (mut i, mut k) = (0, 0);
    while i < y.len() {
        let n = sizes[k % sizes.len()].min(y.len() - i);
        stage.process(&mut y[i..i + n]);
        i += n;
        k += 1;
    }
    y
}

/// Music-like material (chords, bass, noise drums) with peak `peak`.
fn test_signal(len: usize, fs: f64, peak: f64) -> Vec<f64> {
    let x = music_like(len, fs, 0x5eed);
    let m = x.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    x.iter().map(|v| v * peak / m).collect()
}

/// Where two outputs first differ (bit for bit), for the messages.
fn first_difference(a: &[f64], b: &[f64]) -> Option<(usize, f64, f64)> {
    a.iter()
        .zip(b)
        .position(|(x, y)| x.to_bits() != y.to_bits())
        .map(|i| (i, a[i], b[i]))
}

fn block_size_invariance<S: Stage>(case: &Case<S>)
where
    S::Settings: Debug,
{
    let x = test_signal(SIGNAL_LEN, FS, case.level_volts);
    let default = case.settings[0];
    let mut failures = Vec::new();
    for (isa, &settings) in
        Isa::all_available().flat_map(|i| case.settings.iter().map(move |s| (i, s)))
    {
        // Settings fixed from the start, and a change from the defaults at
        // `SWITCH_AT` (ramps and crossfades run across block edges), in
        // every build this CPU runs.
        let steady = |sizes: &[usize]| render(&mut fresh_in(case, settings, FS, isa), &x, sizes);
        let switched = |sizes: &[usize]| {
            let mut stage = fresh_in(case, default, FS, isa);
            let mut y = render(&mut stage, &x[..SWITCH_AT], sizes);
            stage.set_settings(settings);
            y.extend(render(&mut stage, &x[SWITCH_AT..], sizes));
            y
        };
        for (what, run) in [
            ("fixed settings", &steady as &dyn Fn(&[usize]) -> Vec<f64>),
            ("settings changed mid-stream", &switched),
        ] {
            let reference = run(PARTITIONS[0]);
            assert!(reference.iter().all(|v| v.is_finite()));
            for sizes in &PARTITIONS[1..] {
                let y = run(sizes);
                if let Some((i, a, b)) = first_difference(&reference, &y) {
                    failures.push(format!(
                        "{} build, {settings:?}, {what}: blocks of {sizes:?} differ from \
                         blocks of 1 first at sample {i}: {b:e} vs {a:e}",
                        isa.name()
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn reset_is_a_fresh_instance<S: Stage>(case: &Case<S>)
where
    S::Settings: Debug,
{
    let x = test_signal(SIGNAL_LEN, FS, case.level_volts);
    // 20 dB over the test level, an odd length (counters mid-chunk).
    let loud: Vec<f64> = test_signal(12_345, FS, 10.0 * case.level_volts);
    let mut failures = Vec::new();
    for (isa, &settings) in
        Isa::all_available().flat_map(|i| case.settings.iter().map(move |s| (i, s)))
    {
        let expected = render(&mut fresh_in(case, settings, FS, isa), &x, &[1000]);
        let mut stage = fresh_in(case, case.settings[0], FS, isa);
        render(&mut stage, &loud, &[777]);
        stage.set_settings(settings);
        render(&mut stage, &loud, &[777]);
        stage.reset();
        let y = render(&mut stage, &x, &[1000]);
        if let Some((i, a, b)) = first_difference(&expected, &y) {
            failures.push(format!(
                "{} build, {settings:?}: after reset the output differs from a fresh \
                 instance's first at sample {i}: {b:e} vs {a:e}",
                isa.name()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Absurd input: runs of NaN, +inf, −inf, ±1e5 V and denormals, then all of
/// them mixed with ordinary samples.
fn absurd_input() -> Vec<f64> {
    let mut x = Vec::new();
    x.extend([f64::NAN; 64]);
    x.extend([f64::INFINITY; 64]);
    x.extend([f64::NEG_INFINITY; 64]);
    x.extend((0..256).map(|i| if (i / 8) % 2 == 0 { 1e5 } else { -1e5 }));
    x.extend((0..256).map(|i| if i % 2 == 0 { 1e-310 } else { -5e-324 }));
    let mix = [
        f64::NAN,
        1e5,
        0.3,
        f64::INFINITY,
        -1e5,
        1e-310,
        f64::NEG_INFINITY,
        -0.2,
    ];
    x.extend((0..256).map(|i| mix[i % mix.len()]));
    x
}

fn recovers_from_absurd_input<S: Stage>(case: &Case<S>)
where
    S::Settings: Debug,
{
    let bad = absurd_input();
    let lead = 1000;
    let recovery = (case.recovery_ms * 1e-3 * FS).ceil() as usize;
    let tail = recovery + FS as usize / 2;
    let x = test_signal(lead + bad.len() + tail, FS, case.level_volts);
    // The same signal with the absurd stretch in it, and with silence there.
    let mut with_bad = x.clone();
    with_bad[lead..lead + bad.len()].copy_from_slice(&bad);
    let mut with_silence = x;
    with_silence[lead..lead + bad.len()].fill(0.0);
    let after = lead + bad.len();
    let mut failures = Vec::new();
    for &settings in &case.settings {
        let y = render(&mut fresh(case, settings, FS), &with_bad, &[256]);
        let expected = render(&mut fresh(case, settings, FS), &with_silence, &[256]);
        let bad_out: Vec<usize> = (0..y.len()).filter(|&i| !y[i].is_finite()).collect();
        if let (Some(first), Some(last)) = (bad_out.first(), bad_out.last()) {
            failures.push(format!(
                "{settings:?}: {} non-finite output samples, the first at input sample {} \
                 ({}), the last at {} ({})",
                bad_out.len(),
                first - lead,
                y[*first],
                last - lead,
                y[*last]
            ));
        }
        let peak = expected[after..].iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let tol = RECOVERY_TOL * peak;
        let last_off = (after..y.len())
            .rev()
            .find(|&i| (y[i] - expected[i]).abs() > tol || y[i].is_nan());
        let took = last_off.map_or(0, |i| i + 1 - after);
        let worst = (after + recovery..y.len())
            .map(|i| (y[i] - expected[i]).abs())
            .fold(0.0, f64::max);
        if took > recovery {
            failures.push(format!(
                "{settings:?}: {} ms after absurd input the output still differs from a \
                 fresh instance's by {:e} of its peak ({peak:.3e} V); within {RECOVERY_TOL:e} \
                 only after {:.1} ms",
                case.recovery_ms,
                worst / peak,
                took as f64 * 1e3 / FS,
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Length of the rendered impulse response at `fs`.
fn response_len(fs: f64) -> usize {
    ((RESPONSE_SECONDS * fs) as usize).next_power_of_two()
}

/// The DFT bins nearest `RESPONSE_HZ` at `fs`, and their frequencies.
fn response_bins(fs: f64) -> Vec<(usize, f64)> {
    let n = response_len(fs);
    RESPONSE_HZ
        .iter()
        .map(|f| {
            let k = (f * n as f64 / fs).round() as usize;
            (k, k as f64 * fs / n as f64)
        })
        .collect()
}

/// The DFT at `response_bins` of the stage's impulse response, measured
/// with impulses of ±`a` volts, with the stage's latency taken out.
fn measured_response<S: Stage>(
    case: &Case<S>,
    settings: S::Settings,
    fs: f64,
    a: f64,
) -> Vec<Complex<f64>> {
    let n = response_len(fs);
    let impulse = |amplitude: f64| {
        let mut x = vec![0.0; n];
        x[0] = amplitude;
        render(&mut fresh(case, settings, fs), &x, &[MAX_BLOCK])
    };
    let (up, down) = (impulse(a), impulse(-a));
    let mut h: Vec<f64> = up
        .iter()
        .zip(&down)
        .map(|(u, d)| (u - d) / (2.0 * a))
        .collect();
    let fft = realfft::RealFftPlanner::<f64>::new().plan_fft_forward(n);
    let mut spectrum = fft.make_output_vec();
    fft.process(&mut h, &mut spectrum).expect("FFT");
    let latency = fresh(case, settings, fs).latency_samples() as f64;
    response_bins(fs)
        .iter()
        .map(|&(k, _)| {
            let w = 2.0 * PI * k as f64 / n as f64;
            spectrum[k] * Complex::from_polar(1.0, w * latency)
        })
        .collect()
}

fn response_matches_the_impulse_response<S: Stage>(case: &Case<S>)
where
    S::Settings: Debug,
{
    let mut failures = Vec::new();
    for fs in RESPONSE_RATES {
        let bins = response_bins(fs);
        for &settings in &case.settings {
            let stage = fresh(case, settings, fs);
            let expected: Vec<Complex<f64>> =
                bins.iter().map(|&(_, f)| stage.response(f)).collect();
            let peak = expected.iter().map(|h| h.norm()).fold(0.0, f64::max);
            // The worst error over the frequencies, (error, Hz), at the
            // impulse amplitude (re the signal level) that fits best.
            let mut best = (f64::INFINITY, 0.0, 0.0);
            for rel in IMPULSE_LEVELS {
                let measured = measured_response(case, settings, fs, rel * case.level_volts);
                let (err, hz) = measured
                    .iter()
                    .zip(&expected)
                    .zip(&bins)
                    .map(|((h, e), &(_, f))| ((h - e).norm() / peak, f))
                    .fold(
                        (0.0, 0.0),
                        |w, e| if e.0 > w.0 || e.0.is_nan() { e } else { w },
                    );
                if err < best.0 {
                    best = (err, hz, rel);
                }
            }
            if best.0 > RESPONSE_TOL {
                failures.push(format!(
                    "{settings:?} at {fs} Hz: response() is off the impulse response's DFT \
                     by {:e} of its peak at {:.1} Hz at best (impulse {:e} of the level)",
                    best.0, best.1, best.2
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Allocations and frees made by `f`, counted by the test allocator
/// (checked to count first, so a zero is not vacuous).
fn allocations_in(f: impl FnOnce()) -> u32 {
    use nice_assert_no_alloc::{assert_no_alloc, reset_violation_count, violation_count};
    reset_violation_count();
    assert_no_alloc(|| drop(std::hint::black_box(Vec::<u8>::with_capacity(8))));
    assert_eq!(
        violation_count(),
        2,
        "the allocation counter is not installed"
    );
    reset_violation_count();
    assert_no_alloc(f);
    violation_count()
}

fn never_allocates_after_prepare<S: Stage>(case: &Case<S>)
where
    S::Settings: Debug,
{
    let x = test_signal(SIGNAL_LEN, FS, case.level_volts);
    let bad = absurd_input();
    for &settings in &case.settings {
        let mut stage = fresh(case, settings, FS);
        let (mut y, mut z) = (x.clone(), bad.clone());
        let other = case.settings[case.settings.len() - 1];
        let n = allocations_in(|| {
            for sizes in PARTITIONS {
                let mut i = 0;
                for &len in sizes.iter().cycle() {
                    if i + len > y.len() {
                        break;
                    }
                    stage.process(&mut y[i..i + len]);
                    i += len;
                }
            }
            stage.process(&mut z);
            stage.set_settings(other);
            stage.process(&mut y[..MAX_BLOCK]);
            stage.reset();
            stage.set_settings(settings);
            stage.process(&mut y[..MAX_BLOCK]);
        });
        assert_eq!(n, 0, "{settings:?}: allocated or freed after prepare");
    }
}

// ---------------------------------------------------------------------------
// The stages
// ---------------------------------------------------------------------------

/// The reference triode stage fed from 15 kΩ (the preamp's first stage).
fn triode_stage() -> TriodeStage {
    TriodeStage::new(StageCircuit::REFERENCE, [15e3; 3])
}

/// The hottest bias: most current, grid current earliest.
fn hot_triode() -> TriodeSettings {
    TriodeSettings {
        tube: TubeType::Tube12AX7,
        bias: 1.0,
    }
}

/// Every control at an extreme: all the gain, hot, the steepest high-pass.
fn hot_preamp() -> PreampSettings {
    PreampSettings {
        gain_db: 60.0,
        level_db: 0.0,
        tube: TubeType::Tube12AX7,
        bias: 1.0,
        hpf: HighPass::Hz120,
        output_db: 12.0,
    }
}

/// A passive pickup through the pad into a low load, humming.
fn pickup_di() -> DiSettings {
    DiSettings {
        ratio: TurnsRatio::R12,
        pad: DiPad::Db15,
        ground_lift: false,
        mains_hz: Mains::Hz60,
        source: DiSource::PassivePickup,
        load_ohms: 600.0,
        cable_m: 10.0,
    }
}

/// A 600 Ω output into an IEM (the load that swings most), normalised.
fn high_z_headphone() -> HeadphoneSettings {
    HeadphoneSettings {
        amp_z_ohms: 600.0,
        volume_db: 0.0,
        swing_volts: 10.0,
        model: HeadphoneModel::Iem,
        normalize: true,
    }
}

/// The defaults with the volume up and the rails lower (the test signal's
/// peaks reach into the swing limit).
fn loud_headphone() -> HeadphoneSettings {
    HeadphoneSettings {
        volume_db: 6.0,
        swing_volts: 8.0,
        ..HeadphoneSettings::default()
    }
}

/// A ribbon into the highest input impedance (its resonance rings
/// longest).
fn ribbon_10k() -> MicSettings {
    MicSettings {
        model: MicModel::Ribbon,
        in_z_ohms: 10_000.0,
    }
}

/// A dynamic into the lowest input impedance (the most loading).
fn dynamic_300() -> MicSettings {
    MicSettings {
        model: MicModel::Dynamic,
        in_z_ohms: 300.0,
    }
}

/// A delay line with room for 64 samples.
fn delay_line() -> DelayLine {
    let mut line = DelayLine::default();
    DelayLine::prepare(&mut line, 64);
    line
}

/// The whole capacity, reached by a crossfade.
fn long_delay() -> DelaySettings {
    DelaySettings {
        delay_samples: 64,
        fade_samples: 300,
    }
}

/// What the chain runs live.
fn live_4x() -> OversamplingSettings {
    OversamplingSettings {
        quality: Quality::Live,
        factor: 4,
    }
}

/// The longest filters: every FIR stage.
fn high_16x() -> OversamplingSettings {
    OversamplingSettings {
        quality: Quality::High,
        factor: 16,
    }
}

/// One line per stage: module name, constructor, settings (the defaults
/// first), peak of the test signal in volts, recovery time in ms.
macro_rules! every_stage {
    ($(
        $name:ident: $make:expr, [$($settings:expr),+ $(,)?], $level_volts:expr, $recovery_ms:expr;
    )+) => {$(
        mod $name {
            use super::*;

            fn case() -> Case<impl Stage<Settings: Debug>> {
                Case {
                    make: || $make,
                    settings: vec![$($settings),+],
                    level_volts: $level_volts,
                    recovery_ms: $recovery_ms,
                }
            }

            #[test]
            fn block_size_invariance() {
                super::block_size_invariance(&case());
            }

            #[test]
            fn reset_is_a_fresh_instance() {
                super::reset_is_a_fresh_instance(&case());
            }

            #[test]
            fn recovers_from_absurd_input() {
                super::recovers_from_absurd_input(&case());
            }

            #[test]
            fn response_matches_the_impulse_response() {
                super::response_matches_the_impulse_response(&case());
            }

            #[test]
            #[cfg_attr(not(debug_assertions), ignore = "the allocation counter is debug-only")]
            fn never_allocates_after_prepare() {
                super::never_allocates_after_prepare(&case());
            }
        }
    )+};
}

every_stage! {
    // Recovery: the coupling capacitor (48 ms) discharging the grid after
    // ±1e5 V drove grid current (the stage has no input clamp: NaN and inf
    // are taken as 0 V, the huge values as they are); measured 960 ms
    // (843 ms hot), some 20 time constants down to 1e-6.
    triode_stage: triode_stage(), [TriodeSettings::default(), hot_triode()], 4.0, 1500.0;
    // Two coupling capacitors after the input clamp (1e4 V) has driven both
    // grids, then the output coupling (0.12 s); measured 2378 ms (2053 ms hot).
    preamp: Preamp::new(), [PreampSettings::default(), hot_preamp()], 0.05, 3000.0;
    // The input coupling (47 ms) discharging after the input clamp (1e4 V);
    // nothing else remembers (the stages hold one sample each); measured
    // 999 ms (913 ms hot).
    solid_preamp: SolidPreamp::new(), [PreampSettings::default(), hot_preamp()], 0.05, 3000.0;
    // The core driven into saturation by the clamped input (1000 V) returns
    // through the magnetising corner; measured 2274 ms (4315 ms pickup).
    di_box: DiBox::new(), [DiSettings::default(), pickup_di()], 10.0, 6000.0;
    // The core saturated by the clamped input (1000 V) returns through the
    // magnetising corner (0.64 Hz from an ideal source); measured 2845 ms
    // (under 1500 ms from 150 and 600 ohm).
    mic_xfmr: MicTransformer::new(), [MicTransformerSettings::default(), MicTransformerSettings { source_ohms: 150.0, in_z_ohms: 10_000.0 }, MicTransformerSettings { source_ohms: 600.0, in_z_ohms: 300.0 }], 1.0, 5000.0;
    // The loads' ring; measured 13.3 ms (3.1 ms at 600 ohm, 12.7 ms loud).
    headphone_amp: HeadphoneAmp::new(), [HeadphoneSettings::default(), high_z_headphone(), loud_headphone()], 5.0, 50.0;
    // Linear, no clamp (NaN and inf are taken as 0 V): the ±1e5 V ring
    // down through the ribbon's resonance into 10 kohm (~20 ms time
    // constant) by 1e-12 re the signal; measured 378 ms (45 ms dynamic
    // into 300 ohm).
    mic_source: MicSource::new(), [MicSettings::default(), ribbon_10k(), dynamic_300()], 0.1, 600.0;
    // The delay itself, at most 64 samples (1.3 ms).
    delay_line: delay_line(), [DelaySettings::default(), long_delay()], 1.0, 10.0;
    // The half-band filters' ring; measured 4.4 ms (live 4x), 3.9 ms (high 16x).
    oversampler: OversamplerStage::new(), [OversamplingSettings::default(), live_4x(), high_16x()], 1.0, 10.0;
}
