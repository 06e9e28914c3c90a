//! Unit tests of the oversampler and its half-band designs.

use super::design::{
    fir_stopband_db, iir_halfband_response, iir_stopband_db, stage_transition, LIVE_STOPBAND_DB,
};
use super::iir::IIR_FLUSH_PERIOD;
use super::*;
use realfft::RealFftPlanner;

const FACTORS: [usize; 4] = [2, 4, 8, 16];
const QUALITIES: [Quality; 2] = [Quality::Live, Quality::High];

fn make(quality: Quality, factor: usize, fs: f64, max_block: usize) -> Oversampler {
    let mut os = Oversampler::new();
    os.prepare(&ProcessSpec::new(fs, max_block));
    os.configure(quality, factor);
    os
}

/// Deterministic white noise in [-1, 1) (xorshift), independent of std.
fn noise(len: usize, seed: u64) -> Vec<f64> {
    let mut s = seed | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 52) as f64 - 1.0
        })
        .collect()
}

/// Runs `input` through `os` in blocks of `block`, identity closure.
fn run(os: &mut Oversampler, input: &[f64], block: usize) -> Vec<f64> {
    let mut out = input.to_vec();
    for b in out.chunks_mut(block) {
        os.process(b, |_| {});
    }
    out
}

/// Runs with a soft non-linearity inside, so aliasing paths are exercised.
fn run_nl(os: &mut Oversampler, input: &[f64], block: usize) -> Vec<f64> {
    let mut out = input.to_vec();
    for b in out.chunks_mut(block) {
        os.process(b, |up| {
            for v in up.iter_mut() {
                *v = (1.5 * *v).tanh();
            }
        });
    }
    out
}

fn impulse_response(os: &mut Oversampler, len: usize) -> Vec<f64> {
    let mut x = vec![0.0; len];
    x[0] = 1.0;
    run(os, &x, 512)
}

/// Magnitude spectrum (not normalised) of `x` with a rectangular window.
fn spectrum(x: &[f64]) -> Vec<f64> {
    let mut planner = RealFftPlanner::<f64>::new();
    let fft = planner.plan_fft_forward(x.len());
    let mut input = x.to_vec();
    let mut out = fft.make_output_vec();
    fft.process(&mut input, &mut out).unwrap();
    out.iter().map(|c| c.norm()).collect()
}

fn db(x: f64) -> f64 {
    20.0 * x.max(1e-300).log10()
}

#[test]
fn factor_one_is_exact_identity() {
    for q in QUALITIES {
        let mut os = make(q, 1, 44_100.0, 256);
        assert_eq!(os.factor(), 1);
        assert_eq!(os.latency_samples(), 0);
        assert_eq!(latency_for(q, 1, 44_100.0), 0);
        let x = noise(1000, 7);
        let mut calls = 0;
        let mut y = x.clone();
        for b in y.chunks_mut(100) {
            os.process(b, |up| {
                calls += 1;
                assert_eq!(up.len(), 100);
            });
        }
        assert_eq!(calls, 10);
        assert_eq!(x, y);
    }
}

#[test]
fn closure_sees_oversampled_length_once() {
    for q in QUALITIES {
        for f in FACTORS {
            let mut os = make(q, f, 48_000.0, 64);
            let mut block = vec![0.1; 37];
            let mut seen = Vec::new();
            os.process(&mut block, |up| seen.push(up.len()));
            assert_eq!(seen, vec![37 * f]);
        }
    }
}

/// The ideal oversampler with an identity closure is a pure delay: unity
/// gain from 20 Hz to 20 kHz, within +-0.05 dB.
#[test]
fn passband_flat_to_20k_at_44k1() {
    let fs = 44_100.0;
    let n = 16_384;
    for q in QUALITIES {
        for f in FACTORS {
            let mut os = make(q, f, fs, 512);
            let h = impulse_response(&mut os, n);
            let mag = spectrum(&h);
            let mut worst: f64 = 0.0;
            for (bin, &m) in mag.iter().enumerate() {
                let hz = bin as f64 * fs / n as f64;
                if (20.0..=20_000.0).contains(&hz) {
                    worst = worst.max(db(m).abs());
                }
            }
            assert!(worst <= 0.05, "{q:?} x{f}: passband deviation {worst} dB");
        }
    }
}

