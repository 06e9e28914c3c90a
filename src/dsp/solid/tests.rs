//! Tests for the solid-state preamp. Expected values come from the design
//! (Gain + Level + make-up, the datasheet swing), from plain formulas and
//! numerical integration written here, or from the tube preamp; never from
//! the implementation's own numbers. The oversampled measurements run the
//! preamp the way the chain's section does: front at the host rate, 4x
//! up, stages, down, back at the host rate.

use super::curve::{RailCurve, ADAA_MIN_STEP_VOLTS, KNEE_START};
use super::*;
use crate::dsp::oversampling::{Oversampler, Quality};
use crate::dsp::simd::in_every_build;
use crate::dsp::tube::{HighPass, Preamp, PreampPart, PreampSettings, TubeType};
use crate::dsp::ProcessSpec;
use num_complex::Complex;
use std::f64::consts::{PI, SQRT_2};

const TAU: f64 = 2.0 * PI;
/// Host rate of the measurements.
const FS: f64 = 48_000.0;
/// The chain's oversampling factor (both qualities).
const FACTOR: usize = 4;
/// The chain's chunk of host samples.
const BLOCK: usize = 256;
/// 0 dBu in volts rms, typed in: √0.6.
const DBU_VOLTS: f64 = 0.774_596_669_241_483;

fn db(x: f64) -> f64 {
    20.0 * x.log10()
}

fn sine(n: usize, fs: f64, f: f64, amp: f64) -> Vec<f64> {
    (0..n)
        .map(|i| amp * (TAU * f * i as f64 / fs).sin())
        .collect()
}

/// Complex amplitude at `freq` of `y` (a whole number of cycles).
fn dft(y: &[f64], fs: f64, freq: f64) -> Complex<f64> {
    let w = TAU * freq / fs;
    let s: Complex<f64> = y
        .iter()
        .enumerate()
        .map(|(i, v)| v * Complex::from_polar(1.0, -w * i as f64))
        .sum();
    s * (2.0 / y.len() as f64)
}

/// THD (ratio) of `y`, a whole number of cycles of `freq`: harmonics 2 … 10
/// below Nyquist.
fn thd(y: &[f64], fs: f64, freq: f64) -> f64 {
    let h1 = dft(y, fs, freq).norm();
    let p: f64 = (2..=10)
        .map(|k| k as f64 * freq)
        .filter(|&f| f < fs / 2.0)
        .map(|f| dft(y, fs, f).norm_sqr())
        .sum();
    p.sqrt() / h1
}

/// The settings with `gain_db` and `level_db`, the rest default.
fn knobs(gain_db: f64, level_db: f64) -> PreampSettings {
    PreampSettings {
        gain_db,
        level_db,
        ..PreampSettings::default()
    }
}

/// The preamp as the chain's section runs it, one channel.
struct Section {
    /// The 4x oversampler.
    os: Oversampler,
    /// The preamp, stages at 4x, ends at the host rate.
    pre: SolidPreamp,
}

impl Section {
    fn new(quality: Quality, s: PreampSettings) -> Self {
        let spec = ProcessSpec::new(FS, BLOCK);
        let mut os = Oversampler::new();
        os.prepare(&spec);
        os.configure(quality, FACTOR);
        let mut pre = SolidPreamp::new();
        let os_rate = FS * FACTOR as f64;
        pre.prepare(&ProcessSpec {
            sample_rate: os_rate,
            max_block: BLOCK * FACTOR,
            ..spec
        });
        pre.set_rates(os_rate, FS);
        pre.set_settings_at_once(s);
        pre.reset();
        Self { os, pre }
    }

    /// `x` through, in host blocks of at most `block` (≤ `BLOCK`).
    fn run(&mut self, x: &[f64], block: usize) -> Vec<f64> {
        let mut y = x.to_vec();
        for b in y.chunks_mut(block) {
            self.pre.process_part(PreampPart::Front, b);
            self.os.upsample(b);
            self.pre
                .process_part(PreampPart::Stages, self.os.oversampled());
            self.os.downsample(b);
            self.pre.process_part(PreampPart::Back, b);
        }
        y
    }

