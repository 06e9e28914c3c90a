//! Tests of the mic input transformer: the gain under the rated
//! termination and the response against an independent computation of the
//! circuit (its own formulation: Thevenin equivalents on the secondary
//! side, its own trim by bisection), the top-end resonance against the
//! termination, saturation against level and frequency, hysteresis, and
//! absurd input. The component values are the documented ones, restated
//! here on purpose: a changed constant in the stage fails these tests.

use super::*;
use crate::dsp::transformer::tests::harmonics;
use num_complex::Complex;
use std::f64::consts::PI;

/// 0 dBu in volts rms.
const DBU: f64 = 0.774_596_669_241_483;
/// Documented values (module header), restated.
const RP: f64 = 19.7;
/// Secondary DC resistance.
const RSEC: f64 = 2465.0;
/// Core loss.
const RC: f64 = 14.8e3;
/// Magnetising inductance.
const LM: f64 = 4.84;
/// Leakage, secondary side.
const LL: f64 = 0.392;
/// Capacitance across the secondary.
const CSEC: f64 = 5.68e-12;
/// The preamp's switch positions.
const IN_Z: [f64; 5] = [300.0, 600.0, 1200.0, 2400.0, 10_000.0];
/// Host rates.
const RATES: [f64; 4] = [44_100.0, 48_000.0, 96_000.0, 192_000.0];

fn db(x: f64) -> f64 {
    20.0 * x.log10()
}

fn settings(source_ohms: f64, in_z_ohms: f64) -> MicTransformerSettings {
    MicTransformerSettings {
        source_ohms,
        in_z_ohms,
    }
}

fn stage(fs: f64, s: MicTransformerSettings) -> MicTransformer {
    let mut t = MicTransformer::new();
    t.set_settings(s);
    t.prepare(&ProcessSpec::new(fs, 4096));
    t
}

/// The turns ratio that makes the mid-band (resistive) gain from an ideal
/// source into in_z = 1500 Ω exactly 10, found by bisection.
fn trim_by_bisection() -> f64 {
    let gain = |n: f64| {
        let r_t = 1500.0 * n * n;
        // Secondary side: the primary's Rp and Rc referred up, the core as
        // a divider, then Rsec into R_term.
        let zm = RC * n * n;
        let vth = n * zm / (RP * n * n + zm);
        let zth = RP * n * n * zm / (RP * n * n + zm);
        vth * r_t / (zth + RSEC + r_t)
    };
    let (mut lo, mut hi) = (9.0, 12.0);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if gain(mid) < 10.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Vout / Vs of the circuit at `f`, computed on the secondary side: the
/// source and primary referred up (× N²), the core (Lm || Rc) as a shunt,
/// its Thevenin equivalent driving leakage + Rsec into C || R_term.
fn circuit(s: MicTransformerSettings, n: f64, f: f64) -> Complex<f64> {
    let j = Complex::new(0.0, 1.0);
    let w = 2.0 * PI * f;
    let n2 = n * n;
    let z_src = Complex::new((s.source_ohms + RP) * n2, 0.0);
    let z_core = 1.0 / (1.0 / (j * w * LM) + 1.0 / RC) * n2;
    let v_th = n * z_core / (z_src + z_core);
    let z_th = z_src * z_core / (z_src + z_core);
    let z_load = 1.0 / (1.0 / (s.in_z_ohms * n2) + j * w * CSEC);
    v_th * z_load / (z_th + RSEC + j * w * LL + z_load)
}

/// The impedance the source sees at `f` (primary terminals).
fn input_impedance(s: MicTransformerSettings, n: f64, f: f64) -> Complex<f64> {
    let j = Complex::new(0.0, 1.0);
    let w = 2.0 * PI * f;
    let z_load = 1.0 / (1.0 / (s.in_z_ohms * n * n) + j * w * CSEC);
    let z_sec = (RSEC + j * w * LL + z_load) / (n * n);
    let z_core = 1.0 / (1.0 / (j * w * LM) + 1.0 / RC);
    RP + 1.0 / (1.0 / z_core + 1.0 / z_sec)
}

fn log_freqs(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| 20.0 * 1000f64.powf(i as f64 / (n - 1) as f64))
        .collect()
}

/// A cosine of `peak` volts at `f` (the flux starts at zero with zero mean).
fn cosine(fs: f64, f: f64, peak: f64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| peak * (2.0 * PI * f * i as f64 / fs).cos())
        .collect()
}

