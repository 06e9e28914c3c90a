//! The mic source against its physics: the rendered divider against
//! Z_in / (Z_in + Z_mic(jw)) computed here, independently of the stage's
//! networks and rational functions (only the component values are shared),
//! and the shapes of the impedances themselves. The generic `Stage` suite
//! runs it too (`stage/tests.rs`).

use super::networks::*;
use super::*;
use std::f64::consts::PI;

type C64 = Complex<f64>;

const RATES: [f64; 3] = [44_100.0, 48_000.0, 96_000.0];
/// Tolerances of the divider, 20 Hz .. 20 kHz.
const TOL_DB: f64 = 0.05;
const TOL_DEG: f64 = 2.0;
/// Length of the rendered impulse responses (1.4 .. 3 s: the slowest
/// pole, the ribbon's resonance into 10 kΩ, decays in ~20 ms).
const IR_LEN: usize = 1 << 17;

/// j w.
fn jw(freq_hz: f64) -> C64 {
    C64::new(0.0, 2.0 * PI * freq_hz)
}

/// Impedance of a parallel R-L-C with peak `r` at `f0`, quality `q`,
/// written as the sum of its admittances.
fn parallel_rlc(r: f64, f0: f64, q: f64, freq_hz: f64) -> C64 {
    let w0 = 2.0 * PI * f0;
    let (l, c) = (r / (w0 * q), q / (w0 * r));
    let s = jw(freq_hz);
    let y = C64::new(1.0 / r, 0.0) + (s * l).inv() + s * c;
    y.inv()
}

/// Z_mic(j 2 pi f) from the component values, written here.
fn z_mic(model: MicModel, freq_hz: f64) -> C64 {
    let s = jw(freq_hz);
    match model {
        MicModel::None => C64::new(0.0, 0.0),
        MicModel::Dynamic => {
            let coil = ((s * DYN_COIL_HENRIES).inv() + 1.0 / DYN_COIL_LOSS_OHMS).inv();
            let m = DYN_MOTIONAL;
            DYN_DC_OHMS + coil + parallel_rlc(m.r_ohms, m.f0_hz, m.q, freq_hz)
        }
        MicModel::Ribbon => {
            // The primary's impedance, then through the 1:n transformer.
            let m = RIB_MOTIONAL;
            let primary = RIB_RIBBON_OHMS + parallel_rlc(m.r_ohms, m.f0_hz, m.q, freq_hz);
            primary * RIB_TURNS.powi(2) + RIB_WINDING_OHMS + s * RIB_LEAKAGE_HENRIES
        }
        MicModel::Condenser => C64::new(COND_OUT_OHMS, 0.0),
    }
}

/// The analog divider.
fn divider(model: MicModel, in_z: f64, freq_hz: f64) -> C64 {
    C64::new(in_z, 0.0) / (in_z + z_mic(model, freq_hz))
}

fn db(h: C64) -> f64 {
    20.0 * h.norm().log10()
}

/// 241 frequencies, log-spaced, 20 Hz .. 20 kHz (80 per decade).
fn log_freqs() -> Vec<f64> {
    (0..=240)
        .map(|i| 20.0 * 1000f64.powf(i as f64 / 240.0))
        .collect()
}

fn prepared(settings: MicSettings, fs: f64) -> MicSource {
    let mut stage = MicSource::new();
    stage.set_settings(settings);
    stage.prepare(&ProcessSpec::new(fs, 4096));
    stage
}

/// (bin frequency, measured response with the latency removed) at the
/// bins nearest `log_freqs`, from the rendered impulse response.
fn measured(stage: &mut MicSource, fs: f64) -> Vec<(f64, C64)> {
    let mut h = vec![0.0; IR_LEN];
    h[0] = 1.0;
    for block in h.chunks_mut(4096) {
        stage.process(block);
    }
    let fft = realfft::RealFftPlanner::<f64>::new().plan_fft_forward(IR_LEN);
    let mut spectrum = fft.make_output_vec();
    fft.process(&mut h, &mut spectrum).expect("FFT");
    let latency = stage.latency_samples() as f64;
    log_freqs()
        .iter()
        .map(|f| {
            let k = (f * IR_LEN as f64 / fs).round() as usize;
            let w = 2.0 * PI * k as f64 / IR_LEN as f64;
            (
                k as f64 * fs / IR_LEN as f64,
                spectrum[k] * C64::from_polar(1.0, w * latency),
            )
        })
        .collect()
}

/// (dB, degrees) of `h` re `target`.
fn error(h: C64, target: C64) -> (f64, f64) {
    let r = h / target;
    (db(r), r.arg().to_degrees())
}

