//! Headphone amp with output impedance Zo driving a modelled headphone load.
//!
//! Circuit: an amplifier (Thevenin source: gain, then a voltage-swing limit)
//! with output resistance Zo, loaded by a headphone of impedance Z(f). The
//! headphone voltage is V * Z / (Z + Zo) = V / (1 + Zo * Y) with Y = 1/Z.
//! References: IEC 61938 (120 ohm outputs), the "1/8 rule" (Zo <= Z/8), the
//! lumped moving-coil model (Thiele/Small electrical analogue):
//! Z = Re + s Le + (1/Res + 1/(s Lces) + s Cmes)^-1,
//! Lces = Res / (w0 Q), Cmes = Q / (w0 Res).
//!
//! Discretisation (details in `headphone/fit.rs`). The admittance Y(s) is
//! bilinear-transformed into a positive-real cascade Y_b(z) of 1..3
//! biquads, and the stage solves the delay-free loop v = x - Zo * Y_b v
//! per sample (Y_b has a direct term b, so v = (x - Zo*o)/(1 + Zo*b) with
//! o the zero-input part of the cascade); the loop is stable for every
//! Zo >= 0. Its warping near the top of the band is removed by a
//! correction C(z) = N(z) / (1 + 0.85 z^-1)^2 with a 12-tap FIR N fitted
//! (complex weighted least squares, Lawson reweighting) so that
//! 1/(1 + Zo Y_b) * C = z^-4 Z/(Z + Zo) on 20 Hz..20 kHz only; 20 kHz to
//! Nyquist is left free. N is designed on 16 values of ln(1 + Zo)
//! (0..10 kohm) and interpolated linearly, so Zo is smoothed per sample
//! without redesign or clicks. The 4-sample latency is what makes the
//! fit exact: matching magnitude and phase up to 20 kHz at 44.1 kHz is
//! not reachable with a causal zero-latency filter of low order (the
//! exact correction is slightly two-sided in time; minimum-phase and
//! causal fits tried first stall at 0.1..0.6 dB). Measured from the
//! rendered impulse response (latency removed) against Z/(Z+Zo), all 7
//! loads, Zo in {0.1, 10, 33, 120, 600}, 20 Hz..20 kHz: 44.1 kHz 0.029 dB
//! / 0.23 deg, 48 kHz 0.019 dB / 0.13 deg, 96 kHz 0.005 dB / 0.03 deg.
//! Designing all loads takes ~6 ms per rate (`design_loads`, shareable
//! across channels with `prepare_with`). Switching loads crossfades
//! between two paths over 20 ms.
//!
//! Run time: the loop runs in closed-loop state-space form on the
//! cascade's own states (s' = (Ao - k bo co) s + bo x / (1 + Zo d), rebuilt
//! when Zo moves), with the states packed two per SIMD register and each
//! row summed as a tree, so the per-sample dependency chain is one
//! multiply and a few adds. With no parameter moving, a block is run in
//! chunks of 64: the loop for the chunk (the swing limit skipped when a
//! vectorised test shows the whole chunk below the knee), then the
//! correction FIR over the chunk vectorised across samples, while the
//! double pole and the voltage meter of a chunk run interleaved with the
//! next chunk's loop. Ramps and crossfades run the same arithmetic per
//! sample, so the output is bit-identical for any block partition. On
//! x86_64 CPUs with AVX the steady loop runs an AVX build of the same code
//! (no fused multiply-add, so the same bits). Measured at 48 kHz, 33 ohm,
//! 512-sample blocks, stereo (timed best of 300 runs, 2-core EPYC, busy):
//! 32 ohm closed-back 6.1..7.9 ns and IEM 8.0..8.3 ns per sample per
//! channel (>= 1000x real time; was 12.6 and 15.0), 88 and 114
//! instructions per sample per channel under callgrind (was 170 and 188).
//!
//! Custom (measured) loads use a minimum-phase FIR designed off the audio
//! thread from |Z/(Z+Zo)| on the curve (`headphone/custom.rs`), run with a
//! zero-latency partitioned convolution (then delayed 4 samples) and
//! handed over with `swap_custom`.
//!
//! The swing limit is a symmetric soft knee into the rail, applied to the
//! amplifier's internal voltage (before Zo), C2-continuous at the knee and
//! never above the rail (no oversampling: it runs at the host rate, so the
//! curve is gentle rather than hard).
//!
//! Latency: 4 samples at every rate (`latency_samples`), for every load;
//! the zero-latency custom FIR is delayed to match.
//! Units: volts in (amplifier input), volts out (across the headphone).

use super::ProcessSpec;
use num_complex::Complex;
use std::f64::consts::PI;

// Explicit paths so the file works both from `src/dsp.rs` and when included
// with `#[path]` (they resolve relative to this file's directory).
#[path = "headphone/custom.rs"]
mod custom;
#[path = "headphone/fit.rs"]
mod fit;
#[cfg(test)]
#[path = "headphone/tests.rs"]
mod tests;

pub use custom::{design_custom, parse_impedance_csv, CsvError, CustomFilter, ImpedanceCurve};

type C64 = Complex<f64>;

/// Amplifier output impedance presets for the editor and presets:
/// (name, ohms).
pub const AMP_Z_PRESETS: [(&str, f64); 5] = [
    ("Ideal", 0.1),
    ("Interface headphone out", 10.0),
    ("Consumer jack", 33.0),
    ("IEC 61938", 120.0),
    ("Preamp line out", 600.0),
];

/// Headphone loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadphoneModel {
    /// 32 ohm closed-back dynamic (portable / studio closed monitor class,
    /// e.g. ATH-M50x, HD 25): Re 32, Le 0.05 mH, Res 18, f0 70 Hz, Q 2
    /// (a 50 ohm peak at 70 Hz).
    Closed32,
    /// 80 ohm dynamic (DT 770/990 80 ohm class): Re 80, Le 0.15 mH,
    /// Res 120, f0 85 Hz, Q 2.2.
    Dynamic80,
    /// 250 ohm dynamic (DT 770/880/990 250 ohm class): Re 250, Le 0.5 mH,
    /// Res 300, f0 85 Hz, Q 2.
    Dynamic250,
    /// 300 ohm open-back dynamic (HD 600/650 class, DESIGN.md): Re 300,
    /// Le 0.3 mH, Res 300, f0 90 Hz, Q 2.
    Open300,
    /// 600 ohm dynamic (DT 880/990 600 ohm class): Re 600, Le 1 mH,
    /// Res 400, f0 80 Hz, Q 1.8.
    Dynamic600,
    /// Planar magnetic with a near-flat impedance (LCD / HE class):
    /// Re 25, Le 0.005 mH, Res 0.5, f0 40 Hz, Q 1.
    Planar,
    /// Multi-driver balanced-armature IEM whose impedance rises and swings
    /// with frequency (8 ohm in the bass, ~40 ohm in the top octave):
    /// woofer branch Re 8 + (1.2 mH || 60 ohm) + motional (Res 6, f0 1.5 kHz,
    /// Q 1.5), in parallel with a tweeter branch 3.3 uF + 50 ohm + 0.08 mH
    /// (crossover capacitor in series with the tweeter).
    Iem,
    /// A measured curve, loaded from CSV; its filter comes in through
    /// `swap_custom`. Until one is swapped in, the custom load is flat
    /// (unity gain).
    Custom,
}

/// The built-in models, in `HeadphoneModel` order (without `Custom`).
pub const BUILT_IN_MODELS: [HeadphoneModel; 7] = [
    HeadphoneModel::Closed32,
    HeadphoneModel::Dynamic80,
    HeadphoneModel::Dynamic250,
    HeadphoneModel::Open300,
    HeadphoneModel::Dynamic600,
    HeadphoneModel::Planar,
    HeadphoneModel::Iem,
];