/// THD in percent with `dbu` rms at the primary terminals at `f` (the
/// source's EMF raised by the divider it makes with the input impedance),
/// 150 Ω source into the rated termination (the data sheet's test circuit
/// 1), at 48 kHz.
fn thd_at_primary(f: f64, dbu: f64) -> f64 {
    let fs = 48_000.0;
    let s = settings(150.0, 1500.0);
    let n = trim_by_bisection();
    let per = (fs / f).round() as usize;
    let f = fs / per as f64;
    let zin = input_impedance(s, n, f);
    let emf = DBU * 10f64.powf(dbu / 20.0) * ((zin + 150.0) / zin).norm();
    let settle = if f < 100.0 { 6 } else { 40 };
    let mut y = cosine(fs, f, emf * 2f64.sqrt(), per * (settle + 2));
    let mut t = stage(fs, s);
    for c in y.chunks_mut(1000) {
        t.process(c);
    }
    let p = harmonics(&y, per, 2);
    let h: f64 = p[2..].iter().map(|x| x * x).sum::<f64>().sqrt();
    100.0 * h / p[1]
}

#[test]
fn trim_matches_an_independent_bisection() {
    let n = trim_by_bisection();
    assert!(
        (trimmed_ratio() - n).abs() < 1e-9,
        "{} vs {n}",
        trimmed_ratio()
    );
    assert!((10.2..10.4).contains(&n), "N = {n}");
}

#[test]
fn gain_at_1k_under_the_rated_termination_is_20_db() {
    // "Rated termination": an ideal source (0 Ω) and the data sheet's test
    // load, in_z = 1500 Ω (150 kΩ on 1:10), i.e. R_term = 1500 N².
    let s = settings(0.0, RATED_IN_Z_OHMS);
    let n = trim_by_bisection();
    let want = db(circuit(s, n, 1000.0).norm());
    // The circuit itself: the reactances cost < 0.002 dB at 1 kHz.
    assert!((want - 20.0).abs() < 0.005, "circuit: {want} dB");
    for fs in RATES {
        let mut t = stage(fs, s);
        assert!(
            (db(t.response(1000.0).norm()) - want).abs() < 0.005,
            "{fs}: response {} dB vs circuit {want} dB",
            db(t.response(1000.0).norm())
        );
        // Rendered: 1 kHz at −40 dBu (the core is linear there).
        let per = (fs / 1000.0).round() as usize;
        let f = fs / per as f64;
        let amp = 0.01;
        let mut y = cosine(fs, f, amp, per * 60);
        for c in y.chunks_mut(512) {
            t.process(c);
        }
        let g = db(harmonics(&y, per, 4)[1] / amp);
        assert!((g - 20.0).abs() <= 0.02, "{fs}: rendered {g} dB");
    }
}

#[test]
fn response_matches_the_circuit() {
    // Magnitude: every section matches the circuit's magnitude (the pair
    // above the band to 3-tap FIRs matched at DC, 10 and 20 kHz). At 44.1
    // and 48 kHz the leakage pole in the band (in_z 300 and 600: 15 kHz
    // and 27 kHz) costs up to 0.19 dB near 17 kHz, where the circuit is
    // already −3 dB. Phase: the sections are minimum phase, so the small
    // lag of the poles above the band, a delay, is missing: the error is
    // checked as the delay it amounts to (under 8 µs, 0.35 samples at
    // 44.1 kHz).
    let n = trim_by_bisection();
    let mut worst_delay = 0.0f64;
    for fs in RATES {
        for in_z in IN_Z.iter().copied().chain([RATED_IN_Z_OHMS]) {
            for rs in [0.0, 150.0, 600.0] {
                let s = settings(rs, in_z);
                let t = stage(fs, s);
                let tol_db = match (fs > 88_000.0, in_z >= 1200.0) {
                    (true, _) => 0.005,
                    (false, true) => 0.035,
                    (false, false) => 0.2,
                };
                for f in log_freqs(41) {
                    let a = circuit(s, n, f);
                    let h = t.response(f);
                    let e_db = db(h.norm() / a.norm());
                    let delay = (h / a).arg().abs() / (2.0 * PI * f);
                    assert!(
                        e_db.abs() < tol_db && delay < 8e-6,
                        "{fs} Hz, {s:?}, {f:.0} Hz: {e_db:+.4} dB, {:.2} µs",
                        delay * 1e6
                    );
                    worst_delay = worst_delay.max(delay);
                }
            }
        }
    }
    assert!(
        worst_delay > 1e-6,
        "the phase error is not the missing lag?"
    );
}

