//! The bias recovery of the wired preamp (`preamp_wired.cir`) after a
//! burst that drives stage 2 into grid current: its cathode and its grid's
//! DC voltage, through the burst and back to rest.
//!
//! # What happens
//!
//! Under drive stage 2's grid conducts on the positive peaks: the grid
//! current charges the coupling capacitor Cc2 (47 nF) through the small
//! source resistance (plate 1's Ra ‖ rp and the pot's upper part) and the
//! grid's mean voltage goes negative; it discharges through the grid leak
//! (the 1 MΩ pot) when the burst stops: τ ≈ Cc2·(Rpot + Ra‖rp) ≈ 49 ms.
//! The plate current, rectified by the curve, raises the cathode's mean
//! voltage on Rk2 ‖ Ck2 (1.5 kΩ ‖ 22 µF); it falls back with the cathode
//! capacitor against Rk2 ‖ (the cathode's own resistance, ≈ (Ra + rp)/(μ + 1)),
//! shorter than Rk2·Ck2 = 33 ms, and pulled along by the grid's recovery.
//!
//! # Measured
//!
//! Each quantity is averaged over each 1 ms (one period of the 1 kHz
//! burst), from the trace resampled at 48 kHz. [`Recovery`] gives the
//! level at rest (the DC operating point), the mean over the burst's last
//! period, the mean over the first silent period (a clipped wave has a mean
//! of its own, which goes with the burst; the charges stay), and the
//! recovery's time constant from there: the time to 1/e of that deviation
//! and a log-linear least-squares fit down to 10 % of it. The model
//! ([`model_recovery`]) is measured the same way; its time constants must
//! be within 10 % of ngspice's.

use super::measure::FS;
use super::ngspice::Deck;
use tubeline::dsp::tube::{Preamp, PreampSettings, TubeType};
use tubeline::dsp::ProcessSpec;

/// The burst: a 1 kHz sine for `BURST_S`, then silence to `STOP_S`.
pub const BURST_S: f64 = 0.1;
/// End of the run.
pub const STOP_S: f64 = 0.4;
/// Averaging length: one period of the burst (1 ms at 48 kHz).
const AVG: usize = 48;

/// A level's recovery after the burst.
#[derive(Clone, Copy, Debug)]
pub struct Recovery {
    /// At rest (the operating point), V.
    pub rest: f64,
    /// Mean over the burst's last period, V.
    pub driven: f64,
    /// Mean over the first silent period after the burst, V: the charges
    /// left without the clipped wave's own mean.
    pub released: f64,
    /// From the first silent period to 1/e of its deviation from rest, s.
    pub tau_1e_s: f64,
    /// Log-linear least-squares fit of that deviation from 100 % down to
    /// 10 %, s.
    pub tau_fit_s: f64,
}

/// Stage 2's cathode and grid through a burst and its recovery.
#[derive(Clone, Copy, Debug)]
pub struct BiasRecovery {
    /// Cathode 2 (node `k2`).
    pub cathode: Recovery,
    /// Grid 2, the pot's wiper (node `g2`), its mean.
    pub grid: Recovery,
}

/// Run the burst (`amp_volts` peak at the mic input, 1 kHz, from t = 0 for
/// [`BURST_S`]) through the wired netlist with tube index `tube`, Gain and
/// Level in dB.
pub fn recovery(tube: usize, gain_db: f64, level_db: f64, amp_volts: f64) -> BiasRecovery {
    let deck = Deck {
        netlist: "preamp_wired.cir",
        params: vec![
            ("tube", tube as f64),
            ("gain", gain_db),
            ("level", level_db),
        ],
        // 100 whole periods: the burst ends at a zero crossing.
        source: format!(
            "Bsig vin 0 V = time < {BURST_S} ? {amp_volts:.12e}*sin(2*pi*1000*time) : 0"
        ),
        t_start: 0.0,
        t_stop: STOP_S,
        t_max: 1.0 / (4.0 * FS),
        probes: vec!["v(k2)", "v(g2)"],
    };
    let tr = deck.run();
    let series = |col: usize| {
        let n = ((STOP_S - 1e-4) * FS) as usize / AVG * AVG;
        fit(tr.cols[col][0], &tr.resample(col, 0.0, FS, n))
    };
    BiasRecovery {
        cathode: series(0),
        grid: series(1),
    }
}