/// Lumped moving-coil driver parameters.
#[derive(Clone, Copy, Debug)]
struct Driver {
    /// Voice-coil DC resistance, ohms.
    re_ohms: f64,
    /// Voice-coil inductance, henries.
    le_henries: f64,
    /// Height of the motional resonance peak above Re, ohms.
    res_ohms: f64,
    /// Resonance frequency.
    f0_hz: f64,
    /// Electrical quality factor of the resonance.
    q: f64,
}

impl Driver {
    const fn new(re_ohms: f64, le_mh: f64, res_ohms: f64, f0_hz: f64, q: f64) -> Self {
        Driver {
            re_ohms,
            le_henries: le_mh * 1e-3,
            res_ohms,
            f0_hz,
            q,
        }
    }
    fn lces_cmes(&self) -> (f64, f64) {
        let w0 = 2.0 * PI * self.f0_hz;
        (self.res_ohms / (w0 * self.q), self.q / (w0 * self.res_ohms))
    }
    fn z(&self, s: C64) -> C64 {
        let (l, c) = self.lces_cmes();
        let ym = 1.0 / self.res_ohms + 1.0 / (s * l) + s * c;
        self.re_ohms + s * self.le_henries + 1.0 / ym
    }
    fn rat(&self) -> fit::Rat {
        let (l, c) = self.lces_cmes();
        let motional = fit::Rat::resistor(self.res_ohms)
            .parallel(&fit::Rat::inductor(l))
            .parallel(&fit::Rat::capacitor(c));
        let mut r = fit::Rat::resistor(self.re_ohms).series(&motional);
        if self.le_henries > 0.0 {
            r = r.series(&fit::Rat::inductor(self.le_henries));
        }
        r
    }
}

const IEM_WOOFER: Driver = Driver::new(8.0, 0.0, 6.0, 1500.0, 1.5);
const IEM_WOOFER_L_H: f64 = 1.2e-3;
const IEM_WOOFER_LOSS_OHMS: f64 = 60.0;
const IEM_XOVER_F: f64 = 3.3e-6;
const IEM_TWEETER_OHMS: f64 = 50.0;
const IEM_TWEETER_L_H: f64 = 0.08e-3;

impl HeadphoneModel {
    fn driver(self) -> Option<Driver> {
        Some(match self {
            HeadphoneModel::Closed32 => Driver::new(32.0, 0.05, 18.0, 70.0, 2.0),
            HeadphoneModel::Dynamic80 => Driver::new(80.0, 0.15, 120.0, 85.0, 2.2),
            HeadphoneModel::Dynamic250 => Driver::new(250.0, 0.5, 300.0, 85.0, 2.0),
            HeadphoneModel::Open300 => Driver::new(300.0, 0.3, 300.0, 90.0, 2.0),
            HeadphoneModel::Dynamic600 => Driver::new(600.0, 1.0, 400.0, 80.0, 1.8),
            HeadphoneModel::Planar => Driver::new(25.0, 0.005, 0.5, 40.0, 1.0),
            HeadphoneModel::Iem | HeadphoneModel::Custom => return None,
        })
    }

    /// Rated (nominal) impedance used for the damping factor and the 1/8
    /// rule: Re for the dynamic and planar models, 8 ohm (the bass value)
    /// for the IEM. For `Custom`, use `ImpedanceCurve::nominal_ohms`.
    pub fn nominal_ohms(self) -> f64 {
        match self {
            HeadphoneModel::Iem => 8.0,
            HeadphoneModel::Custom => 32.0,
            m => m.driver().map_or(32.0, |d| d.re_ohms),
        }
    }

    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            HeadphoneModel::Closed32 => "32 ohm closed-back dynamic",
            HeadphoneModel::Dynamic80 => "80 ohm dynamic",
            HeadphoneModel::Dynamic250 => "250 ohm dynamic",
            HeadphoneModel::Open300 => "300 ohm open-back dynamic",
            HeadphoneModel::Dynamic600 => "600 ohm dynamic",
            HeadphoneModel::Planar => "Planar magnetic (flat)",
            HeadphoneModel::Iem => "Multi-BA in-ear monitor",
            HeadphoneModel::Custom => "Custom (measured)",
        }
    }

    /// Analog impedance Z(j 2 pi f) of the model, ohms. `Custom` returns a
    /// flat 32 ohm (use `ImpedanceCurve::impedance` instead).
    pub fn impedance(self, freq_hz: f64) -> C64 {
        let s = C64::new(0.0, 2.0 * PI * freq_hz);
        self.impedance_s(s)
    }

    fn impedance_s(self, s: C64) -> C64 {
        if let Some(d) = self.driver() {
            return d.z(s);
        }
        match self {
            HeadphoneModel::Iem => {
                let loss = s * IEM_WOOFER_L_H * IEM_WOOFER_LOSS_OHMS
                    / (s * IEM_WOOFER_L_H + IEM_WOOFER_LOSS_OHMS);
                let zw = IEM_WOOFER.z(s) + loss;
                let zt = 1.0 / (s * IEM_XOVER_F) + IEM_TWEETER_OHMS + s * IEM_TWEETER_L_H;
                zw * zt / (zw + zt)
            }
            _ => C64::new(32.0, 0.0),
        }
    }

    fn rat(self) -> fit::Rat {
        if let Some(d) = self.driver() {
            return d.rat();
        }
        let woofer = IEM_WOOFER.rat().series(
            &fit::Rat::inductor(IEM_WOOFER_L_H).parallel(&fit::Rat::resistor(IEM_WOOFER_LOSS_OHMS)),
        );
        let tweeter = fit::Rat::capacitor(IEM_XOVER_F)
            .series(&fit::Rat::resistor(IEM_TWEETER_OHMS))
            .series(&fit::Rat::inductor(IEM_TWEETER_L_H));
        woofer.parallel(&tweeter)
    }

    fn index(self) -> usize {
        BUILT_IN_MODELS.iter().position(|m| *m == self).unwrap_or(0)
    }
}

/// Settings of the headphone amp stage, in physical units.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HeadphoneSettings {
    /// Amplifier output impedance Zo, ohms (0 .. 10 000, clamped; smoothed
    /// per sample).
    pub amp_z_ohms: f64,
    /// Amplifier volume (gain before the swing limit), dB.
    pub volume_db: f64,
    /// Peak voltage swing of the amplifier (its rails), volts.
    pub swing_volts: f64,
    /// Headphone load.
    pub model: HeadphoneModel,
    /// Keep the 1 kHz level (divide by |H(1 kHz)|) while keeping the shape.
    pub normalize: bool,
}

impl Default for HeadphoneSettings {
    fn default() -> Self {
        HeadphoneSettings {
            amp_z_ohms: 0.1,
            volume_db: 0.0,
            swing_volts: 10.0,
            model: HeadphoneModel::Closed32,
            normalize: false,
        }
    }
}

/// Largest number of biquads of a load's loop admittance.
const MAX_SECTIONS: usize = 4;

use fit::{BETA, GRID, LATENCY, TAPS};

/// One built-in load designed at one sample rate.
#[derive(Clone, Copy, Debug)]
struct LoadDesign {
    /// Bilinear-transformed admittance Y_b(z) as biquads [b0, b1, b2, a1,
    /// a2], gain folded into the first; positive real, so the loop
    /// 1 / (1 + Zo Y_b) is stable for every Zo >= 0.
    sections: [[f64; 5]; MAX_SECTIONS],
    /// Number of sections in use.
    n: usize,
    /// Direct (instantaneous) gain of Y_b: the product of the b0s. The
    /// delay-free loop is solved with it.
    direct: f64,
    /// Correction FIR numerators, one per Zo grid point (uniform in
    /// ln(1 + Zo)); interpolated linearly at run time.
    taps: [[f64; TAPS]; GRID],
    /// Worst complex relative error of the correction fit on its points.
    fit_error: f64,
}