/// `response()` agrees with the FFT of the measured impulse response.
#[test]
fn response_matches_measurement() {
    let fs = 48_000.0;
    let n = 8192;
    for q in QUALITIES {
        let mut os = make(q, 4, fs, 512);
        let h = impulse_response(&mut os, n);
        for &hz in &[100.0, 1_000.0, 10_000.0, 19_000.0] {
            let w = 2.0 * PI * hz / fs;
            let measured: Complex<f64> = h
                .iter()
                .enumerate()
                .map(|(i, &v)| Complex::from_polar(v, -w * i as f64))
                .sum();
            let model = os.response(hz);
            assert!(
                (measured - model).norm() < 1e-5,
                "{q:?} {hz} Hz: {measured} vs {model}"
            );
        }
    }
}

/// Group delay `Re(DTFT(n h[n]) / DTFT(h[n]))` of the measured impulse
/// response at 100 Hz and 1 kHz equals the reported live latency.
#[test]
fn live_group_delay_equals_latency() {
    for &fs in &[44_100.0, 48_000.0, 96_000.0] {
        for f in FACTORS {
            let mut os = make(Quality::Live, f, fs, 512);
            let lat = os.latency_samples() as f64;
            assert_eq!(os.latency_samples(), latency_for(Quality::Live, f, fs));
            let h = impulse_response(&mut os, 8192);
            for &hz in &[100.0, 1_000.0] {
                let w = 2.0 * PI * hz / fs;
                let (mut num, mut den) = (Complex::new(0.0, 0.0), Complex::new(0.0, 0.0));
                for (i, &v) in h.iter().enumerate() {
                    let e = Complex::from_polar(v, -w * i as f64);
                    den += e;
                    num += e * i as f64;
                }
                let tau = (num / den).re;
                assert!(
                    (tau - lat).abs() < 0.05,
                    "fs {fs} x{f} {hz} Hz: group delay {tau} vs latency {lat}"
                );
            }
        }
    }
}

/// The live latency target of the preamp issue: <= 16 samples at 48 kHz, 4x.
#[test]
fn live_latency_budget() {
    assert!(latency_for(Quality::Live, 4, 48_000.0) <= 16);
    assert!(latency_for(Quality::Live, 8, 48_000.0) <= 16);
}

/// A symmetric, DC-free band-limited click (100 Hz..15 kHz windowed-sinc
/// band-pass) peaks at its centre; through the linear-phase path it must
/// peak exactly `latency_samples()` later.
#[test]
fn high_click_peak_lands_at_latency() {
    let fs = 44_100.0;
    let centre = 300usize;
    let half = 256isize;
    let (f1, f2) = (100.0 / fs, 15_000.0 / fs);
    let mut x = vec![0.0; 2048];
    for m in -half..=half {
        let t = m as f64;
        let sinc = |fc: f64| {
            if m == 0 {
                2.0 * fc
            } else {
                (2.0 * PI * fc * t).sin() / (PI * t)
            }
        };
        let win = 0.5 + 0.5 * (PI * t / (half as f64 + 1.0)).cos();
        x[(centre as isize + m) as usize] = (sinc(f2) - sinc(f1)) * win;
    }
    // Remove the residual DC with a scaled copy of the (symmetric) window.
    let dc: f64 = x.iter().sum();
    let win_sum: f64 = (-half..=half)
        .map(|m| 0.5 + 0.5 * (PI * m as f64 / (half as f64 + 1.0)).cos())
        .sum();
    for m in -half..=half {
        let win = 0.5 + 0.5 * (PI * m as f64 / (half as f64 + 1.0)).cos();
        x[(centre as isize + m) as usize] -= dc / win_sum * win;
    }
    assert!(x.iter().sum::<f64>().abs() < 1e-12);
    for f in FACTORS {
        let mut os = make(Quality::High, f, fs, 512);
        let y = run(&mut os, &x, 100);
        let peak = y
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .unwrap()
            .0;
        assert_eq!(peak, centre + os.latency_samples(), "x{f}");
    }
}

