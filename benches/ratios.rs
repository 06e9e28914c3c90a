//! Issue #16's CPU ratios, measured so that a noisy machine cannot skew
//! them: the live tube chain, the solid-state chain and the dynamic mic +
//! input transformer chain each render one second of stereo 48 kHz noise in
//! turn, round after round (the order rotating), and each round gives one
//! ratio per chain against the tube chain of the same round. A slow minute
//! slows all three alike, so the per-round ratios stay put where the
//! separate criterion figures of `chain` wander by 10–25 % between runs.
//!
//! `cargo bench --bench ratios` (rounds: `TUBELINE_RATIO_ROUNDS`, default
//! 200). Prints each chain's min / median time and real-time factor, and
//! each ratio's median with its quartiles. Targets (issue #16, item 7): the
//! solid-state chain at most 0.5× the tube chain; mic loading plus the
//! input transformer at most 1.15×.

mod common;

use common::{dynamic_mic_xfmr, preamp_live, prepared, process, signal, solid_state, RATE};
use std::hint::black_box;
use std::time::Instant;
use tubeline::dsp::chain::ChainSettings;

/// `v` sorted, for [`quantile`].
fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// The value at quantile `q` (0…1) of the sorted `v`.
fn quantile(v: &[f64], q: f64) -> f64 {
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    // `cargo bench` passes `--bench`; under `cargo test` (a debug build)
    // two rounds check that it runs, and the figures mean nothing.
    let benching = std::env::args().any(|a| a == "--bench");
    let rounds: usize = if benching {
        std::env::var("TUBELINE_RATIO_ROUNDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(200)
    } else {
        2
    };
    let configs: [(&str, ChainSettings, Option<f64>); 3] = [
        ("tube (preamp_live)", preamp_live(), None),
        ("solid state", solid_state(), Some(0.5)),
        (
            "dynamic mic + input transformer",
            dynamic_mic_xfmr(),
            Some(1.15),
        ),
    ];
    let input = signal(RATE as usize);
    let mut chains: Vec<_> = configs.iter().map(|c| prepared(c.1)).collect();
    let mut buf = input.clone();
    let mut seconds = vec![Vec::with_capacity(rounds); configs.len()];
    // Two unrecorded rounds warm caches and branch predictors.
    for round in 0..rounds + 2 {
        for k in 0..configs.len() {
            let i = (round + k) % configs.len();
            let t = Instant::now();
            process(&mut chains[i], &mut buf, &input);
            black_box(&buf);
            if round >= 2 {
                seconds[i].push(t.elapsed().as_secs_f64());
            }
        }
    }
    println!("{rounds} rounds, one second of stereo 48 kHz per chain per round");
    if !benching {
        println!("(not under `cargo bench`: a smoke run, not a measurement)");
    }
    for (i, (name, _, target)) in configs.iter().enumerate() {
        let t = sorted(seconds[i].clone());
        let (min, med) = (quantile(&t, 0.0), quantile(&t, 0.5));
        print!(
            "{name:>32}: {:.2} / {:.2} ms (min / median), {:.0}× / {:.0}× real time",
            min * 1e3,
            med * 1e3,
            1.0 / min,
            1.0 / med
        );
        if let Some(target) = target {
            let r = sorted(
                seconds[i]
                    .iter()
                    .zip(&seconds[0])
                    .map(|(a, b)| a / b)
                    .collect(),
            );
            print!(
                "; ratio to tube {:.3} (quartiles {:.3}…{:.3}; target ≤ {target})",
                quantile(&r, 0.5),
                quantile(&r, 0.25),
                quantile(&r, 0.75)
            );
        }
        println!();
    }
}