    /// The steady state of a sine of `freq` and peak `amp`: `settle_s`
    /// seconds, then `measure_s` seconds returned.
    fn steady(&mut self, freq: f64, amp: f64, settle_s: f64, measure_s: f64) -> Vec<f64> {
        let settle = (settle_s * FS) as usize;
        let x = sine(settle + (measure_s * FS) as usize, FS, freq, amp);
        self.run(&x, BLOCK)[settle..].to_vec()
    }
}

// ---------------------------------------------------------------------------
// The curve
// ---------------------------------------------------------------------------

/// Points across every region of the curve (both signs).
fn curve_points() -> Vec<f64> {
    let v = SWING_VOLTS;
    (0..=400)
        .map(|i| -2.0 * v + 4.0 * v * i as f64 / 400.0 + 1e-3)
        .collect()
}

#[test]
fn curve_is_linear_to_the_knee_and_flat_at_the_swing() {
    let c = RailCurve::new(SWING_VOLTS);
    let (v, a) = (SWING_VOLTS, KNEE_START * SWING_VOLTS);
    let w = 2.0 * (v - a);
    for x in curve_points() {
        let y = c.value(x);
        assert_eq!(c.value(-x), -y, "odd at {x}");
        if x.abs() <= a {
            assert_eq!(y, x);
        } else if x.abs() >= a + w {
            assert_eq!(y, v.copysign(x));
        } else {
            assert!(y.abs() > a && y.abs() < v, "{x}: {y}");
        }
    }
    // C¹: the slope is continuous at both ends of the knee (1, then 0: the
    // one-sided slopes agree), and inside it the curvature is −1/w.
    let h = 1e-6;
    for (at, slope) in [(a, 1.0), (a + w, 0.0)] {
        let left = (c.value(at) - c.value(at - h)) / h;
        let right = (c.value(at + h) - c.value(at)) / h;
        assert!((left - slope).abs() < 1e-5, "slope left of {at}: {left}");
        assert!((right - slope).abs() < 1e-5, "slope right of {at}: {right}");
    }
    for t in [0.1, 0.5, 0.9] {
        let (x, h) = (a + t * w, 1e-3);
        let d2 = (c.value(x + h) - 2.0 * c.value(x) + c.value(x - h)) / (h * h);
        assert!((d2 + 1.0 / w).abs() < 1e-6, "curvature at t = {t}: {d2}");
    }
    // Monotone.
    let ys: Vec<f64> = curve_points().iter().map(|&x| c.value(x)).collect();
    assert!(ys.windows(2).all(|p| p[1] >= p[0]));
}