/// A 1 kHz sine comes out as the same sine delayed by exactly the latency,
/// with an error below -100 dB.
#[test]
fn high_sine_delayed_by_latency() {
    for &fs in &[44_100.0, 48_000.0, 96_000.0] {
        for f in FACTORS {
            let mut os = make(Quality::High, f, fs, 512);
            let lat = os.latency_samples();
            assert_eq!(lat, latency_for(Quality::High, f, fs));
            let w = 2.0 * PI * 1_000.0 / fs;
            let x: Vec<f64> = (0..6000).map(|i| (w * i as f64).sin()).collect();
            let y = run(&mut os, &x, 333);
            let (mut err, mut sig) = (0.0, 0.0);
            for (i, &v) in y.iter().enumerate().skip(2000) {
                let want = (w * (i - lat) as f64).sin();
                err += (v - want) * (v - want);
                sig += want * want;
            }
            let e = 10.0 * (err / sig).log10();
            assert!(e < -100.0, "fs {fs} x{f}: error {e} dB");
        }
    }
}

/// A tone written by the closure above the host Nyquist frequency, at a
/// frequency that folds into 0..20 kHz, is rejected by >= 100 dB (live)
/// and >= 120 dB (high) after decimation.
#[test]
fn stopband_rejects_tones_written_inside() {
    let fs = 44_100.0;
    for q in QUALITIES {
        let need = if q == Quality::Live { 100.0 } else { 120.0 };
        for f in FACTORS {
            // Folding into 0..20 kHz from the first stage's stopband, and
            // for higher factors from around multiples of fs.
            let mut tones = vec![24_200.0, 30_000.0, 40_000.0, 44_000.0];
            if f >= 4 {
                tones.extend([2.0 * fs - 10_000.0, 2.0 * fs + 15_000.0]);
            }
            if f >= 8 {
                tones.push(4.0 * fs - 5_000.0);
            }
            if f >= 16 {
                tones.push(7.0 * fs + 3_000.0);
            }
            for &ft in &tones {
                let mut os = make(q, f, fs, 512);
                let w = 2.0 * PI * ft / (fs * f as f64);
                let mut t = 0usize;
                let mut y = vec![0.0; 8192];
                for b in y.chunks_mut(512) {
                    os.process(b, |up| {
                        for v in up.iter_mut() {
                            *v = (w * t as f64).sin();
                            t += 1;
                        }
                    });
                }
                let tail = &y[4096..];
                let rms = (tail.iter().map(|v| v * v).sum::<f64>() / tail.len() as f64).sqrt();
                let rejection = -db(rms / 0.5f64.sqrt());
                assert!(
                    rejection >= need,
                    "{q:?} x{f} tone {ft} Hz: rejection {rejection:.1} dB"
                );
            }
        }
    }
}

/// A 10 kHz host-rate sine upsampled: the images at k fs +- 10 kHz in the
/// oversampled buffer are >= 100 dB (live) / 120 dB (high) below the tone.
#[test]
fn images_rejected_in_upsampled_signal() {
    let fs = 44_100.0;
    let nh = 4096usize;
    let bin = 929usize; // 929 fs / 4096 = 10001.9 Hz, exactly on a bin
    let w = 2.0 * PI * bin as f64 / nh as f64;
    for q in QUALITIES {
        let need = if q == Quality::Live { 100.0 } else { 120.0 };
        for f in FACTORS {
            let mut os = make(q, f, fs, nh);
            let mut captured = Vec::new();
            for round in 0..3 {
                let mut x: Vec<f64> = (0..nh)
                    .map(|i| (w * (i + round * nh) as f64).sin())
                    .collect();
                os.process(&mut x, |up| {
                    if round == 2 {
                        captured = up.to_vec();
                    }
                });
            }
            let mag = spectrum(&captured);
            let tone = mag[bin];
            let mut worst = f64::NEG_INFINITY;
            for k in 1..=f / 2 {
                for image in [k * nh - bin, k * nh + bin] {
                    if image < mag.len() {
                        worst = worst.max(db(mag[image] / tone));
                    }
                }
            }
            assert!(worst <= -need, "{q:?} x{f}: image at {worst:.1} dB");
        }
    }
}

#[test]
fn block_size_invariance() {
    let x = noise(8192, 99);
    for q in QUALITIES {
        for f in [2, 4, 16] {
            let mut reference = None;
            for bs in [1, 7, 64, 513, 4096] {
                let mut os = make(q, f, 48_000.0, 4096);
                let y = run_nl(&mut os, &x, bs);
                match &reference {
                    None => reference = Some(y),
                    Some(r) => assert!(r == &y, "{q:?} x{f} block {bs} differs"),
                }
            }
        }
    }
}