impl LoadDesign {
    fn flat() -> Self {
        let mut taps = [[0.0; TAPS]; GRID];
        for t in taps.iter_mut() {
            t[LATENCY] = 1.0;
            t[LATENCY + 1] = 2.0 * BETA;
            t[LATENCY + 2] = BETA * BETA;
        }
        LoadDesign {
            sections: [[1.0, 0.0, 0.0, 0.0, 0.0]; MAX_SECTIONS],
            n: 0,
            direct: 0.0,
            taps,
            fit_error: 0.0,
        }
    }

    fn design(model: HeadphoneModel, grid: &fit::FitGrid, fs: f64) -> LoadDesign {
        let secs = fit::bilinear_admittance(&model.rat(), fs);
        let (taps, fit_error) = fit::design_correction(grid, &secs, &|f| model.impedance(f));
        let mut sections = [[1.0, 0.0, 0.0, 0.0, 0.0]; MAX_SECTIONS];
        debug_assert!(secs.len() <= MAX_SECTIONS);
        let n = secs.len().min(MAX_SECTIONS);
        sections[..n].copy_from_slice(&secs[..n]);
        LoadDesign {
            sections,
            n,
            direct: sections[..n].iter().map(|s| s[0]).product(),
            taps,
            fit_error,
        }
    }

    /// Correction taps at u = ln(1 + Zo), interpolated on the grid.
    #[inline]
    fn taps_at(&self, u: f64, out: &mut [f64; TAPS]) {
        let x = (u.max(0.0) / fit::grid_u(1)).min((GRID - 1) as f64);
        let i = (x as usize).min(GRID - 2);
        let t = x - i as f64;
        let (lo, hi) = (&self.taps[i], &self.taps[i + 1]);
        for k in 0..TAPS {
            out[k] = lo[k] + t * (hi[k] - lo[k]);
        }
    }

    /// Digital response of the loop plus correction at `zo`, with the
    /// stage's latency removed (multiplied by e^{j w LATENCY}).
    fn response(&self, zo: f64, freq_hz: f64, fs: f64) -> C64 {
        if fs <= 0.0 {
            return C64::new(1.0, 0.0);
        }
        let w = 2.0 * PI * freq_hz / fs;
        let zi = C64::from_polar(1.0, -w);
        let y = fit::cascade(&self.sections[..self.n], zi);
        let mut taps = [0.0; TAPS];
        self.taps_at(zo.max(0.0).ln_1p(), &mut taps);
        let mut num = C64::new(0.0, 0.0);
        for t in taps.iter().rev() {
            num = num * zi + t;
        }
        let p = 1.0 + BETA * zi;
        num / (p * p) / (1.0 + zo * y) * C64::from_polar(1.0, w * LATENCY as f64)
    }
}

/// Every built-in load designed at one sample rate. Designing takes a few
/// ms; a chain designs once with `design_loads` and hands a clone to each
/// channel's `HeadphoneAmp::prepare_with`.
#[derive(Clone, Debug)]
pub struct LoadDesigns {
    /// Sample rate of the designs, Hz.
    sample_rate_hz: f64,
    /// One design per entry of `BUILT_IN_MODELS`.
    loads: Vec<LoadDesign>,
}

impl LoadDesigns {
    /// Sample rate the designs were made for, Hz.
    pub fn sample_rate_hz(&self) -> f64 {
        self.sample_rate_hz
    }
}

/// Designs every built-in load at `sample_rate` (allocates; a few ms).
pub fn design_loads(sample_rate: f64) -> LoadDesigns {
    let grid = fit::FitGrid::new(sample_rate);
    LoadDesigns {
        sample_rate_hz: sample_rate,
        loads: BUILT_IN_MODELS
            .iter()
            .map(|m| LoadDesign::design(*m, &grid, sample_rate))
            .collect(),
    }
}

/// Samples per chunk of the steady loop (stack buffers).
const CHUNK: usize = 64;

/// Outputs per step of the steady loop's block FIR (vector width).
const FIR_LANES: usize = 8;

/// Largest number of loop states (two per biquad).
const MAX_STATES: usize = 2 * MAX_SECTIONS;

/// One running load: the delay-free loop v = x - Zo Y_b v, then the
/// correction N(z) / (1 + BETA z^-1)^2.
///
/// The loop runs in closed-loop state-space form. Its states are the
/// transposed direct-form II states of Y_b's biquads (the ones that can
/// be non-zero: first-order sections' second states are dropped). With
/// the open-loop cascade written as s' = Ao s + bo v, o = co . s (the
/// cascade's zero-input output) and v = x / (1 + Zo d) - k o,
/// k = Zo / (1 + Zo d), the loop is s' = (Ao - k bo co) s + bo x / (1 + Zo d):
/// one matrix-vector product per sample, summed as a tree, instead of a
/// serial chain through every section twice. The matrix is rebuilt when
/// Zo moves (per sample during a ramp only).
#[derive(Clone, Copy, Debug)]
struct Path {
    /// Index of the load in `LoadDesigns::loads`.
    load: usize,
    /// Number of live loop states.
    m: usize,
    /// Open-loop state matrix Ao (row r gives s'_r), live states only.
    a_open: [[f64; MAX_STATES]; MAX_STATES],
    /// Open-loop input vector bo (how v enters each state).
    b_open: [f64; MAX_STATES],
    /// Open-loop output row co: the cascade's zero-input output o = co . s.
    c_open: [f64; MAX_STATES],
    /// Direct gain of the admittance (the product of the b0s).
    direct: f64,
    /// The closed loop at the current Zo, packed for `Loop::step`.
    lp: Loop,
    /// Loop states, two per lane pair (live ones first, the rest stay
    /// zero).
    state: [P2; PAIRS],
    /// Correction taps at the current Zo.
    taps: [f64; TAPS],
    /// Loop output history, newest first (`hist[k]` is v delayed k).
    hist: [f64; TAPS],
    /// States of the fixed double pole (previous two outputs).
    post: [f64; 2],
}

impl Path {
    fn new(load: usize, d: &LoadDesign) -> Self {
        // Open-loop cascade over the full 2n states: every signal is
        // written as (coefficients on the states, coefficient on v).
        let n = d.n;
        let full = 2 * n;
        let mut rows = [[0.0; MAX_STATES]; MAX_STATES];
        let mut ins = [0.0; MAX_STATES];
        let (mut u_s, mut u_v) = ([0.0; MAX_STATES], 1.0);
        for (i, s) in d.sections[..n].iter().enumerate() {
            let (z0, z1) = (2 * i, 2 * i + 1);
            let mut y_s = [0.0; MAX_STATES];
            for j in 0..full {
                y_s[j] = s[0] * u_s[j];
            }
            y_s[z0] += 1.0;
            let y_v = s[0] * u_v;
            for j in 0..full {
                rows[z0][j] = s[1] * u_s[j] - s[3] * y_s[j];
                rows[z1][j] = s[2] * u_s[j] - s[4] * y_s[j];
            }
            rows[z0][z1] += 1.0;
            ins[z0] = s[1] * u_v - s[3] * y_v;
            ins[z1] = s[2] * u_v - s[4] * y_v;
            (u_s, u_v) = (y_s, y_v);
        }
        // Drop states that stay zero from reset (all-zero row and input,
        // e.g. the second state of a first-order section).
        let mut live = [false; MAX_STATES];
        for r in 0..full {
            live[r] = ins[r] != 0.0 || rows[r][..full].iter().any(|a| *a != 0.0);
        }
        let mut idx_buf = [0usize; MAX_STATES];
        let mut m = 0;
        for r in (0..full).filter(|r| live[*r]) {
            idx_buf[m] = r;
            m += 1;
        }
        let idx = &idx_buf[..m];
        let mut a_open = [[0.0; MAX_STATES]; MAX_STATES];
        let mut b_open = [0.0; MAX_STATES];
        let mut c_open = [0.0; MAX_STATES];
        for (ri, r) in idx.iter().enumerate() {
            for (ci, c) in idx.iter().enumerate() {
                a_open[ri][ci] = rows[*r][*c];
            }
            b_open[ri] = ins[*r];
            c_open[ri] = u_s[*r];
        }
        let mut p = Path {
            load,
            m,
            a_open,
            b_open,
            c_open,
            direct: d.direct,
            lp: Loop::new(),
            state: [P2::splat(0.0); PAIRS],
            taps: d.taps[0],
            hist: [0.0; TAPS],
            post: [0.0; 2],
        };
        p.set_loop(0.0);
        p
    }