#[test]
fn antiderivative_integrates_the_curve() {
    // F(x) against Simpson's rule of f from 0 (exact on each polynomial
    // piece; the few intervals that straddle a joint err by under 1e-10).
    let c = RailCurve::new(SWING_VOLTS);
    let simpson = |x: f64| {
        let n = 20_000;
        let h = x / n as f64;
        let mut s = c.value(0.0) + c.value(x);
        for i in 1..n {
            s += c.value(i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
        }
        s * h / 3.0
    };
    for x in [
        0.5, 11.0, 12.0, 12.5, 13.3, 14.0, 14.6, 15.0, 20.0, -13.0, -25.0,
    ] {
        let (f, expected) = (c.antiderivative(x), simpson(x));
        assert!((f - expected).abs() < 1e-9, "F({x}) = {f}, ∫ = {expected}");
    }
}

#[test]
fn adaa_is_the_average_of_the_curve_over_the_step() {
    let c = RailCurve::new(SWING_VOLTS);
    // Mean of f over [x0, x1] by the midpoint rule (fine: its error,
    // h²/24 times the mean of f'', is under 1e-10 V).
    let mean = |x0: f64, x1: f64| {
        let n = 200_000;
        (0..n)
            .map(|i| c.value(x0 + (x1 - x0) * (i as f64 + 0.5) / n as f64))
            .sum::<f64>()
            / n as f64
    };
    let pairs = [
        (1.0, 2.0),
        (11.0, 12.5),
        (12.2, 12.9),
        (13.0, 16.0),
        (-3.0, 14.0),
        (-20.0, 20.0),
        (15.0, 30.0),
        (14.0, 14.0 + 2.0 * ADAA_MIN_STEP_VOLTS),
        (12.5, 12.5 + 0.5 * ADAA_MIN_STEP_VOLTS),
        (-12.5, -12.5 - 0.9 * ADAA_MIN_STEP_VOLTS),
    ];
    for (x0, x1) in pairs {
        let (y, f1) = c.adaa(x1, x0, c.antiderivative(x0));
        assert_eq!(f1, c.antiderivative(x1));
        let expected = mean(x0, x1);
        assert!(
            (y - expected).abs() < 1e-9,
            "{x0} → {x1}: {y} vs {expected}"
        );
    }
    // Below the knee: exactly the average of the ends.
    let (y, _) = c.adaa(3.25, -1.5, c.antiderivative(-1.5));
    assert_eq!(y, 0.5 * (3.25 - 1.5));
    // No step: the curve itself.
    for x in [0.3, 12.4, 13.9, 40.0, -13.0] {
        assert!((c.adaa(x, x, c.antiderivative(x)).0 - c.value(x)).abs() < 1e-12);
    }
    // Absurd input gives a finite value within the swing.
    for (x, p) in [(f64::NAN, 1.0), (1e300, -1e300), (f64::INFINITY, 0.0)] {
        let (y, _) = c.adaa(x, p, c.antiderivative(p));
        assert!(y.is_finite() && y.abs() <= SWING_VOLTS, "{x}, {p}: {y}");
    }
}

#[test]
fn adaa_is_continuous_across_its_small_step_switch() {
    // Steps just under and just over the switch to the mid-point value give
    // the same average to well under a nanovolt, all along the knee.
    let c = RailCurve::new(SWING_VOLTS);
    for i in 0..200 {
        let x0 = 11.9 + 2.8 * i as f64 / 200.0;
        let f0 = c.antiderivative(x0);
        let below = c.adaa(x0 + 0.999 * ADAA_MIN_STEP_VOLTS, x0, f0).0;
        let above = c.adaa(x0 + 1.001 * ADAA_MIN_STEP_VOLTS, x0, f0).0;
        let slope = (c.value(x0 + 1e-3) - c.value(x0 - 1e-3)) / 2e-3;
        // The steps differ by 0.002·ε, so the mean moves by half that
        // times the slope.
        let expected_change = slope * 0.001 * ADAA_MIN_STEP_VOLTS;
        assert!(
            (above - below - expected_change).abs() < 1e-9,
            "at {x0}: {below} vs {above}"
        );
    }
}

// ---------------------------------------------------------------------------
// Gain and response
// ---------------------------------------------------------------------------

#[test]
fn small_signal_gain_is_gain_plus_level_plus_makeup() {
    for gain in [0.0, 20.0, 40.0, 60.0] {
        for level in [0.0, -20.0, -60.0] {
            let mut p = SolidPreamp::new();
            p.prepare(&ProcessSpec::new(FS * FACTOR as f64, BLOCK * FACTOR));
            p.set_rates(FS * FACTOR as f64, FS);
            p.set_settings(knobs(gain, level));
            let designed = gain + level + 69.6;
            let got = db(p.small_signal_gain());
            assert!(
                (got - designed).abs() < 0.001,
                "Gain {gain}, Level {level}: {got} dB, designed {designed} dB"
            );
        }
    }
}

#[test]
fn small_signal_response_is_the_rendered_response() {
    // A sine 20 dB under the clip (every stage linear) through the section:
    // its output over its input at the tone equals the preamp's
    // small-signal response times the oversampler's (which holds its
    // latency), magnitude and phase.
    for (gain, level, hpf) in [
        (0.0, 0.0, HighPass::Off),
        (40.0, -20.0, HighPass::Hz80),
        (60.0, -60.0, HighPass::Hz120),
    ] {
        let s = PreampSettings {
            hpf,
            ..knobs(gain, level)
        };
        for f in [30.0, 100.0, 1000.0, 7000.0, 15_000.0, 20_000.0] {
            let mut sec = Section::new(Quality::Live, s);
            // 20 dB under the clip of whichever stage clips first.
            let total = db(sec.pre.small_signal_gain()).max(gain + 34.8);
            let amp = SWING_VOLTS * 0.1 / 10f64.powf(total / 20.0);
            let y = sec.steady(f, amp, 1.0, 0.5);
            let n0 = FS as usize;
            let x = &sine(n0 + y.len(), FS, f, amp)[n0..];
            let measured = dft(&y, FS, f) / dft(x, FS, f);
            let expected = sec.pre.small_signal_response(f) * sec.os.response(f);
            let err = (measured / expected - 1.0).norm();
            assert!(
                err < 1e-4,
                "Gain {gain}, Level {level}, {hpf:?}, {f} Hz: measured {measured}, \
                 expected {expected} (error {err:e})"
            );
        }
    }
}

#[test]
fn same_level_as_the_tube_preamp_at_the_same_knobs() {
    // The make-up is the tube preamp's gain (12AX7, bias 0): at the same
    // Gain and Level, the two small-signal gains agree within 0.05 dB.
    let fs = FS * FACTOR as f64;
    for (gain, level) in [(0.0, 0.0), (20.0, -20.0), (35.0, -50.0), (60.0, -80.0)] {
        let s = PreampSettings {
            tube: TubeType::Tube12AX7,
            bias: 0.0,
            ..knobs(gain, level)
        };
        let mut tube = Preamp::new();
        tube.set_settings(s);
        tube.prepare(&ProcessSpec::new(fs, BLOCK));
        let mut solid = SolidPreamp::new();
        solid.set_settings(s);
        solid.prepare(&ProcessSpec::new(fs, BLOCK));
        let (t, so) = (db(tube.small_signal_gain()), db(solid.small_signal_gain()));
        assert!(
            (t - so).abs() < 0.05,
            "Gain {gain}, Level {level}: tube {t} dB, solid {so} dB"
        );
    }
}

// ---------------------------------------------------------------------------
// Clean below the clip; the clip level
// ---------------------------------------------------------------------------

#[test]
fn clip_level_is_the_rail_limited_swing() {
    // 13.3 V peak (THAT 1510 on ±15 V) as a sine: 9.40 V rms, +21.69 dBu.
    let expected = 20.0 * (13.3 / SQRT_2 / DBU_VOLTS).log10();
    assert!((clip_level_dbu() - expected).abs() < 1e-12);
    assert!((21.6..21.8).contains(&expected), "{expected}");
    // The swing is short of the rails by the output stage's drop.
    const { assert!(SWING_VOLTS < RAIL_VOLTS && RAIL_VOLTS - SWING_VOLTS < 2.0) };
    // Driven 20 dB over the clip, the stages' output is held exactly at the
    // swing: every sample within ±13.3 V, and the peaks on it.
    for (level, peak) in [
        (0.0, SWING_VOLTS),
        // Level −50 dB: stage 1 clips first; the output's flat top is its
        // swing times Level and stage 2's gain.
        (-50.0, SWING_VOLTS * 10f64.powf((-50.0 + 34.8) / 20.0)),
    ] {
        let s = knobs(30.0, level);
        let mut p = SolidPreamp::new();
        p.set_settings(s);
        p.prepare(&ProcessSpec::new(FS * FACTOR as f64, 4096));
        let amp = 10.0 * SWING_VOLTS / p.small_signal_gain();
        let mut y = sine(4 * 9600, FS * FACTOR as f64, 1000.0, amp);
        p.process(&mut y);
        // The middle of the last cycle's tops (192 samples a cycle).
        let (top, bottom) = (y[y.len() - 192 + 48], y[y.len() - 192 + 144]);
        assert!(
            (top - peak).abs() <= 1e-9 * peak && (bottom + peak).abs() <= 1e-9 * peak,
            "Level {level}: output tops {bottom} and {top} V, swing {peak} V"
        );
        if level == 0.0 {
            // The output stage's own clip: no sample beyond the swing.
            let max = y.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            assert_eq!(max, SWING_VOLTS);
        }
    }
}

#[test]
fn thd_one_db_under_the_clip_is_below_ten_ppm() {
    // 1 kHz, output (or stage 1's output, with Level low) 1 dB under its
    // swing, through the section in both qualities: THD below 0.001 %.
    for quality in [Quality::Live, Quality::High] {
        for (gain, level, stage_gain_db) in [
            (0.0, 0.0, 69.6),
            (40.0, 0.0, 109.6),
            (60.0, -20.0, 109.6),
            // Level −60 dB: stage 1 clips first (Gain + 34.8 dB).
            (30.0, -60.0, 64.8),
        ] {
            let amp = SWING_VOLTS * 10f64.powf((-1.0 - stage_gain_db) / 20.0);
            let mut sec = Section::new(quality, knobs(gain, level));
            let y = sec.steady(1000.0, amp, 0.5, 0.5);
            let d = thd(&y, FS, 1000.0);
            assert!(
                d < 1e-5,
                "{quality:?}, Gain {gain}, Level {level}: THD {:.2e} % 1 dB under the clip",
                d * 100.0
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Aliasing
// ---------------------------------------------------------------------------

/// The tests/aliasing.rs input: a −18 dBFS peak sine at the mic source with
/// 0 dBFS = +18 dBu at the converter: −54 dBu rms at full scale − 18 dB …
/// i.e. a peak of 10^(−18/20) · √2 · 0.7746 V · 10^((18 − 54)/20).
fn aliasing_input_peak() -> f64 {
    10f64.powf(-18.0 / 20.0) * SQRT_2 * DBU_VOLTS * 10f64.powf((18.0 - 54.0) / 20.0)
}

/// THD at 1 kHz of the aliasing input through the section at `gain_db`.
fn thd_at_gain(quality: Quality, gain_db: f64) -> f64 {
    let mut sec = Section::new(quality, knobs(gain_db, -20.0));
    let y = sec.steady(1000.0, aliasing_input_peak(), 0.1, 0.1);
    thd(&y, FS, 1000.0)
}

/// The Gain that gives 10 % THD at 1 kHz, by bisection.
fn gain_for_ten_percent(quality: Quality) -> f64 {
    let (mut lo, mut hi) = (0.0, 60.0);
    for _ in 0..16 {
        let mid = 0.5 * (lo + hi);
        if thd_at_gain(quality, mid) < 0.10 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Power at every bin of `y` but DC and the harmonics of the bin
/// `fundamental`, relative to the fundamental, dB.
fn aliasing_db(y: &[f64], fundamental: usize) -> f64 {
    let fft = realfft::RealFftPlanner::<f64>::new().plan_fft_forward(y.len());
    let mut x = y.to_vec();
    let mut s = fft.make_output_vec();
    fft.process(&mut x, &mut s).expect("FFT");
    let p_fund = s[fundamental].norm_sqr();
    let other: f64 = s
        .iter()
        .enumerate()
        .filter(|&(k, _)| k != 0 && k % fundamental != 0)
        .map(|(_, c)| c.norm_sqr())
        .sum();
    10.0 * (other / p_fund).log10()
}

/// (Gain for 10 % THD, aliasing dB) of a 7 kHz sine at 48 kHz.
fn aliasing(quality: Quality) -> (f64, f64) {
    let gain = gain_for_ten_percent(quality);
    let d = thd_at_gain(quality, gain);
    assert!(
        (d - 0.10).abs() < 0.002,
        "{quality:?}: THD {d} at Gain {gain}"
    );
    let mut sec = Section::new(quality, knobs(gain, -20.0));
    // 1 s to settle (the input coupling's 47 ms), 0.5 s measured: 3500
    // cycles, bin 3500 of 24 000.
    let y = sec.steady(7000.0, aliasing_input_peak(), 1.0, 0.5);
    (gain, aliasing_db(&y, 3500))
}

#[test]
fn aliasing_at_ten_percent_thd_is_below_minus_90_db() {
    for (quality, limit) in [(Quality::Live, -90.0), (Quality::High, -90.0)] {
        let (gain, a) = aliasing(quality);
        assert!(
            a <= limit,
            "{quality:?}: aliasing {a:.1} dB at Gain {gain:.2} dB (10 % THD at 1 kHz)"
        );
    }
}

// ---------------------------------------------------------------------------
// The split path
// ---------------------------------------------------------------------------

#[test]
fn the_section_path_does_not_depend_on_the_block_size() {
    // Front, stages and back each keep their own sample count: host blocks
    // of 1, 7, 100 and 256 give the same output bit for bit, through a
    // settings change and into the clip.
    let x: Vec<f64> = sine(9000, FS, 997.0, 0.02)
        .iter()
        .zip(sine(9000, FS, 5003.0, 0.01))
        .map(|(a, b)| a + b)
        .collect();
    let run = |block: usize| {
        let mut sec = Section::new(Quality::Live, knobs(20.0, -20.0));
        let mut y = sec.run(&x[..4321], block);
        sec.pre.set_settings(PreampSettings {
            hpf: HighPass::Hz80,
            ..knobs(45.0, -3.0)
        });
        y.extend(sec.run(&x[4321..], block));
        y
    };
    let reference = run(1);
    for block in [7, 100, 256] {
        assert!(
            reference
                .iter()
                .zip(run(block))
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "blocks of {block}"
        );
    }
}

#[test]
fn stages_are_a_plain_per_sample_loop() {
    in_every_build!(stages_are_a_plain_per_sample_loop_in);
}

/// The stages' chunk loops (sub-chunks under the knee on the exact
/// average, any other through the general ADAA step) give bit for bit what
/// the plain recursion gives sample by sample in build `M`: pre-emphasis
/// u[n] = (1 + b)·x[n] − b·u[n−1] (its multiply-add fused as the build
/// fuses), the curve's ADAA step, Level and stage 2's gain, again for
/// stage 2; and a stereo pair, each channel another signal, gives each
/// channel's. The signal swells from clean into both stages' clip and
/// back.
fn stages_are_a_plain_per_sample_loop_in<M: crate::dsp::fma::MulAdd>() {
    let fs = FS * FACTOR as f64;
    let s = knobs(30.0, -30.0);
    let isa = if M::INDEX == 0 {
        crate::dsp::Isa::portable()
    } else {
        crate::dsp::Isa::avx2_fma().expect("the fused build runs only where the CPU has it")
    };
    let spec = ProcessSpec {
        isa,
        ..ProcessSpec::new(fs, 4096)
    };
    let new = || {
        let mut p = SolidPreamp::new();
        p.set_settings(s);
        p.prepare(&spec);
        p
    };
    let n = 40_000;
    let signal = |f: f64, peak: f64| -> Vec<f64> {
        (0..n)
            .map(|i| {
                let t = i as f64 / n as f64;
                peak * (PI * t).sin().powi(2) * (TAU * f * i as f64 / fs).sin()
            })
            .collect()
    };
    let (x, x2) = (signal(1234.5, 20.0), signal(321.0, 14.0));
    let mut p = new();
    let mut y = x.clone();
    // The stages alone: their input is stage 1's ideal output, volts.
    for c in y.chunks_mut(700) {
        p.process_part(PreampPart::Stages, c);
    }
    let (mut pa, mut pb) = (new(), new());
    let (mut l, mut r) = (x.clone(), x2.clone());
    for (cl, cr) in l.chunks_mut(333).zip(r.chunks_mut(333)) {
        SolidPreamp::process_pair_part(&mut pa, &mut pb, PreampPart::Stages, cl, cr);
    }
    let b = crate::dsp::tube::adaa_compensation(20_000.0, fs, 0.025);
    let c = RailCurve::new(SWING_VOLTS);
    let g2 = 10f64.powf(-30.0 / 20.0) * 10f64.powf(OUTPUT_STAGE_GAIN_DB / 20.0);
    let reference = |x: &[f64]| -> (Vec<f64>, [bool; 2]) {
        let (mut u1, mut u2) = (0.0f64, 0.0f64);
        let mut reached = [false; 2];
        let y = x
            .iter()
            .map(|&v| {
                let n1 = M::mad1(-b, u1, (1.0 + b) * v);
                let (y1, _) = c.adaa(n1, u1, c.antiderivative(u1));
                let n2 = M::mad1(-b, u2, (1.0 + b) * (y1 * g2));
                let (y2, _) = c.adaa(n2, u2, c.antiderivative(u2));
                reached[0] |= n1.abs() > c.knee();
                reached[1] |= n2.abs() > c.knee();
                (u1, u2) = (n1, n2);
                y2
            })
            .collect();
        (y, reached)
    };
    let (want, reached) = reference(&x);
    assert!(reached[0] && reached[1], "{reached:?}");
    let (want2, _) = reference(&x2);
    for (name, got, want) in [
        ("mono", &y, &want),
        ("left", &l, &want),
        ("right", &r, &want2),
    ] {
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert_eq!(g.to_bits(), w.to_bits(), "{name} sample {i}: {g} vs {w}");
        }
    }
}