#[test]
fn every_mic_into_every_input_matches_the_analog_divider() {
    let mut failures = Vec::new();
    for fs in RATES {
        for model in MODELS {
            for in_z in IN_Z_OHMS {
                let mut stage = prepared(
                    MicSettings {
                        model,
                        in_z_ohms: in_z,
                    },
                    fs,
                );
                for (f, h) in measured(&mut stage, fs) {
                    let target = divider(model, in_z, f);
                    for (what, h) in [("rendered", h), ("response()", stage.response(f))] {
                        let (e_db, e_deg) = error(h, target);
                        if e_db.abs() > TOL_DB || e_deg.abs() > TOL_DEG {
                            failures.push(format!(
                                "{model:?} into {in_z} Ω at {fs} Hz, {what}: {e_db:+.4} dB, \
                                 {e_deg:+.3}° at {f:.1} Hz"
                            ));
                        }
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_fits_are_tight_on_their_own_points() {
    for fs in RATES {
        for model in MODELS {
            for in_z in IN_Z_OHMS {
                let stage = prepared(
                    MicSettings {
                        model,
                        in_z_ohms: in_z,
                    },
                    fs,
                );
                // 4e-3 relative: 0.035 dB, 0.23° (the worst, the ribbon
                // into 300 Ω at 44.1 kHz, is 3.5e-3 with 16 taps).
                assert!(
                    stage.fit_error() < 4e-3,
                    "{model:?} into {in_z} Ω at {fs} Hz: fit error {:e}",
                    stage.fit_error()
                );
            }
        }
    }
}

#[test]
fn the_stage_networks_are_the_ones_written_here() {
    for model in [
        MicModel::None,
        MicModel::Dynamic,
        MicModel::Ribbon,
        MicModel::Condenser,
    ] {
        for f in log_freqs() {
            let (a, b) = (model.impedance(f), z_mic(model, f));
            assert!(
                (a - b).norm() <= 1e-12 * b.norm().max(1.0),
                "{model:?} at {f} Hz"
            );
        }
    }
}

#[test]
fn none_is_an_exact_delay_of_the_latency() {
    for fs in RATES {
        for in_z in IN_Z_OHMS {
            let mut stage = prepared(
                MicSettings {
                    model: MicModel::None,
                    in_z_ohms: in_z,
                },
                fs,
            );
            let x: Vec<f64> = (0..1000)
                .map(|i| ((i * 7919) % 1013) as f64 - 506.5)
                .collect();
            let mut y = x.clone();
            stage.process(&mut y);
            let lat = stage.latency_samples();
            assert_eq!(lat, LATENCY);
            assert!(y[..lat].iter().all(|v| *v == 0.0));
            assert!(y[lat..]
                .iter()
                .zip(&x)
                .all(|(a, b)| a.to_bits() == b.to_bits()));
            assert_eq!(stage.response(1000.0), C64::new(1.0, 0.0));
        }
    }
}

#[test]
fn the_latency_is_the_same_for_every_mic() {
    for model in [
        MicModel::None,
        MicModel::Dynamic,
        MicModel::Ribbon,
        MicModel::Condenser,
    ] {
        let stage = prepared(
            MicSettings {
                model,
                in_z_ohms: 300.0,
            },
            48_000.0,
        );
        assert_eq!(stage.latency_samples(), LATENCY);
    }
}

#[test]
fn dynamic_is_a_few_hundred_ohms_with_a_bump_and_a_rising_top() {
    let z = |f: f64| z_mic(MicModel::Dynamic, f).norm();
    // Shure's "300 Ω actual" at 1 kHz; Whitlock's < 150 Ω at the bottom.
    assert!((250.0..350.0).contains(&z(1000.0)), "{}", z(1000.0));
    assert!(z(20.0) < 150.0, "{}", z(20.0));
    // The resonance: a local maximum over 300 Ω near 150 Hz.
    let f0 = DYN_MOTIONAL.f0_hz;
    assert!(z(f0) > 300.0 && z(f0) > z(0.5 * f0) && z(f0) > z(2.0 * f0));
    // The coil: rising above 1 kHz, still at 20 kHz, to ~2x.
    assert!(z(5000.0) > 1.5 * z(1000.0) && z(20_000.0) > z(10_000.0));
}

#[test]
fn ribbon_is_300_ohms_with_a_low_peak_and_a_rising_top() {
    let z = |f: f64| z_mic(MicModel::Ribbon, f).norm();
    assert!((270.0..330.0).contains(&z(1000.0)), "{}", z(1000.0));
    let f0 = RIB_MOTIONAL.f0_hz;
    // A strong peak at the ribbon's resonance: over 3x the nominal.
    assert!(z(f0) > 3.0 * z(1000.0) && z(f0) > z(0.7 * f0) && z(f0) > z(1.5 * f0));
    assert!(z(20_000.0) > 1.3 * z(1000.0));
}

#[test]
fn condenser_is_flat_into_every_input() {
    for fs in RATES {
        for in_z in IN_Z_OHMS {
            let settings = MicSettings {
                model: MicModel::Condenser,
                in_z_ohms: in_z,
            };
            let mut stage = prepared(settings, fs);
            let levels: Vec<f64> = measured(&mut stage, fs)
                .iter()
                .map(|(_, h)| db(*h))
                .collect();
            let span = levels.iter().fold(f64::MIN, |m, v| m.max(*v))
                - levels.iter().fold(f64::MAX, |m, v| m.min(*v));
            assert!(span < 0.1, "into {in_z} Ω at {fs} Hz: {span} dB");
        }
    }
}

#[test]
fn input_impedance_takes_the_nearest_switch_position() {
    assert_eq!(in_z_index(2400.0), 3);
    assert_eq!(in_z_index(250.0), 0);
    assert_eq!(in_z_index(900.0), 2);
    assert_eq!(in_z_index(1e6), 4);
    assert_eq!(in_z_index(f64::NAN), DEFAULT_IN_Z);
    assert_eq!(in_z_index(-1.0), DEFAULT_IN_Z);
}

/// (1 kHz level in dB, 20 Hz .. 20 kHz span in dB) of `model` into
/// `in_z`, from the analog divider.
fn level_and_span(model: MicModel, in_z: f64) -> (f64, f64) {
    let levels: Vec<f64> = (0..=600)
        .map(|i| db(divider(model, in_z, 20.0 * 1000f64.powf(i as f64 / 600.0))))
        .collect();
    let max = levels.iter().fold(f64::MIN, |m, v| m.max(*v));
    let min = levels.iter().fold(f64::MAX, |m, v| m.min(*v));
    (db(divider(model, in_z, 1000.0)), max - min)
}

/// The figures docs/DESIGN.md (§ Mic source) and the README quote.
#[test]
fn the_documented_loading_figures() {
    let cases = [
        // (model, low Z_in, high Z_in, 1 kHz change, span low, span high)
        (MicModel::Dynamic, 300.0, 2400.0, -4.78, 6.05, 1.40),
        (MicModel::Ribbon, 1200.0, 10_000.0, -1.65, 3.53, 0.61),
    ];
    for (model, lo, hi, change, span_lo, span_hi) in cases {
        let (l_lo, s_lo) = level_and_span(model, lo);
        let (l_hi, s_hi) = level_and_span(model, hi);
        for (got, want) in [(l_lo - l_hi, change), (s_lo, span_lo), (s_hi, span_hi)] {
            assert!(
                (got - want).abs() < 0.01,
                "{model:?} into {lo} / {hi} Ω: {got:.3} vs {want} (1 kHz {l_lo:.2} / {l_hi:.2} dB, \
                 span {s_lo:.2} / {s_hi:.2} dB)"
            );
        }
    }
}

#[test]
fn switching_through_every_setting_stays_finite() {
    let mut stage = prepared(MicSettings::default(), 48_000.0);
    let mut x: Vec<f64> = (0..4096).map(|i| (i as f64 * 0.05).sin()).collect();
    for model in [
        MicModel::Ribbon,
        MicModel::None,
        MicModel::Dynamic,
        MicModel::Condenser,
    ] {
        for in_z in IN_Z_OHMS {
            stage.set_settings(MicSettings {
                model,
                in_z_ohms: in_z,
            });
            stage.process(&mut x[..64]);
        }
    }
    assert!(x.iter().all(|v| v.is_finite()));
}

#[test]
fn a_stereo_pair_is_bit_identical_to_two_mono_sources() {
    // Two channels of different signals (one with a NaN and an infinity in
    // it) through the pair's lanes and through two mono sources, in blocks
    // of many sizes: the same bits, for every mic. Two sources on other
    // settings run each on its own, and still match.
    let fs = 48_000.0;
    let len = 3_000;
    let mut left: Vec<f64> = (0..len).map(|i| (i as f64 * 0.37).sin() * 0.3).collect();
    let right: Vec<f64> = (0..len)
        .map(|i| ((i * 7919) % 97) as f64 / 97.0 - 0.5)
        .collect();
    left[500] = f64::NAN;
    left[1_200] = f64::INFINITY;
    for model in [
        MicModel::None,
        MicModel::Dynamic,
        MicModel::Ribbon,
        MicModel::Condenser,
    ] {
        for (in_z_a, in_z_b) in [(300.0, 300.0), (1200.0, 10_000.0)] {
            let sa = MicSettings {
                model,
                in_z_ohms: in_z_a,
            };
            let sb = MicSettings {
                model,
                in_z_ohms: in_z_b,
            };
            let (mut ma, mut mb) = (prepared(sa, fs), prepared(sb, fs));
            let (mut ref_l, mut ref_r) = (left.clone(), right.clone());
            ma.process(&mut ref_l);
            mb.process(&mut ref_r);
            for block in [1, 7, 64, 100, 513] {
                let (mut pa, mut pb) = (prepared(sa, fs), prepared(sb, fs));
                let (mut l, mut r) = (left.clone(), right.clone());
                for (cl, cr) in l.chunks_mut(block).zip(r.chunks_mut(block)) {
                    MicSource::process_pair(&mut pa, &mut pb, cl, cr);
                }
                let same =
                    |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
                assert!(
                    same(&l, &ref_l),
                    "{model:?} {in_z_a}: left differs, block {block}"
                );
                assert!(
                    same(&r, &ref_r),
                    "{model:?} {in_z_b}: right differs, block {block}"
                );
            }
        }
    }
}

#[test]
fn the_filters_are_the_plain_per_sample_recursions() {
    // The portable build against the filters written here one sample at a
    // time, unfused: the biquads (direct form I), the FIR
    // summing its taps in order of delay, the double pole, every state
    // flushed (|v| < 1e-30 to 0) every FLUSH_EVERY samples. The signal
    // starts with noise around the flush threshold (later, the slow decay
    // of a loud signal keeps the states far above it), so a flush in the wrong
    // place changes bits (checked: without the flush the reference
    // differs); blocks of many sizes (the chunks, and the double pole run
    // beside the next chunk's biquads, must not show).
    let fs = 48_000.0;
    let len = 6_000;
    let signal: Vec<f64> = (0..len)
        .map(|i| {
            let noise = ((i * 7919) % 97) as f64 / 97.0 - 0.5;
            if i < 3_000 {
                noise * 1e-29
            } else {
                noise
            }
        })
        .collect();
    for model in [MicModel::Dynamic, MicModel::Ribbon] {
        let settings = MicSettings {
            model,
            in_z_ohms: 300.0,
        };
        let d = prepared(settings, fs).design;
        let reference = |with_flush: bool| {
            let mut out = Vec::with_capacity(len);
            let (mut st, mut hist, mut post) = ([[0.0f64; 4]; MAX_SECTIONS], [0.0; TAPS], [0.0; 2]);
            for (n, &x) in signal.iter().enumerate() {
                let mut v = x;
                for (s, st) in d.sections.iter().zip(st.iter_mut()) {
                    let [x1, x2, y1, y2] = *st;
                    let y = (((s[0] * v + s[1] * x1) + s[2] * x2) - s[4] * y2) - s[3] * y1;
                    *st = [v, x1, y, y1];
                    v = y;
                }
                hist.rotate_right(1);
                hist[0] = v;
                let mut acc = d.taps[0] * hist[0];
                for (tap, v) in d.taps[..d.n_taps].iter().zip(&hist).skip(1) {
                    acc += tap * v;
                }
                let y = (acc - 0.85 * 0.85 * post[1]) - 2.0 * 0.85 * post[0];
                post = [y, post[0]];
                out.push(y);
                if with_flush && (n + 1) % FLUSH_EVERY == 0 {
                    let flush = |v: &mut f64| {
                        if v.abs() < 1e-30 {
                            *v = 0.0
                        }
                    };
                    st.iter_mut().flatten().for_each(flush);
                    hist[..TAPS - 1].iter_mut().for_each(flush);
                    post.iter_mut().for_each(flush);
                }
            }
            out
        };
        let expected = reference(true);
        assert!(
            expected != reference(false),
            "{model:?}: the flush must change the output of this signal"
        );
        for block in [1, 7, 64, 100, 513, 6_000] {
            let mut stage = prepared(settings, fs);
            stage.isa = Isa::portable();
            let mut out = signal.clone();
            for c in out.chunks_mut(block) {
                stage.process(c);
            }
            let first = out
                .iter()
                .zip(&expected)
                .position(|(a, b)| a.to_bits() != b.to_bits());
            assert_eq!(first, None, "{model:?}, block {block}: first difference");
        }
    }
}