    /// Closed-loop matrix and input vector at `zo`.
    #[inline]
    fn set_loop(&mut self, zo: f64) {
        let inv_loop = 1.0 / (1.0 + zo * self.direct);
        let k_loop = zo * inv_loop;
        let np = self.m.div_ceil(2);
        let Path {
            m,
            a_open,
            b_open,
            c_open,
            direct,
            lp,
            ..
        } = self;
        lp.inv_loop = inv_loop;
        lp.k_loop = k_loop;
        lp.direct = *direct;
        // Rows past the live states are zero in a_open and b_open, so the
        // padding lane of an odd count comes out zero.
        for q in 0..np {
            let (r0, r1) = (2 * q, 2 * q + 1);
            let (kb0, kb1) = (k_loop * b_open[r0], k_loop * b_open[r1]);
            for (j, aj) in lp.a[q].iter_mut().enumerate().take(*m) {
                *aj = P2::new(
                    a_open[r0][j] - kb0 * c_open[j],
                    a_open[r1][j] - kb1 * c_open[j],
                );
            }
            lp.g[q] = P2::new(b_open[r0], b_open[r1]).mul(P2::splat(inv_loop));
            lp.c[q] = P2::new(c_open[r0], c_open[r1]);
        }
    }

    #[inline]
    fn set_zo(&mut self, d: &LoadDesign, zo: f64, u: f64) {
        self.set_loop(zo);
        d.taps_at(u, &mut self.taps);
    }

    /// One sample: (corrected output, loop voltage, loop current).
    #[inline]
    fn tick(&mut self, x: f64) -> (f64, f64, f64) {
        match self.m {
            0 => self.tick_m::<0>(x),
            1 => self.tick_m::<1>(x),
            2 => self.tick_m::<2>(x),
            3 => self.tick_m::<3>(x),
            4 => self.tick_m::<4>(x),
            5 => self.tick_m::<5>(x),
            6 => self.tick_m::<6>(x),
            7 => self.tick_m::<7>(x),
            _ => self.tick_m::<MAX_STATES>(x),
        }
    }

    /// `tick` with the state count known at compile time (unrolled).
    #[inline(always)]
    fn tick_m<const M: usize>(&mut self, x: f64) -> (f64, f64, f64) {
        let (v, i) = self.lp.step::<M>(&mut self.state, x);
        // Correction FIR (same lane order as `steady_m`) and double pole.
        self.hist.copy_within(0..TAPS - 1, 1);
        self.hist[0] = v;
        let mut acc = [0.0; 2];
        for k in (0..TAPS).step_by(2) {
            acc[0] += self.taps[k] * self.hist[k];
            acc[1] += self.taps[k + 1] * self.hist[k + 1];
        }
        let out = self.pole(acc[0] + acc[1]);
        (out, v, i)
    }

    /// The fixed double pole 1 / (1 + BETA z^-1)^2.
    #[inline(always)]
    fn pole(&mut self, acc: f64) -> f64 {
        let out = (acc - (BETA * BETA) * self.post[1]) - (2.0 * BETA) * self.post[0];
        self.post[1] = self.post[0];
        self.post[0] = out;
        out
    }

    /// Denormal flush, once per block: feedback states far below
    /// audibility are set to exactly zero (the slowest pole needs
    /// thousands of samples to decay from 1e-30 into the denormal range,
    /// so checking per block is enough).
    fn flush(&mut self) {
        let tiny = |v: &mut f64| {
            if v.abs() < 1e-30 {
                *v = 0.0;
            }
        };
        for pair in self.state.iter_mut() {
            let (mut lo, mut hi) = (pair.lo(), pair.hi());
            tiny(&mut lo);
            tiny(&mut hi);
            *pair = P2::new(lo, hi);
        }
        self.post.iter_mut().for_each(tiny);
    }

    fn reset(&mut self) {
        self.state = [P2::splat(0.0); PAIRS];
        self.hist = [0.0; TAPS];
        self.post = [0.0; 2];
    }
}

/// Pairs of f64 lanes: SSE2 registers on x86_64 (baseline there), plain
/// arrays elsewhere. Lane-wise IEEE multiply and add either way, so every
/// build computes the same bits.
#[cfg(target_arch = "x86_64")]
mod lanes {
    use std::arch::x86_64::*;

    /// Two f64 lanes (low, high).
    #[derive(Clone, Copy, Debug)]
    pub(super) struct P2(__m128d);

