//! The built-in headphone loads: their electrical networks with the
//! component values, and their digital design at one sample rate.
//!
//! Each model is a lumped moving-coil driver (Thiele/Small electrical
//! analogue), Z = Re + s Le + (1/Res + 1/(s Lces) + s Cmes)^-1 with
//! Lces = Res / (w0 Q), Cmes = Q / (w0 Res), or, for the IEM, a network of
//! two such branches (the numbers are on each `HeadphoneModel` variant).
//! The same network is built twice: as a complex impedance for the
//! analytic response (`HeadphoneModel::impedance`) and as a rational
//! function in s for the digital design (`divider::Rat`).
//!
//! Discretisation (details in `headphone/fit.rs` and `crate::dsp::divider`).
//! The admittance Y(s) is bilinear-transformed into a positive-real
//! cascade Y_b(z) of 1..3 biquads, and the stage solves the delay-free
//! loop v = x - Zo * Y_b v per sample (Y_b has a direct term b, so
//! v = (x - Zo*o)/(1 + Zo*b) with o the zero-input part of the cascade);
//! the loop is stable for every Zo >= 0. Its warping near the top of the
//! band is removed by a correction C(z) = N(z) / (1 + 0.85 z^-1)^2 with a
//! 12-tap FIR N fitted (complex weighted least squares, Lawson
//! reweighting) so that 1/(1 + Zo Y_b) * C = z^-4 Z/(Z + Zo) on
//! 20 Hz..20 kHz only; 20 kHz to Nyquist is left free. N is designed on 16 values of ln(1 + Zo)
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
//! across channels with `HeadphoneAmp::prepare_with`).

use super::fit::{self, GRID, LATENCY, TAPS};
use super::C64;
use crate::dsp::divider::{self, Rat, BETA};
use std::f64::consts::PI;

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
    /// 300 ohm open-back dynamic (HD 600/650 class, docs/DESIGN.md): Re 300,
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
    fn rat(&self) -> Rat {
        let (l, c) = self.lces_cmes();
        let motional = Rat::resistor(self.res_ohms)
            .parallel(&Rat::inductor(l))
            .parallel(&Rat::capacitor(c));
        let mut r = Rat::resistor(self.re_ohms).series(&motional);
        if self.le_henries > 0.0 {
            r = r.series(&Rat::inductor(self.le_henries));
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

    fn rat(self) -> Rat {
        if let Some(d) = self.driver() {
            return d.rat();
        }
        let woofer = IEM_WOOFER
            .rat()
            .series(&Rat::inductor(IEM_WOOFER_L_H).parallel(&Rat::resistor(IEM_WOOFER_LOSS_OHMS)));
        let tweeter = Rat::capacitor(IEM_XOVER_F)
            .series(&Rat::resistor(IEM_TWEETER_OHMS))
            .series(&Rat::inductor(IEM_TWEETER_L_H));
        woofer.parallel(&tweeter)
    }

    /// Position in `BUILT_IN_MODELS` (and in `LoadDesigns::loads`).
    pub(super) fn index(self) -> usize {
        BUILT_IN_MODELS.iter().position(|m| *m == self).unwrap_or(0)
    }
}

/// Largest number of biquads of a load's loop admittance.
pub(super) const MAX_SECTIONS: usize = 4;

/// One built-in load designed at one sample rate.
#[derive(Clone, Copy, Debug)]
pub(super) struct LoadDesign {
    /// Bilinear-transformed admittance Y_b(z) as biquads [b0, b1, b2, a1,
    /// a2], gain folded into the first; positive real, so the loop
    /// 1 / (1 + Zo Y_b) is stable for every Zo >= 0.
    pub(super) sections: [[f64; 5]; MAX_SECTIONS],
    /// Number of sections in use.
    pub(super) n: usize,
    /// Direct (instantaneous) gain of Y_b: the product of the b0s. The
    /// delay-free loop is solved with it.
    pub(super) direct: f64,
    /// Correction FIR numerators, one per Zo grid point (uniform in
    /// ln(1 + Zo)); interpolated linearly at run time.
    pub(super) taps: [[f64; TAPS]; GRID],
    /// Worst complex relative error of the correction fit on its points.
    pub(super) fit_error: f64,
}

impl LoadDesign {
    /// The flat load: no loop, and a correction whose numerator cancels
    /// its double pole, leaving the LATENCY-sample delay (what an
    /// unprepared stage runs).
    pub(super) fn flat() -> Self {
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

    /// `model` designed at `fs` (correction fitted on `grid`).
    pub(super) fn design(model: HeadphoneModel, grid: &fit::FitGrid, fs: f64) -> LoadDesign {
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
    pub(super) fn taps_at(&self, u: f64, out: &mut [f64; TAPS]) {
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
    pub(super) fn response(&self, zo: f64, freq_hz: f64, fs: f64) -> C64 {
        if fs <= 0.0 {
            return C64::new(1.0, 0.0);
        }
        let w = 2.0 * PI * freq_hz / fs;
        let zi = C64::from_polar(1.0, -w);
        let y = divider::cascade(&self.sections[..self.n], zi);
        let mut taps = [0.0; TAPS];
        self.taps_at(zo.max(0.0).ln_1p(), &mut taps);
        divider::correction_response(&taps, zi) / (1.0 + zo * y)
            * C64::from_polar(1.0, w * LATENCY as f64)
    }
}

/// Every built-in load designed at one sample rate. Designing takes a few
/// ms; a chain designs once with `design_loads` and hands a clone to each
/// channel's `HeadphoneAmp::prepare_with`.
#[derive(Clone, Debug)]
pub struct LoadDesigns {
    /// Sample rate of the designs, Hz.
    pub(super) sample_rate_hz: f64,
    /// One design per entry of `BUILT_IN_MODELS`.
    pub(super) loads: Vec<LoadDesign>,
}

impl LoadDesigns {
    /// Sample rate the designs were made for, Hz.
    pub fn sample_rate_hz(&self) -> f64 {
        self.sample_rate_hz
    }
}

/// Designs every built-in load at `sample_rate` (allocates; a few ms).
pub fn design_loads(sample_rate: f64) -> LoadDesigns {
    let grid = fit::FitGrid::new(sample_rate, LATENCY, 20_000.0f64.min(0.45 * sample_rate));
    LoadDesigns {
        sample_rate_hz: sample_rate,
        loads: BUILT_IN_MODELS
            .iter()
            .map(|m| LoadDesign::design(*m, &grid, sample_rate))
            .collect(),
    }
}
