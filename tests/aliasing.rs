//! Aliasing of the tube preamp through the whole chain (issue 3's method): a
//! 7 kHz sine at 48 kHz, Gain set so a 1 kHz sine of the same level has 10 %
//! THD; every bit of power that is not the fundamental or one of its
//! harmonics, relative to the fundamental, in the fifth second of the tone
//! (once the bias has settled: `SETTLE_S`); and the same measure across the
//! Gain range (Level −20) against issue #18's targets, with today's
//! shortfalls on record. Also: the latency reported equals
//! the measured one, and the live latency is at most 16 samples at 48 kHz.

mod util;

use tubeline::dsp::chain::{ChainSettings, Source};
use tubeline::dsp::oversampling::Quality;
use tubeline::dsp::tube::{Preamp, PreampSettings};
use tubeline::dsp::ProcessSpec;
use util::*;

const SR: f64 = 48_000.0;
/// One second: a whole number of cycles of 1 kHz and of 7 kHz.
const N: usize = 48_000;
/// Input level: a track at −18 dBFS peak standing for a mic.
const AMP: f64 = 0.125_892_541; // −18 dBFS

fn settings(gain_db: f64, quality: Quality) -> ChainSettings {
    ChainSettings {
        source: Source::Mic,
        pre_on: true,
        auto_gain: false,
        quality,
        preamp: PreampSettings {
            gain_db,
            ..PreampSettings::default()
        },
        ..ChainSettings::default()
    }
}

/// Seconds rendered before the analysed second of an aliasing measure.
/// Driven into grid current, stage 2's bias (the coupling capacitor charged
/// through the grid, the cathode's bypass capacitor) takes seconds to settle
/// to its last 1e-5: after one second the settling tail still reads about
/// −97 dB re the fundamental, all of it below 10 Hz (High, Gain 60). That is
/// the circuit's own bias recovery, not aliasing (aliases of 7 kHz at 48 kHz
/// land on whole kHz), so the measure waits until it has settled: after four
/// seconds what is left off the whole-kHz bins is below −300 dB.
const SETTLE_S: usize = 4;

/// The last second of `warm_s` + 1 seconds of `freq` through the chain.
fn steady_after(warm_s: usize, freq: f64, s: ChainSettings) -> Vec<f32> {
    let input = vec![sine(freq, AMP, SR, (warm_s + 1) * N)];
    let (out, _) = run_chain(s, &input, SR, 512);
    out[0][warm_s * N..].to_vec()
}

/// The second after one second of `freq` through the chain (enough for THD).
fn steady(freq: f64, s: ChainSettings) -> Vec<f32> {
    steady_after(1, freq, s)
}

/// The settled second of the 7 kHz tone through the chain.
fn settled_7k(s: ChainSettings) -> Vec<f32> {
    steady_after(SETTLE_S, 7000.0, s)
}