    impl P2 {
        #[inline(always)]
        pub(super) fn new(lo: f64, hi: f64) -> Self {
            // SAFETY: SSE2 is part of the x86_64 baseline.
            unsafe { P2(_mm_set_pd(hi, lo)) }
        }
        #[inline(always)]
        pub(super) fn splat(x: f64) -> Self {
            // SAFETY: SSE2 is part of the x86_64 baseline.
            unsafe { P2(_mm_set1_pd(x)) }
        }
        #[inline(always)]
        pub(super) fn mul(self, o: Self) -> Self {
            // SAFETY: SSE2 is part of the x86_64 baseline.
            unsafe { P2(_mm_mul_pd(self.0, o.0)) }
        }
        #[inline(always)]
        pub(super) fn add(self, o: Self) -> Self {
            // SAFETY: SSE2 is part of the x86_64 baseline.
            unsafe { P2(_mm_add_pd(self.0, o.0)) }
        }
        /// Both lanes set to the low lane.
        #[inline(always)]
        pub(super) fn dup_lo(self) -> Self {
            // SAFETY: SSE2 is part of the x86_64 baseline.
            unsafe { P2(_mm_unpacklo_pd(self.0, self.0)) }
        }
        /// Both lanes set to the high lane.
        #[inline(always)]
        pub(super) fn dup_hi(self) -> Self {
            // SAFETY: SSE2 is part of the x86_64 baseline.
            unsafe { P2(_mm_unpackhi_pd(self.0, self.0)) }
        }
        #[inline(always)]
        pub(super) fn lo(self) -> f64 {
            // SAFETY: SSE2 is part of the x86_64 baseline.
            unsafe { _mm_cvtsd_f64(self.0) }
        }
        #[inline(always)]
        pub(super) fn hi(self) -> f64 {
            // SAFETY: SSE2 is part of the x86_64 baseline.
            unsafe { _mm_cvtsd_f64(_mm_unpackhi_pd(self.0, self.0)) }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod lanes {
    /// Two f64 lanes (low, high).
    #[derive(Clone, Copy, Debug)]
    pub(super) struct P2([f64; 2]);

    impl P2 {
        #[inline(always)]
        pub(super) fn new(lo: f64, hi: f64) -> Self {
            P2([lo, hi])
        }
        #[inline(always)]
        pub(super) fn splat(x: f64) -> Self {
            P2([x, x])
        }
        #[inline(always)]
        pub(super) fn mul(self, o: Self) -> Self {
            P2([self.0[0] * o.0[0], self.0[1] * o.0[1]])
        }
        #[inline(always)]
        pub(super) fn add(self, o: Self) -> Self {
            P2([self.0[0] + o.0[0], self.0[1] + o.0[1]])
        }
        #[inline(always)]
        pub(super) fn dup_lo(self) -> Self {
            P2([self.0[0], self.0[0]])
        }
        #[inline(always)]
        pub(super) fn dup_hi(self) -> Self {
            P2([self.0[1], self.0[1]])
        }
        #[inline(always)]
        pub(super) fn lo(self) -> f64 {
            self.0[0]
        }
        #[inline(always)]
        pub(super) fn hi(self) -> f64 {
            self.0[1]
        }
    }
}

use lanes::P2;

/// Number of lane pairs holding the loop states.
const PAIRS: usize = MAX_STATES / 2;

/// The closed loop of a `Path`, packed for stepping: states two per
/// `P2` (rows 2p and 2p + 1 in pair p; an odd count pads with a zero
/// lane). `Path::tick_m` and `HeadphoneAmp::steady_m` (which copies it
/// to locals, so it stays in registers) both step it: they agree to the
/// bit.
#[derive(Clone, Copy, Debug)]
struct Loop {
    /// Closed-loop matrix by row pair and column:
    /// `a[p][j]` = (a[2p][j], a[2p + 1][j]).
    a: [[P2; MAX_STATES]; PAIRS],
    /// Closed-loop input vector by row pair.
    g: [P2; PAIRS],
    /// Zero-input output row of the cascade by state pair.
    c: [P2; PAIRS],
    /// 1 / (1 + Zo d).
    inv_loop: f64,
    /// Zo / (1 + Zo d).
    k_loop: f64,
    /// Direct gain d of the admittance.
    direct: f64,
}

impl Loop {
    fn new() -> Self {
        let zero = P2::splat(0.0);
        Loop {
            a: [[zero; MAX_STATES]; PAIRS],
            g: [zero; PAIRS],
            c: [zero; PAIRS],
            inv_loop: 1.0,
            k_loop: 0.0,
            direct: 0.0,
        }
    }

    /// One sample of the loop: updates `s`, returns (v, i = Y_b v).
    #[inline(always)]
    fn step<const M: usize>(&self, s: &mut [P2; PAIRS], x: f64) -> (f64, f64) {
        let np = M.div_ceil(2);
        // o = c . s: lane products summed as a tree over pairs, then lanes.
        let mut po = [P2::splat(0.0); PAIRS];
        for q in 0..np {
            po[q] = self.c[q].mul(s[q]);
        }
        let mut step = 1;
        while step < np {
            let mut j = 0;
            while j + step < np {
                po[j] = po[j].add(po[j + step]);
                j += 2 * step;
            }
            step *= 2;
        }
        let o = po[0].lo() + po[0].hi();
        // Every state broadcast to both lanes.
        let mut b = [P2::splat(0.0); MAX_STATES];
        for j in 0..M {
            b[j] = if j % 2 == 0 {
                s[j / 2].dup_lo()
            } else {
                s[j / 2].dup_hi()
            };
        }
        let xs = P2::splat(x);
        // s'_r = sum_j a[r][j] s_j + g_r x for a pair of rows at a time,
        // summed as a tree over j (the input term joins the last leaf).
        let mut next = [P2::splat(0.0); PAIRS];
        for (q, nq) in next.iter_mut().enumerate().take(np) {
            let mut t = [P2::splat(0.0); MAX_STATES];
            for j in 0..M {
                t[j] = self.a[q][j].mul(b[j]);
            }
            if let Some(last) = t[..M].last_mut() {
                *last = last.add(self.g[q].mul(xs));
            }
            let mut step = 1;
            while step < M {
                let mut j = 0;
                while j + step < M {
                    t[j] = t[j].add(t[j + step]);
                    j += 2 * step;
                }
                step *= 2;
            }
            *nq = t[0];
        }
        s[..np].copy_from_slice(&next[..np]);
        let v = x * self.inv_loop - self.k_loop * o;
        (v, o + self.direct * v)
    }
}

/// The steady loop's output tail in locals: the fixed double pole (same
/// arithmetic as `Path::pole`), the normalisation gain and the voltage
/// meter.
struct PoleTail {
    /// Normalisation gain.
    post: f64,
    /// Meter coefficients (see `meter`).
    mc: (f64, f64),
    /// Mean square output voltage.
    ms_v: f64,
    /// Double-pole states (previous two outputs).
    p: [f64; 2],
}

impl PoleTail {
    #[inline(always)]
    fn out(&mut self, acc: f64) -> f64 {
        let y = (acc - (BETA * BETA) * self.p[1]) - (2.0 * BETA) * self.p[0];
        self.p[1] = self.p[0];
        self.p[0] = y;
        let out = y * self.post;
        self.ms_v = meter(self.ms_v, out * out, self.mc);
        out
    }
}

/// One step of an exponential mean: `mean * keep + new * weight` with
/// `mc = (weight, keep)`, `keep = 1 - weight` (two operations deep, so the
/// meters never lengthen the per-sample dependency chain).
#[inline(always)]
fn meter(mean: f64, new: f64, mc: (f64, f64)) -> f64 {
    mean * mc.1 + new * mc.0
}

/// Per-sample smoothing coefficient for a time constant at a rate.
fn smoothing_coeff(time_ms: f64, fs: f64) -> f64 {
    1.0 - (-1000.0 / (time_ms * fs)).exp()
}

/// Fraction of the rail where the soft knee starts.
const KNEE_FRACTION: f64 = 0.6;

/// Symmetric soft limit into +-rail: identity below knee * rail, then
/// knee + (rail - knee) * tanh((|x| - knee) / (rail - knee)). Slope 1 and
/// zero curvature at the knee (C2), asymptotic to the rail.
#[inline]
fn soft_rail(x: f64, rail: f64) -> f64 {
    let knee = KNEE_FRACTION * rail;
    let a = x.abs();
    if a <= knee {
        x
    } else {
        let w = rail - knee;
        (knee + w * ((a - knee) / w).tanh()).copysign(x)
    }
}

/// Meter readings of the current signal at the headphone (exponential
/// window, 300 ms time constant).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct HeadphoneLevels {
    /// RMS voltage across the headphone, volts.
    pub v_rms_volts: f64,
    /// RMS current into the headphone, amperes.
    pub i_rms_amps: f64,
    /// Real power delivered, watts: the mean of v * i (exact for the current
    /// signal, no assumption about its frequency).
    pub power_watts: f64,
    /// Power expressed in mW for display.
    pub power_mw: f64,
}

/// Mixing time for load changes and custom-filter swaps.
const FADE_MS: f64 = 20.0;

/// The headphone amp stage, one per channel.
pub struct HeadphoneAmp {
    /// Current sample rate.
    fs: f64,
    /// Settings last applied.
    settings: HeadphoneSettings,
    /// Every built-in load designed at `fs` (made in `prepare`).
    designs: LoadDesigns,
    /// The path running the current built-in load.
    active: Path,
    /// The path of the previous load while a load change crossfades.
    fading: Path,
    /// Remaining samples of the built-in crossfade (0 = none).
    fade_left: usize,
    /// Length of a crossfade in samples.
    fade_len: usize,
    /// Custom-load convolver (input history) and filters.
    custom: custom::Convolver,
    /// Delay line aligning the (zero-latency) custom path with the
    /// built-in loads' LATENCY samples.
    custom_delay: [f64; LATENCY],
    /// Read/write position in `custom_delay`.
    custom_pos: usize,
    /// Mix of the custom path: 0 = built-in load, 1 = custom load.
    custom_mix: f64,
    /// Target of `custom_mix`.
    custom_mix_target: f64,
    /// Smoothed output impedance, ohms.
    zo: f64,
    /// Target output impedance, ohms.
    zo_target: f64,
    /// ln(1 + zo / 1 ohm): Zo ramps linearly in this domain over 20 ms,
    /// so the level changes at an even rate in dB (no click at the start
    /// of a change). Also the coordinate of the correction grid.
    zo_log: f64,
    /// Per-sample step of `zo_log` while ramping.
    zo_log_step: f64,
    /// Smoothed input gain (volume), linear.
    gain: f64,
    /// Target input gain.
    gain_target: f64,
    /// Smoothed post gain (level normalisation), linear.
    post: f64,
    /// Target post gain.
    post_target: f64,
    /// Per-sample smoothing coefficient for parameters.
    smooth: f64,
    /// Rail voltage of the swing limit (smoothed like the gain).
    rail: f64,
    /// Rail voltage asked for.
    rail_target: f64,
    /// Step of `ln(rail)` per sample while it moves.
    rail_log_step: f64,
    /// Metering coefficients (300 ms): (weight of the new value, weight
    /// kept of the old mean), see `meter`.
    meter_coeff: (f64, f64),
    /// Mean square voltage.
    ms_v: f64,
    /// Mean square current.
    ms_i: f64,
    /// Mean power.
    mean_p: f64,
    /// The CPU has AVX (checked in `prepare`): the steady loop runs its
    /// AVX build (same arithmetic, wider vectors).
    has_avx: bool,
}

impl Default for HeadphoneAmp {
    fn default() -> Self {
        Self::new()
    }
}

impl HeadphoneAmp {
    /// A stage with default settings; call `prepare` before `process`.
    pub fn new() -> Self {
        let flat = LoadDesign::flat();
        HeadphoneAmp {
            fs: 0.0,
            settings: HeadphoneSettings::default(),
            designs: LoadDesigns {
                sample_rate_hz: 0.0,
                loads: Vec::new(),
            },
            active: Path::new(0, &flat),
            fading: Path::new(0, &flat),
            fade_left: 0,
            fade_len: 1,
            custom: custom::Convolver::new(),
            custom_delay: [0.0; LATENCY],
            custom_pos: 0,
            custom_mix: 0.0,
            custom_mix_target: 0.0,
            zo: 0.1,
            zo_target: 0.1,
            zo_log: 0.1f64.ln_1p(),
            zo_log_step: 0.0,
            gain: 1.0,
            gain_target: 1.0,
            post: 1.0,
            post_target: 1.0,
            smooth: 1.0,
            rail: 10.0,
            rail_target: 10.0,
            rail_log_step: 0.0,
            meter_coeff: (1.0, 0.0),
            ms_v: 0.0,
            ms_i: 0.0,
            mean_p: 0.0,
            has_avx: false,
        }
    }