/// The same burst through the model (`tube::Preamp` at 192 kHz, as the
/// chain runs it): stage 2's cathode voltage and its grid's DC shift (the
/// interstage capacitor's charge at the wiper), read at 48 kHz.
pub fn model_recovery(tube: TubeType, gain_db: f64, level_db: f64, amp_volts: f64) -> BiasRecovery {
    let os = 4;
    let mut p = Preamp::new();
    p.set_settings(PreampSettings {
        gain_db,
        level_db,
        tube,
        ..PreampSettings::default()
    });
    p.prepare(&ProcessSpec::new(FS * os as f64, os));
    let n = ((STOP_S - 1e-4) * FS) as usize / AVG * AVG;
    let (mut k, mut g) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (rest_k, rest_g) = (p.cathode_volts()[1], p.grid_bias_volts()[1]);
    for i in 0..n {
        let mut block: Vec<f64> = (0..os)
            .map(|j| {
                let t = (i * os + j) as f64 / (FS * os as f64);
                if t < BURST_S {
                    amp_volts * (2.0 * std::f64::consts::PI * 1000.0 * t).sin()
                } else {
                    0.0
                }
            })
            .collect();
        p.process(&mut block);
        k.push(p.cathode_volts()[1]);
        g.push(p.grid_bias_volts()[1]);
    }
    BiasRecovery {
        cathode: fit(rest_k, &k),
        grid: fit(rest_g, &g),
    }
}

/// Per-period means of `y` (sampled at `FS`): (centre times, means).
fn means(y: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let m: Vec<f64> = y
        .chunks(AVG)
        .map(|c| c.iter().sum::<f64>() / AVG as f64)
        .collect();
    let t = (0..m.len())
        .map(|i| (i as f64 + 0.5) * AVG as f64 / FS)
        .collect();
    (t, m)
}

/// The recovery of `y` (sampled at `FS` from t = 0) from its value at
/// rest `rest`.
fn fit(rest: f64, y: &[f64]) -> Recovery {
    let (t, m) = means(y);
    let end = t.iter().position(|&x| x > BURST_S).expect("burst end");
    let driven = m[end - 1];
    // The first silent period: the waveform's own mean (the asymmetry of a
    // clipped wave) has gone with the burst, the charges are left.
    let released = m[end];
    let d0 = released - rest;
    // Deviation relative to that, from the end of the burst on.
    let rel: Vec<(f64, f64)> = (end..m.len())
        .map(|i| (t[i] - BURST_S, (m[i] - rest) / d0))
        .collect();
    let e = (-1.0f64).exp();
    let tau_1e_s = rel.windows(2).find(|w| w[1].1 <= e).map_or(f64::NAN, |w| {
        // Linear between the two means that straddle 1/e, then back to
        // the burst's end from the first silent period's centre.
        let f = (w[0].1 - e) / (w[0].1 - w[1].1);
        w[0].0 + f * (w[1].0 - w[0].0) - rel[0].0
    });
    let pts: Vec<(f64, f64)> = rel
        .iter()
        .take_while(|p| p.1 > 0.1)
        .map(|&(x, r)| (x, r.ln()))
        .collect();
    let tau_fit_s = if pts.len() >= 3 {
        let n = pts.len() as f64;
        let (sx, sy) = pts.iter().fold((0.0, 0.0), |a, p| (a.0 + p.0, a.1 + p.1));
        let (mx, my) = (sx / n, sy / n);
        let (sxy, sxx) = pts.iter().fold((0.0, 0.0), |a, p| {
            (a.0 + (p.0 - mx) * (p.1 - my), a.1 + (p.0 - mx) * (p.0 - mx))
        });
        -sxx / sxy
    } else {
        f64::NAN
    };
    Recovery {
        rest,
        driven,
        released,
        tau_1e_s,
        tau_fit_s,
    }
}