/// The Gain (dB) that gives 10 % THD at 1 kHz, by bisection.
fn gain_for_ten_percent(quality: Quality) -> f64 {
    let (mut lo, mut hi) = (0.0, 60.0);
    for _ in 0..14 {
        let mid = 0.5 * (lo + hi);
        if thd(&steady(1000.0, settings(mid, quality)), 1000) < 0.10 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Power not at DC, the fundamental or a harmonic, relative to the
/// fundamental, split in two: the part on whole kHz and the rest (the
/// one-second window gives 1 Hz bins). An output that repeats with the
/// 7 kHz tone at 48 kHz repeats every 48 samples (1 ms), so all of it lies
/// on whole kHz: every alias, and the f32 output's rounding too. What lies
/// elsewhere does not repeat: a bias still settling, noise. A figure whose
/// second part is near the first is not aliasing.
fn aliasing_parts(x: &[f32], fundamental_bin: usize) -> (f64, f64) {
    let s = spectrum(x);
    let p_fund = s[fundamental_bin].powi(2);
    let (mut on, mut off) = (0.0, 0.0);
    for (k, a) in s.iter().enumerate() {
        if k == 0 || k % fundamental_bin == 0 {
            continue;
        }
        if k % 1000 == 0 {
            on += a * a;
        } else {
            off += a * a;
        }
    }
    (on / p_fund, off / p_fund)
}

/// A power ratio in dB (−400 dB for nothing at all).
fn db(p: f64) -> f64 {
    10.0 * p.max(1e-40).log10()
}

/// Both parts of [`aliasing_parts`] together, in dB.
fn aliasing_db(x: &[f32], fundamental_bin: usize) -> f64 {
    let (on, off) = aliasing_parts(x, fundamental_bin);
    db(on + off)
}

#[test]
fn aliasing_is_below_target_in_both_qualities() {
    for (quality, target_db) in [(Quality::Live, -90.0), (Quality::High, -110.0)] {
        let gain = gain_for_ten_percent(quality);
        let thd_1k = thd(&steady(1000.0, settings(gain, quality)), 1000);
        assert!((thd_1k - 0.10).abs() < 0.005, "THD {thd_1k} at gain {gain}");
        let a = aliasing_db(&settled_7k(settings(gain, quality)), 7000);
        println!("{quality:?}: gain {gain:.2} dB for 10 % THD at 1 kHz; aliasing {a:.1} dB");
        assert!(
            a <= target_db,
            "{quality:?}: aliasing {a:.1} dB > {target_db} dB"
        );
    }
}

#[test]
fn reported_latency_is_the_measured_latency() {
    // A quiet 250 Hz sine through the preamp comes out delayed by the reported
    // latency plus the preamp's own phase delay at 250 Hz (its coupling
    // capacitors and Miller capacitance), which the stage's small-signal
    // response gives. What is left must be the reported latency.
    let freq = 250.0;
    let period = (SR / freq) as usize;
    for quality in [Quality::Live, Quality::High] {
        let s = settings(0.0, quality);
        let input = vec![sine(freq, 0.01, SR, N)];
        let (out, latency) = run_chain(s, &input, SR, 512);
        let y = &out[0][N / 2..];
        let corr = |lag: usize| -> f64 {
            y.iter()
                .zip(&input[0][N / 2 - lag..])
                .map(|(a, b)| f64::from(*a) * f64::from(*b))
                .sum()
        };
        // Search one period (192 samples: longer than any latency), refine
        // by a parabola.
        let c: Vec<f64> = (0..=period).map(corr).collect();
        let k = (1..period).max_by(|&a, &b| c[a].total_cmp(&c[b])).unwrap();
        let frac = 0.5 * (c[k - 1] - c[k + 1]) / (c[k - 1] - 2.0 * c[k] + c[k + 1]);
        let measured = k as f64 + frac;

        let mut pre = Preamp::new();
        let os_rate = SR * s.oversampling_factor() as f64;
        pre.prepare(&ProcessSpec::new(os_rate, 512));
        pre.set_settings(s.preamp);
        let phase = pre.small_signal_response(freq).arg();
        let preamp_delay = -phase / (std::f64::consts::TAU * freq) * SR;
        let chain_delay = measured - preamp_delay;
        println!(
            "{quality:?}: reported {latency}, measured {measured:.3} samples, \
             of which the preamp's phase delay {preamp_delay:.3}"
        );
        assert!(
            (chain_delay - latency as f64).abs() < 0.1,
            "{quality:?}: reported {latency}, measured {chain_delay:.3}"
        );
        if quality == Quality::Live {
            assert!(latency <= 16, "live latency {latency} > 16 samples");
        }
    }
}

/// Issue #18's targets across the Gain range (Level −20, 12AX7): Live
/// ≤ −90 dB, High ≤ −100 dB.
const RANGE_TARGETS_DB: [(Quality, f64); 2] = [(Quality::Live, -90.0), (Quality::High, -100.0)];

/// The Gains at which a quality misses its range target today, with what
/// it measured (dB): stage 2's grid-current knee under first-order ADAA at
/// Live's 4× (High at 16× meets −100 dB at every Gain: −104.5 dB at 60).
/// The test holds each within 1 dB of its figure and fails when one meets
/// the target (it must then leave this list).
const RANGE_SHORTFALLS_DB: [(Quality, u32, f64); 4] = [
    (Quality::Live, 45, -81.3),
    (Quality::Live, 50, -73.1),
    (Quality::Live, 55, -64.4),
    (Quality::Live, 60, -61.6),
];

#[test]
fn aliasing_across_the_gain_range() {
    let mut report = String::new();
    let mut bad = Vec::new();
    for (quality, target_db) in RANGE_TARGETS_DB {
        for g in (0..=60).step_by(5) {
            let x = settled_7k(settings(g as f64, quality));
            let (on, off) = aliasing_parts(&x, 7000);
            let a = db(on + off);
            report += &format!(
                "{quality:?} Gain {g}: {a:.1} dB (on whole kHz {:.1}, elsewhere {:.1})\n",
                db(on),
                db(off)
            );
            let known = RANGE_SHORTFALLS_DB
                .iter()
                .find(|k| k.0 == quality && k.1 == g)
                .map(|k| k.2);
            match known {
                None if a > target_db => bad.push(format!("{quality:?} Gain {g}: {a:.1} > {target_db} dB")),
                Some(was) if a > was + 1.0 => bad.push(format!("{quality:?} Gain {g}: {a:.1} dB, worse than the {was} dB on record")),
                Some(_) if a <= target_db => bad.push(format!("{quality:?} Gain {g}: {a:.1} dB meets {target_db} dB: take it off RANGE_SHORTFALLS_DB")),
                _ => {}
            }
        }
    }
    println!("{report}");
    assert!(bad.is_empty(), "{}\n{report}", bad.join("\n"));
}

#[test]
#[ignore = "measurement: prints aliasing across the Gain range"]
fn zz_aliasing_sweep() {
    for level_db in [-20.0, 0.0] {
        for quality in [Quality::Live, Quality::High] {
            let mut line = format!("Level {level_db} {quality:?}:");
            for g in (0..=60).step_by(5) {
                let mut s = settings(g as f64, quality);
                s.preamp.level_db = level_db;
                let a = aliasing_db(&settled_7k(s), 7000);
                line += &format!(" {g}:{a:.1}");
            }
            println!("{line}");
        }
    }
}