    /// Designs every built-in load for this rate (a few ms; skipped when
    /// the rate is unchanged) and allocates the custom convolver. Allocates.
    pub fn prepare(&mut self, spec: &ProcessSpec) {
        let fs = spec.sample_rate;
        if fs != self.designs.sample_rate_hz || self.designs.loads.is_empty() {
            self.designs = design_loads(fs);
        }
        self.finish_prepare(spec);
    }

    /// Like `prepare`, but takes the load designs from `designs` (made
    /// once by `design_loads` for all channels) when its rate matches.
    /// Allocates.
    pub fn prepare_with(&mut self, spec: &ProcessSpec, designs: &LoadDesigns) {
        if designs.sample_rate_hz == spec.sample_rate && !designs.loads.is_empty() {
            self.designs = designs.clone();
        }
        self.prepare(spec);
    }

    fn finish_prepare(&mut self, spec: &ProcessSpec) {
        #[cfg(target_arch = "x86_64")]
        {
            self.has_avx = std::arch::is_x86_feature_detected!("avx");
        }
        let fs = spec.sample_rate;
        self.fs = fs;
        self.fade_len = ((FADE_MS * 1e-3 * fs) as usize).max(1);
        self.smooth = smoothing_coeff(FADE_MS / 4.0, fs);
        let mc = smoothing_coeff(300.0, fs);
        self.meter_coeff = (mc, 1.0 - mc);
        self.custom.prepare(fs);
        let s = self.settings;
        self.apply(s, true);
        self.reset();
    }

    /// Latency of the stage in samples (the same at every rate and for
    /// every load, custom included). `response` excludes it.
    pub fn latency_samples(&self) -> usize {
        LATENCY
    }

    /// Clears all state and snaps smoothed parameters to their targets.
    pub fn reset(&mut self) {
        self.active.reset();
        self.fading.reset();
        self.fade_left = 0;
        self.custom.reset();
        self.custom_delay = [0.0; LATENCY];
        self.custom_pos = 0;
        self.custom_mix = self.custom_mix_target;
        self.zo = self.zo_target;
        self.zo_log = self.zo.ln_1p();
        self.gain = self.gain_target;
        self.rail = self.rail_target;
        self.post = self.post_target;
        self.update_paths();
        self.ms_v = 0.0;
        self.ms_i = 0.0;
        self.mean_p = 0.0;
    }

    /// Applies new settings; never allocates.
    pub fn set_settings(&mut self, s: HeadphoneSettings) {
        if s != self.settings {
            self.apply(s, false);
        }
    }

    fn apply(&mut self, s: HeadphoneSettings, force: bool) {
        let model_changed = s.model != self.settings.model || force;
        self.settings = s;
        self.zo_target = sanitize(s.amp_z_ohms, 0.0, fit::GRID_MAX_OHMS, 0.1);
        self.zo_log_step = (self.zo_target.ln_1p() - self.zo_log) / self.fade_len as f64;
        self.gain_target = 10f64.powf(sanitize(s.volume_db, -200.0, 100.0, 0.0) / 20.0);
        // The rail moves like the gain (a jump of the limit would click).
        self.rail_target = sanitize(s.swing_volts, 1e-6, 1e6, 10.0);
        if force {
            self.rail = self.rail_target;
        }
        self.rail_log_step = (self.rail_target / self.rail).ln() / self.fade_len as f64;
        self.custom_mix_target = if s.model == HeadphoneModel::Custom {
            1.0
        } else {
            0.0
        };
        if self.custom_mix_target > 0.0 && self.custom_mix == 0.0 {
            // The custom path was idle: start from a clean input history.
            self.custom.reset();
            self.custom_delay = [0.0; LATENCY];
        }
        if model_changed && s.model != HeadphoneModel::Custom && !self.designs.loads.is_empty() {
            let idx = s.model.index();
            let new = Path::new(idx, &self.designs.loads[idx]);
            if force {
                self.active = new;
            } else {
                self.fading = self.active;
                self.active = new;
                self.fade_left = self.fade_len;
            }
        }
        self.post_target = self.normalize_gain(self.zo_target);
        if force {
            self.zo = self.zo_target;
            self.zo_log = self.zo.ln_1p();
            self.post = self.post_target;
            self.gain = self.gain_target;
            self.custom_mix = self.custom_mix_target;
        }
        self.update_paths();
    }

    fn normalize_gain(&self, zo: f64) -> f64 {
        if !self.settings.normalize {
            return 1.0;
        }
        let h = self.divider_response(zo, 1000.0);
        let m = h.norm();
        if m > 1e-9 && m.is_finite() {
            1.0 / m
        } else {
            1.0
        }
    }

    /// Response of the current load's divider at `zo` (latency removed).
    fn divider_response(&self, zo: f64, freq_hz: f64) -> C64 {
        if self.settings.model == HeadphoneModel::Custom {
            self.custom.response_current(freq_hz)
        } else {
            match self.designs.loads.get(self.active.load) {
                Some(d) => d.response(zo, freq_hz, self.fs),
                None => C64::new(1.0, 0.0),
            }
        }
    }

    /// Loop gain and correction taps of both paths at the current Zo.
    fn update_paths(&mut self) {
        let (zo, u) = (self.zo, self.zo_log);
        if let Some(d) = self.designs.loads.get(self.active.load) {
            self.active.set_zo(d, zo, u);
        }
        if let Some(d) = self.designs.loads.get(self.fading.load) {
            self.fading.set_zo(d, zo, u);
        }
    }

    /// Hands a new custom filter (made by `design_custom` off the audio
    /// thread) to the stage without allocating. The stage crossfades from
    /// the filter it was using over 20 ms; that one is kept for the fade
    /// and the filter it displaces (the one from the swap before) is
    /// returned, so the caller can drop it off the audio thread. Returns an
    /// empty filter (nothing to free) the first time.
    pub fn swap_custom(&mut self, new: CustomFilter) -> CustomFilter {
        let old = self.custom.swap(new, self.fade_len);
        if self.settings.normalize {
            self.post_target = self.normalize_gain(self.zo_target);
        }
        old
    }