/// A stereo pair through `upsample_pair`/`downsample_pair` (the fused
/// two-channel loops for live 4x) gives each channel bit for bit what
/// `process` gives it alone, in the portable build and, where the CPU has
/// it, the AVX2 + FMA build (forced here, so both run on every machine
/// that can).
#[test]
fn pair_matches_each_channel_alone() {
    let (xa, xb) = (noise(3000, 11), noise(3000, 12));
    let nl = |up: &mut [f64]| up.iter_mut().for_each(|v| *v = (1.5 * *v).tanh());
    for isa in crate::dsp::Isa::all_available() {
        for q in QUALITIES {
            for f in [2, 4, 8] {
                let mut os: [Oversampler; 4] = std::array::from_fn(|_| make(q, f, 44_100.0, 256));
                os.iter_mut().for_each(|o| o.isa = isa);
                let (mut ya, mut yb) = (xa.clone(), xb.clone());
                let (mut za, mut zb) = (xa.clone(), xb.clone());
                let mut start = 0;
                for bs in [1, 7, 64, 256, 100].into_iter().cycle() {
                    if start >= xa.len() {
                        break;
                    }
                    let r = start..(start + bs).min(xa.len());
                    start = r.end;
                    os[0].process(&mut ya[r.clone()], nl);
                    os[1].process(&mut yb[r.clone()], nl);
                    let [_, _, a, b] = &mut os;
                    Oversampler::upsample_pair(a, b, &za[r.clone()], &zb[r.clone()]);
                    nl(a.oversampled());
                    nl(b.oversampled());
                    Oversampler::downsample_pair(a, b, &mut za[r.clone()], &mut zb[r]);
                }
                assert!(ya == za && yb == zb, "{q:?} x{f} {}", isa.name());
            }
        }
    }
}

#[test]
fn reset_gives_bit_identical_output() {
    let x = noise(3000, 5);
    for q in QUALITIES {
        for f in FACTORS {
            let mut os = make(q, f, 44_100.0, 256);
            let a = run_nl(&mut os, &x, 100);
            os.reset();
            let b = run_nl(&mut os, &x, 100);
            assert!(a == b, "{q:?} x{f}");
        }
    }
}

#[test]
fn silence_in_silence_out() {
    for q in QUALITIES {
        for f in FACTORS {
            let mut os = make(q, f, 48_000.0, 256);
            let y = run_nl(&mut os, &[0.0; 2000], 256);
            assert!(y.iter().all(|&v| v == 0.0), "{q:?} x{f}");
        }
    }
}

/// NaN from the closure or from the input never leaves the oversampler,
/// the state heals by itself, and after `reset()` output matches a fresh
/// instance bit for bit.
#[test]
fn non_finite_values_are_contained() {
    let x = noise(1024, 3);
    for q in QUALITIES {
        for f in FACTORS {
            let mut os = make(q, f, 48_000.0, 128);
            for (i, b) in x.clone().chunks_mut(128).enumerate() {
                os.process(b, |up| {
                    if i == 2 {
                        up[5] = f64::NAN;
                        up[up.len() - 1] = f64::INFINITY;
                    }
                });
                assert!(b.iter().all(|v| v.is_finite()), "{q:?} x{f} block {i}");
            }
            // Healed automatically: a later block is finite and non-zero.
            let mut later = x[..128].to_vec();
            os.process(&mut later, |_| {});
            assert!(later.iter().all(|v| v.is_finite()));
            let mut bad = vec![f64::NAN, f64::INFINITY, 1e300, -1e300];
            os.process(&mut bad, |_| {});
            assert!(bad.iter().all(|v| v.is_finite()));
            os.reset();
            let a = run(&mut os, &x, 128);
            let mut fresh = make(q, f, 48_000.0, 128);
            let b = run(&mut fresh, &x, 128);
            assert!(a == b, "{q:?} x{f}");
        }
    }
}