#[test]
fn datasheet_figures_from_the_constants() {
    // Test circuit 1 (150 Ω generator, 150 kΩ load on 1:10): the published
    // −0.26 dB at 20 Hz, −0.13 dB at 20 kHz, −3 dB at 90 kHz re 1 kHz and
    // 1.40 kΩ at 1 kHz, from the documented constants at N = 10.
    let s = settings(150.0, 1500.0);
    let rel = |f: f64| db(circuit(s, 10.0, f).norm() / circuit(s, 10.0, 1000.0).norm());
    assert!((rel(20.0) + 0.26).abs() < 0.01, "20 Hz: {}", rel(20.0));
    assert!((rel(20e3) + 0.13).abs() < 0.01, "20 kHz: {}", rel(20e3));
    assert!((rel(90e3) + 3.0).abs() < 0.05, "90 kHz: {}", rel(90e3));
    let zin = input_impedance(s, 10.0, 1000.0).norm();
    assert!((zin - 1400.0).abs() < 5.0, "Zi {zin}");
}

#[test]
fn termination_damps_the_top_end_resonance() {
    let n = trim_by_bisection();
    // The independent circuit: the peak above 20 kHz re 1 kHz.
    let peak = |in_z: f64| {
        let s = settings(0.0, in_z);
        let g1 = circuit(s, n, 1000.0).norm();
        (0..400)
            .map(|i| 20e3 * 20f64.powf(i as f64 / 399.0))
            .map(|f| (db(circuit(s, n, f).norm() / g1), f))
            .fold(
                (f64::NEG_INFINITY, 0.0),
                |a, b| if b.0 > a.0 { b } else { a },
            )
    };
    let (p10k, f10k) = peak(10_000.0);
    assert!(
        p10k > 9.0 && (95e3..115e3).contains(&f10k),
        "10k: {p10k} dB at {f10k} Hz"
    );
    let (p2400, _) = peak(2400.0);
    assert!(p2400 > 0.3 && p2400 < 1.5, "2400: {p2400} dB");
    for in_z in [300.0, 600.0, 1200.0] {
        assert!(peak(in_z).0 < 0.0, "{in_z}: {:?}", peak(in_z));
    }
    // The stage's model: the pole pair of leakage and capacitance, its
    // frequency and Q from the second-order part of the circuit, D(s) =
    // Ll C s^2 + (Ll/R_T + R C) s + 1 + R/R_T, R = Rsec + ((Rs+Rp)||Rc) N^2.
    let fs = 48_000.0;
    for in_z in [2400.0, 10_000.0] {
        let r_t = in_z * n * n;
        let r = RSEC + RP * RC / (RP + RC) * n * n;
        let w0 = ((1.0 + r / r_t) / (LL * CSEC)).sqrt();
        let q = w0 * LL * CSEC / (LL / r_t + r * CSEC);
        let (f0, q0) = stage(fs, settings(0.0, in_z))
            .resonance()
            .expect("a pole pair");
        assert!(
            (f0 / (w0 / (2.0 * PI)) - 1.0).abs() < 0.005 && (q0 / q - 1.0).abs() < 0.01,
            "{in_z}: {f0} Hz, Q {q0} vs {} Hz, Q {q}",
            w0 / (2.0 * PI)
        );
    }
    let q10k = stage(fs, settings(0.0, 10_000.0)).resonance().unwrap().1;
    assert!(q10k > 3.0, "Q {q10k}");
    assert!(stage(fs, settings(0.0, 300.0)).resonance().is_none());
    // In band, as rendered: the rise toward 20 kHz into 10 kΩ, the leakage
    // pole's loss into 300 Ω.
    let rel = |in_z: f64| {
        let t = stage(fs, settings(0.0, in_z));
        db(t.response(20e3).norm() / t.response(1000.0).norm())
    };
    assert!(rel(10_000.0) > 0.2, "10k at 20 kHz: {}", rel(10_000.0));
    assert!(rel(300.0) < -3.0, "300 at 20 kHz: {}", rel(300.0));
}