    /// Digital response of the stage's load divider at the current
    /// (target) settings, including normalisation but not volume, with
    /// the stage's latency (`latency_samples`) removed.
    pub fn response(&self, freq_hz: f64) -> C64 {
        self.divider_response(self.zo_target, freq_hz) * self.post_target
    }

    /// Worst fit error (dB, complex relative) of the built-in loads'
    /// correction inside 20 Hz..20 kHz at the prepared rate (diagnostics).
    pub fn worst_fit_error_db(&self) -> f64 {
        self.designs
            .loads
            .iter()
            .map(|d| 20.0 * d.fit_error.ln_1p() / std::f64::consts::LN_10)
            .fold(0.0, f64::max)
    }

    /// Meter readings of the current signal at the headphone.
    pub fn levels(&self) -> HeadphoneLevels {
        HeadphoneLevels {
            v_rms_volts: self.ms_v.max(0.0).sqrt(),
            i_rms_amps: self.ms_i.max(0.0).sqrt(),
            power_watts: self.mean_p,
            power_mw: self.mean_p * 1e3,
        }
    }

    /// Processes one block in place (volts in, volts at the headphone out,
    /// `latency_samples()` later).
    pub fn process(&mut self, block: &mut [f64]) {
        if self.designs.loads.is_empty() {
            return;
        }
        let steady = self.zo == self.zo_target
            && self.gain == self.gain_target
            && self.rail == self.rail_target
            && self.post == self.post_target
            && self.fade_left == 0
            && self.custom_mix == self.custom_mix_target
            && self.custom_mix == 0.0;
        if steady {
            self.process_steady(block);
        } else {
            self.process_general(block);
        }
        self.active.flush();
        self.fading.flush();
        let bad = !(self.ms_v.is_finite() && self.ms_i.is_finite() && self.mean_p.is_finite());
        // A non-short-circuit fold: vectorises (one pass, no branches).
        let finite = block.iter().fold(true, |ok, v| ok & v.is_finite());
        if bad || !finite {
            self.reset();
            block.iter_mut().for_each(|v| *v = 0.0);
        }
    }

    /// Built-in load, no parameter moving: the tight loop, dispatched
    /// once per block on the loop's state count.
    fn process_steady(&mut self, block: &mut [f64]) {
        #[cfg(target_arch = "x86_64")]
        if self.has_avx {
            // SAFETY: `has_avx` is set only when the CPU reports AVX.
            unsafe { self.process_steady_avx(block) };
            return;
        }
        self.process_steady_any(block);
    }

    /// `process_steady_any` compiled with AVX (4-wide vectors). It has
    /// no fused multiply-add, so it rounds exactly like the portable
    /// build: the output is the same bit for bit.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx")]
    fn process_steady_avx(&mut self, block: &mut [f64]) {
        self.process_steady_any(block);
    }

    #[inline(always)]
    fn process_steady_any(&mut self, block: &mut [f64]) {
        match self.active.m {
            0 => self.steady_m::<0>(block),
            1 => self.steady_m::<1>(block),
            2 => self.steady_m::<2>(block),
            3 => self.steady_m::<3>(block),
            4 => self.steady_m::<4>(block),
            5 => self.steady_m::<5>(block),
            6 => self.steady_m::<6>(block),
            7 => self.steady_m::<7>(block),
            _ => self.steady_m::<MAX_STATES>(block),
        }
    }

    /// The steady loop in chunks of `CHUNK`: the closed loop for a chunk
    /// (its serial chain, with the swing limit and the current and power
    /// meters alongside), then the correction FIR over the chunk
    /// (vectorised across samples, each output summed in the same order
    /// as `Path::tick_m`). The double pole and the voltage meter of a
    /// chunk run interleaved with the next chunk's loop, so the two
    /// serial chains overlap; the last chunk's are finished at the end.
    #[inline(always)]
    fn steady_m<const M: usize>(&mut self, block: &mut [f64]) {
        let (gain, rail, post) = (self.gain, self.rail, self.post);
        let mc = self.meter_coeff;
        let knee = KNEE_FRACTION * rail;
        let mut ms_i = self.ms_i;
        let mut mean_p = self.mean_p;
        let mut tail = PoleTail {
            post,
            mc,
            ms_v: self.ms_v,
            p: self.active.post,
        };
        let path = &mut self.active;
        let lp = path.lp;
        let mut s = path.state;
        let taps = path.taps;
        // vb[TAPS - 1 + n] is the loop voltage of chunk sample n; the
        // first TAPS - 1 entries hold the history, oldest first.
        let mut vb = [0.0; TAPS - 1 + CHUNK];
        for k in 0..TAPS - 1 {
            vb[TAPS - 2 - k] = path.hist[k];
        }
        // FIR output of the previous chunk, waiting for its double pole.
        let mut fir_prev = [0.0; CHUNK];
        let mut prev_len = 0;
        let mut start = 0;
        while start < block.len() {
            let len = (block.len() - start).min(CHUNK);
            let (done, rest) = block.split_at_mut(start);
            let prev = &mut done[start - prev_len..];
            let chunk = &mut rest[..len];
            // Below the knee `soft_rail` is the identity (and the input is
            // finite): one vectorised test per chunk skips it per sample.
            let linear = chunk
                .iter()
                .fold(true, |ok, x| ok & ((x * gain).abs() <= knee));
            let both = len.min(prev_len);
            let vslots = &mut vb[TAPS - 1..TAPS - 1 + len];
            if linear {
                for n in 0..both {
                    let (v, i) = lp.step::<M>(&mut s, chunk[n] * gain);
                    ms_i = meter(ms_i, i * i, mc);
                    mean_p = meter(mean_p, v * i, mc);
                    vslots[n] = v;
                    prev[n] = tail.out(fir_prev[n]);
                }
                for n in both..len {
                    let (v, i) = lp.step::<M>(&mut s, chunk[n] * gain);
                    ms_i = meter(ms_i, i * i, mc);
                    mean_p = meter(mean_p, v * i, mc);
                    vslots[n] = v;
                }
            } else {
                for n in 0..len {
                    let x = chunk[n];
                    let input = if x.is_finite() { x } else { 0.0 };
                    let drive = soft_rail(input * gain, rail);
                    let (v, i) = lp.step::<M>(&mut s, drive);
                    ms_i = meter(ms_i, i * i, mc);
                    mean_p = meter(mean_p, v * i, mc);
                    vslots[n] = v;
                    if n < prev_len {
                        prev[n] = tail.out(fir_prev[n]);
                    }
                }
            }
            for n in len.max(both)..prev_len {
                prev[n] = tail.out(fir_prev[n]);
            }
            // FIR_LANES outputs at a time (vectorised across samples); each
            // output summed in the same order as `tick_m`.
            let groups = len.div_ceil(FIR_LANES);
            for (q, fo) in fir_prev[..FIR_LANES * groups]
                .chunks_exact_mut(FIR_LANES)
                .enumerate()
            {
                let base = TAPS - 1 + FIR_LANES * q;
                let mut a0 = [0.0; FIR_LANES];
                let mut a1 = [0.0; FIR_LANES];
                for k in (0..TAPS).step_by(2) {
                    let (t0, t1) = (taps[k], taps[k + 1]);
                    let w0 = &vb[base - k..base - k + FIR_LANES];
                    let w1 = &vb[base - k - 1..base - k - 1 + FIR_LANES];
                    for l in 0..FIR_LANES {
                        a0[l] += t0 * w0[l];
                        a1[l] += t1 * w1[l];
                    }
                }
                for l in 0..FIR_LANES {
                    fo[l] = a0[l] + a1[l];
                }
            }
            vb.copy_within(len..len + TAPS - 1, 0);
            prev_len = len;
            start += len;
        }
        let end = block.len();
        for (x, f) in block[end - prev_len..].iter_mut().zip(fir_prev.iter()) {
            *x = tail.out(*f);
        }
        for k in 0..TAPS - 1 {
            path.hist[k] = vb[TAPS - 2 - k];
        }
        path.state = s;
        path.post = tail.p;
        self.ms_v = tail.ms_v;
        self.ms_i = ms_i;
        self.mean_p = mean_p;
    }

