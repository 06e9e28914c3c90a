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

/// One running load: the delay-free loop v = x - Zo Y_b v, then the
/// correction N(z) / (1 + BETA z^-1)^2.
#[derive(Clone, Copy, Debug)]
struct Path {
    /// Index of the load in `LoadDesigns::loads`.
    load: usize,
    /// The loop admittance sections (copied for locality).
    sections: [[f64; 5]; MAX_SECTIONS],
    /// Number of sections in use.
    n: usize,
    /// Direct gain of the admittance.
    direct: f64,
    /// 1 / (1 + Zo * direct) at the current Zo.
    inv_loop: f64,
    /// Zo * inv_loop: weight of the cascade's zero-input response in v.
    k_loop: f64,
    /// Transposed direct-form II states per section.
    state: [[f64; 2]; MAX_SECTIONS],
    /// Correction taps at the current Zo.
    taps: [f64; TAPS],
    /// Loop output history, stored twice so `hist[pos..pos + TAPS]` is the
    /// newest-first window without wrapping.
    hist: [f64; 2 * TAPS],
    /// Write position in `hist`.
    pos: usize,
    /// States of the fixed double pole (previous two outputs).
    post: [f64; 2],
}

impl Path {
    fn new(load: usize, d: &LoadDesign) -> Self {
        Path {
            load,
            sections: d.sections,
            n: d.n,
            direct: d.direct,
            inv_loop: 1.0,
            k_loop: 0.0,
            state: [[0.0; 2]; MAX_SECTIONS],
            taps: d.taps[0],
            hist: [0.0; 2 * TAPS],
            pos: 0,
            post: [0.0; 2],
        }
    }

    #[inline]
    fn set_zo(&mut self, d: &LoadDesign, zo: f64, u: f64) {
        self.inv_loop = 1.0 / (1.0 + zo * self.direct);
        self.k_loop = zo * self.inv_loop;
        d.taps_at(u, &mut self.taps);
    }

    /// One sample: (corrected output, loop voltage, loop current).
    #[inline]
    fn tick(&mut self, x: f64) -> (f64, f64, f64) {
        match self.n {
            0 => self.tick_n::<0>(x),
            1 => self.tick_n::<1>(x),
            2 => self.tick_n::<2>(x),
            3 => self.tick_n::<3>(x),
            _ => self.tick_n::<MAX_SECTIONS>(x),
        }
    }

    /// `tick` with the section count known at compile time (unrolled).
    /// Unused sections are identity sections (b0 = 1, the rest 0), so
    /// running `MAX_SECTIONS` is also correct, only slower.
    #[inline(always)]
    fn tick_n<const N: usize>(&mut self, x: f64) -> (f64, f64, f64) {
        let secs = &self.sections[..N];
        let st = &mut self.state[..N];
        // Zero-input response of the cascade.
        let mut o = 0.0;
        for (s, z) in secs.iter().zip(st.iter()) {
            o = s[0] * o + z[0];
        }
        let v = x * self.inv_loop - self.k_loop * o;
        let mut u = v;
        for (s, z) in secs.iter().zip(st.iter_mut()) {
            let y = s[0] * u + z[0];
            z[0] = s[1] * u - s[3] * y + z[1];
            z[1] = s[2] * u - s[4] * y;
            u = y;
        }
        // Correction FIR on the loop voltage.
        self.pos = if self.pos == 0 {
            TAPS - 1
        } else {
            self.pos - 1
        };
        self.hist[self.pos] = v;
        self.hist[self.pos + TAPS] = v;
        let h = &self.hist[self.pos..self.pos + TAPS];
        let acc: f64 = self.taps.iter().zip(h).map(|(t, v)| t * v).sum();
        let out = (acc - (BETA * BETA) * self.post[1]) - (2.0 * BETA) * self.post[0];
        self.post[1] = self.post[0];
        self.post[0] = out;
        (out, v, u)
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
        self.state.iter_mut().flatten().for_each(tiny);
        self.post.iter_mut().for_each(tiny);
    }

    fn reset(&mut self) {
        self.state = [[0.0; 2]; MAX_SECTIONS];
        self.hist = [0.0; 2 * TAPS];
        self.pos = 0;
        self.post = [0.0; 2];
    }
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
    /// Rail voltage of the swing limit.
    rail: f64,
    /// Metering coefficient (300 ms).
    meter_coeff: f64,
    /// Mean square voltage.
    ms_v: f64,
    /// Mean square current.
    ms_i: f64,
    /// Mean power.
    mean_p: f64,
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
            meter_coeff: 1.0,
            ms_v: 0.0,
            ms_i: 0.0,
            mean_p: 0.0,
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
        let fs = spec.sample_rate;
        self.fs = fs;
        self.fade_len = ((FADE_MS * 1e-3 * fs) as usize).max(1);
        self.smooth = smoothing_coeff(FADE_MS / 4.0, fs);
        self.meter_coeff = smoothing_coeff(300.0, fs);
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
        self.rail = sanitize(s.swing_volts, 1e-6, 1e6, 10.0);
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
        if bad || block.iter().any(|v| !v.is_finite()) {
            self.reset();
            block.iter_mut().for_each(|v| *v = 0.0);
        }
    }

    /// Built-in load, no parameter moving: the tight loop.
    fn process_steady(&mut self, block: &mut [f64]) {
        let (gain, rail, post, mc) = (self.gain, self.rail, self.post, self.meter_coeff);
        let (mut ms_v, mut ms_i, mut mean_p) = (self.ms_v, self.ms_i, self.mean_p);
        let path = &mut self.active;
        for x in block.iter_mut() {
            let input = if x.is_finite() { *x } else { 0.0 };
            let drive = soft_rail(input * gain, rail);
            let (y, v, i) = path.tick(drive);
            let out = y * post;
            ms_v += mc * (out * out - ms_v);
            ms_i += mc * (i * i - ms_i);
            mean_p += mc * (v * i - mean_p);
            *x = out;
        }
        self.ms_v = ms_v;
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
            self.ms_v += mc * (out * out - self.ms_v);
            self.ms_i += mc * (i * i - self.ms_i);
            self.mean_p += mc * (v * i - self.mean_p);
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