#[test]
fn saturation_is_worst_at_low_frequency() {
    // −10 dBu at the primary, from the data sheet's 150 Ω generator.
    let t20 = thd_at_primary(20.0, -10.0);
    let t1k = thd_at_primary(1000.0, -10.0);
    assert!(db(t20 / t1k) >= 20.0, "THD 20 Hz {t20} % vs 1 kHz {t1k} %");
    // Jensen: 1 % at 20 Hz at −2.5 dBu (typ.); its THD+N graph reads about
    // 0.4 % at −5 dBu. At −10 dBu the order of 0.1 %.
    let lo = thd_at_primary(20.0, -3.0);
    let hi = thd_at_primary(20.0, -2.0);
    assert!(
        lo < 1.0 && hi > 1.0,
        "1 % not between −3 ({lo} %) and −2 dBu ({hi} %)"
    );
    let m5 = thd_at_primary(20.0, -5.0);
    assert!((0.25..0.8).contains(&m5), "−5 dBu: {m5} %");
    assert!((0.05..0.4).contains(&t20), "−10 dBu: {t20} %");
}

#[test]
fn core_shows_hysteresis() {
    // A slow sine (10 Hz, 0 dBu from 150 Ω): at zero flux the field is
    // positive on the rising branch, negative on the falling one, and the
    // loop (h, lambda) encloses an area (energy lost per cycle).
    let fs = 48_000.0;
    let mut t = stage(fs, settings(150.0, 1500.0));
    let per = 4800;
    let x = cosine(fs, 10.0, DBU * 2f64.sqrt(), 6 * per);
    let (mut prev, mut rise, mut fall) = (0.0, Vec::new(), Vec::new());
    let mut path = Vec::new();
    for (i, &v) in x.iter().enumerate() {
        t.process(&mut [v]);
        let core = t.model.core;
        let l = MIC_CORE.flux(core);
        if i >= 4 * per {
            if prev < 0.0 && l >= 0.0 {
                rise.push(core.h);
            }
            if prev > 0.0 && l <= 0.0 {
                fall.push(core.h);
            }
            if i < 5 * per {
                path.push((core.h, l));
            }
        }
        prev = l;
    }
    assert!(!rise.is_empty() && !fall.is_empty());
    for (&r, &f) in rise.iter().zip(&fall) {
        assert!(r > 0.01 && f < -0.01, "no loop: h rising {r}, falling {f}");
    }
    // Area of one cycle, sum of h d(lambda), against the enclosing box.
    let area: f64 = path
        .windows(2)
        .map(|w| 0.5 * (w[0].0 + w[1].0) * (w[1].1 - w[0].1))
        .sum();
    let hmax = path.iter().fold(0.0f64, |m, p| m.max(p.0.abs()));
    let lmax = path.iter().fold(0.0f64, |m, p| m.max(p.1.abs()));
    // Measured: h = ±0.029 at zero flux, the area 1.2 % of the box.
    assert!(area > 0.005 * hmax * lmax, "area {area} ({hmax} x {lmax})");
}

#[test]
fn absurd_input_gives_finite_output() {
    for s in [settings(0.0, 10_000.0), settings(150.0, 300.0)] {
        let mut t = stage(48_000.0, s);
        let mut x: Vec<f64> = (0..4000)
            .map(|i| match i % 5 {
                0 => f64::NAN,
                1 => f64::INFINITY,
                2 => -1e5,
                3 => f64::NEG_INFINITY,
                _ => 1e5,
            })
            .collect();
        t.process(&mut x);
        assert!(x.iter().all(|v| v.is_finite()), "{s:?}");
        // Clamped at the input: the output is bounded by the circuit.
        let peak = x.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(peak < 1e5, "{s:?}: {peak}");
        let mut y = cosine(48_000.0, 1000.0, 0.1, 4800);
        t.process(&mut y);
        assert!(y.iter().all(|v| v.is_finite()));
    }
}

#[test]
fn non_finite_core_state_resets() {
    let mut t = stage(48_000.0, MicTransformerSettings::default());
    t.model.core.h = f64::NAN;
    t.model.nu = f64::INFINITY;
    let mut y = cosine(48_000.0, 100.0, 0.1, 2000);
    t.process(&mut y);
    assert!(y.iter().all(|v| v.is_finite()));
    assert!(t.model.core.h.is_finite() && t.model.nu.is_finite());
}

#[test]
fn default_in_z_is_the_mic_stage_default() {
    assert_eq!(
        MicTransformerSettings::default().in_z_ohms,
        crate::dsp::mic::MicSettings::default().in_z_ohms
    );
    assert_eq!(IN_Z, crate::dsp::mic::IN_Z_OHMS);
}