    /// Everything else: ramps, crossfades, the custom path.
    fn process_general(&mut self, block: &mut [f64]) {
        let k = self.smooth;
        let custom_only = self.custom_mix == 1.0 && self.custom_mix_target == 1.0;
        for x in block.iter_mut() {
            // Parameter smoothing (snaps when close, so it goes idle).
            if self.zo != self.zo_target {
                let target_log = self.zo_target.ln_1p();
                self.zo_log += self.zo_log_step;
                let passed = (self.zo_log - target_log) * self.zo_log_step >= 0.0;
                if passed || self.zo_log_step == 0.0 {
                    self.zo_log = target_log;
                    self.zo = self.zo_target;
                } else {
                    self.zo = self.zo_log.exp_m1();
                }
                self.update_paths();
            }
            if self.gain != self.gain_target {
                self.gain += k * (self.gain_target - self.gain);
                if (self.gain - self.gain_target).abs() <= 1e-12 * self.gain_target {
                    self.gain = self.gain_target;
                }
            }
            if self.rail != self.rail_target {
                // Straight in dB over the fade, like Zo.
                let log = self.rail.ln() + self.rail_log_step;
                let passed = (log - self.rail_target.ln()) * self.rail_log_step >= 0.0;
                self.rail = if passed || self.rail_log_step == 0.0 {
                    self.rail_target
                } else {
                    log.exp()
                };
            }
            if self.post != self.post_target {
                self.post += k * (self.post_target - self.post);
                if (self.post - self.post_target).abs() <= 1e-12 * self.post_target {
                    self.post = self.post_target;
                }
            }
            let input = if x.is_finite() { *x } else { 0.0 };
            let drive = soft_rail(input * self.gain, self.rail);
            let (mut y, mut v, mut i) = (0.0, 0.0, 0.0);
            if !custom_only {
                let (ya, va, ia) = self.active.tick(drive);
                (y, v, i) = (ya, va, ia);
                if self.fade_left > 0 {
                    let (yf, vf, i_f) = self.fading.tick(drive);
                    let t = self.fade_left as f64 / self.fade_len as f64;
                    y += t * (yf - y);
                    v += t * (vf - v);
                    i += t * (i_f - i);
                    self.fade_left -= 1;
                }
            }
            if self.custom_mix != self.custom_mix_target {
                let step = 1.0 / self.fade_len as f64;
                self.custom_mix = if self.custom_mix < self.custom_mix_target {
                    (self.custom_mix + step).min(self.custom_mix_target)
                } else {
                    (self.custom_mix - step).max(self.custom_mix_target)
                };
            }
            if self.custom_mix > 0.0 || self.custom_mix_target > 0.0 {
                let vc = self.custom.tick(drive);
                let delayed = self.custom_delay[self.custom_pos];
                self.custom_delay[self.custom_pos] = vc;
                self.custom_pos = (self.custom_pos + 1) % LATENCY;
                y += self.custom_mix * (delayed - y);
                v += self.custom_mix * (vc - v);
                // The current through Zo is (V_amp - V_headphone) / Zo; at
                // Zo = 0 the custom path carries no current estimate.
                let ic = if self.zo > 0.0 {
                    (drive - vc) / self.zo
                } else {
                    0.0
                };
                i += self.custom_mix * (ic - i);
            }
            let out = y * self.post;
            let mc = self.meter_coeff;
            self.ms_v = meter(self.ms_v, out * out, mc);
            self.ms_i = meter(self.ms_i, i * i, mc);
            self.mean_p = meter(self.mean_p, v * i, mc);
            *x = out;
        }
    }
}

fn sanitize(x: f64, lo: f64, hi: f64, fallback: f64) -> f64 {
    if x.is_finite() {
        x.clamp(lo, hi)
    } else {
        fallback
    }
}

/// Numbers and a warning for a (load, Zo) pair, for the editor and the
/// renderer's `--report`. Computed from the analytic formula
/// H = Z / (Z + Zo) on a 1/48-octave grid over 20 Hz..20 kHz.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadReport {
    /// Nominal impedance used for the damping factor and the 1/8 rule, ohms.
    pub nominal_ohms: f64,
    /// Damping factor Z_nominal / Zo (infinite for Zo = 0).
    pub damping_factor: f64,
    /// Span of |H| over 20 Hz..20 kHz: max dB minus min dB.
    pub deviation_db: f64,
    /// Level change at 1 kHz, 20 log10 |H(1 kHz)|, dB (negative = quieter).
    pub level_1k_db: f64,
    /// Plain-English warning when Zo > Z_nominal / 8.
    pub warning: Option<String>,
}

/// Report for a built-in model, or for a custom curve when `curve` is given.
/// Allocates (the warning text): call it off the audio thread.
pub fn load_report(
    model: HeadphoneModel,
    curve: Option<&ImpedanceCurve>,
    zo_ohms: f64,
) -> LoadReport {
    let z_of = |f: f64| -> C64 {
        match (model, curve) {
            (HeadphoneModel::Custom, Some(c)) => c.impedance(f),
            _ => model.impedance(f),
        }
    };
    let nominal = match (model, curve) {
        (HeadphoneModel::Custom, Some(c)) => c.nominal_ohms(),
        _ => model.nominal_ohms(),
    };
    let zo = zo_ohms.max(0.0);
    let h_db = |f: f64| {
        let z = z_of(f);
        20.0 * (z / (z + zo)).norm().log10()
    };
    let n = (48.0 * (1000.0f64).log2()) as usize;
    let level = h_db(1000.0);
    // The span, and where its top and bottom are (they name the change:
    // e.g. a treble rise over the bass for an IEM, a bass rise for a
    // dynamic driver's resonance peak).
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut lo_hz, mut hi_hz) = (1000.0, 1000.0);
    for k in 0..=n {
        let f = 20.0 * 1000f64.powf(k as f64 / n as f64);
        let d = h_db(f);
        if d < lo {
            lo = d;
            lo_hz = f;
        }
        if d > hi {
            hi = d;
            hi_hz = f;
        }
    }
    let deviation = hi - lo;
    let region = |f: f64| {
        if f < 250.0 {
            "bass"
        } else if f < 4000.0 {
            "midrange"
        } else {
            "treble"
        }
    };
    let warning = (zo > nominal / 8.0).then(|| {
        let (up, down) = (region(hi_hz), region(lo_hz));
        let shape = if up == down {
            format!("a {deviation:.1} dB {up} ripple")
        } else {
            format!("a {deviation:.1} dB {up} rise over the {down}")
        };
        format!(
            "Output impedance {} ohm is above 1/8 of the headphone's {} ohm: expect {} (peak near {}) and {:.1} dB less level.",
            fmt_ohms(zo),
            fmt_ohms(nominal),
            shape,
            fmt_hz(hi_hz),
            -level
        )
    });
    LoadReport {
        nominal_ohms: nominal,
        damping_factor: if zo > 0.0 {
            nominal / zo
        } else {
            f64::INFINITY
        },
        deviation_db: deviation,
        level_1k_db: level,
        warning,
    }
}

fn fmt_hz(f: f64) -> String {
    if f >= 1000.0 {
        format!("{:.1} kHz", f / 1000.0)
    } else {
        format!("{:.0} Hz", f)
    }
}

fn fmt_ohms(x: f64) -> String {
    if (x - x.round()).abs() < 1e-9 {
        format!("{}", x.round())
    } else {
        format!("{:.1}", x)
    }
}