/// After an impulse and a long silence, no filter state is subnormal and
/// the output has decayed to exact zero.
#[test]
fn decaying_tails_reach_exact_zero() {
    for q in QUALITIES {
        for f in FACTORS {
            let mut os = make(q, f, 48_000.0, 512);
            let mut x = vec![0.0; 512];
            x[0] = 1.0;
            os.process(&mut x, |_| {});
            let mut last = vec![1.0; 512];
            for _ in 0..120 {
                last.fill(0.0);
                os.process(&mut last, |_| {});
                for s in &os.iir {
                    for l in s.up.s.iter().chain(s.down.s.iter()) {
                        assert!(!l.0[0].is_subnormal() && !l.0[1].is_subnormal());
                    }
                }
            }
            assert!(last.iter().all(|&v| v == 0.0), "{q:?} x{f}");
            for s in &os.iir {
                assert!(s
                    .up
                    .s
                    .iter()
                    .chain(s.down.s.iter())
                    .all(|l| l.0 == [0.0, 0.0]));
            }
        }
    }
}

/// `configure` only re-plans: every buffer keeps its address and length.
#[test]
fn configure_reuses_preallocated_buffers() {
    let mut os = make(Quality::Live, 2, 44_100.0, 1024);
    let ptrs = |os: &Oversampler| {
        let mut v = vec![(os.buf_a.as_ptr() as usize, os.buf_a.len())];
        v.push((os.buf_b.as_ptr() as usize, os.buf_b.len()));
        for s in &os.fir {
            for b in [&s.up_buf, &s.scratch, &s.down_even, &s.down_odd] {
                v.push((b.as_ptr() as usize, b.len()));
            }
        }
        v
    };
    let before = ptrs(&os);
    let mut x = noise(1024, 1);
    for q in QUALITIES {
        for f in [1, 2, 4, 8, 16, 4, 2] {
            os.configure(q, f);
            assert_eq!(os.quality(), q);
            assert_eq!(os.factor(), f);
            assert_eq!(os.latency_samples(), latency_for(q, f, 44_100.0));
            os.process(&mut x, |_| {});
            assert_eq!(ptrs(&os), before);
        }
    }
}

/// The bound `IIR_FLUSH_PERIOD` relies on: no live section decays
/// faster than by 0.02 per sample, so a state above `FLUSH_BELOW` at one
/// flush is far from denormal at the next.
#[test]
fn live_sections_decay_slowly_enough_for_the_flush_period() {
    let mut slowest = f64::INFINITY;
    for &fs in &[22_050.0, 44_100.0, 48_000.0, 96_000.0, 192_000.0, 384_000.0] {
        let d = Designs::new(fs);
        for k in 0..MAX_STAGES {
            for &a in &d.iir[k].coefs[..d.iir[k].count] {
                slowest = slowest.min(a.abs());
            }
        }
    }
    assert!(slowest >= 0.02, "smallest coefficient {slowest}");
    let worst = FLUSH_BELOW * slowest.powi(IIR_FLUSH_PERIOD as i32);
    assert!(worst > 1e-300, "{worst:e}");
}

/// Each stage meets its stopband target on a dense grid, and the live
/// and high half-bands are real half-bands: H(w) + H(pi - w) = 1 for the
/// FIR (zero phase), and |H|^2 + |H(pi - w)|^2 = 1 for the IIR (power
/// complementary).
#[test]
fn stage_designs_meet_targets() {
    for &fs in &[44_100.0, 48_000.0, 96_000.0, 192_000.0] {
        let d = Designs::new(fs);
        for k in 0..MAX_STAGES {
            let tbw = stage_transition(fs, k + 1);
            assert!(iir_stopband_db(&d.iir[k], tbw) <= -LIVE_STOPBAND_DB);
            assert!(fir_stopband_db(&d.fir[k], tbw) <= -120.0);
            for i in 1..50 {
                let w = PI * i as f64 / 50.0;
                let (a, b) = (d.fir[k].amplitude(w), d.fir[k].amplitude(PI - w));
                assert!((a + b - 1.0).abs() < 1e-12);
                let (a, b) = (
                    iir_halfband_response(&d.iir[k], w).norm_sqr(),
                    iir_halfband_response(&d.iir[k], PI - w).norm_sqr(),
                );
                assert!((a + b - 1.0).abs() < 1e-9);
            }
        }
    }
    // The 44.1 kHz first stage spans exactly 20 kHz -> 24.1 kHz.
    assert!((stage_transition(44_100.0, 1) - 4_100.0 / 88_200.0).abs() < 1e-12);
}
