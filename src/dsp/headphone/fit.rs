//! Digital design of a headphone load: a passive loop filter plus a short
//! per-Zo correction, both made in the digital domain (the machinery is
//! shared with the mic source: `crate::dsp::divider`).
//!
//! 1. The analog admittance Y(s) = 1/Z(s) (a rational function built from
//!    the circuit's resistors, inductors and capacitors) goes through the
//!    bilinear transform (`divider::bilinear`), so the cascade Y_b(z) is
//!    stable and positive real (Re Y_b >= 0 on the unit circle). The stage
//!    closes the loop v = x - Zo Y_b v around it, which is stable for every
//!    Zo >= 0 and gives H_b = 1 / (1 + Zo Y_b): right at low frequencies,
//!    warped near the top (at 44.1 kHz, 20 kHz sees the analog load at
//!    ~95 kHz).
//! 2. A correction C(z) = N(z) / (1 + BETA z^-1)^2 is fitted
//!    (`divider::fit_correction`) so that H_b C ~= z^-LATENCY Z / (Z + Zo)
//!    on 20 Hz .. 20 kHz.
//! 3. N depends on Zo. It is designed on a grid of GRID points uniform in
//!    u = ln(1 + Zo / 1 ohm) (0 .. 10 kohm) and interpolated linearly in u
//!    at run time. Interpolating FIR taps cannot make anything unstable.
//!
//! Designing all loads at a rate takes a few ms. Everything here allocates
//! and runs in `prepare()` / `design_loads()` (never on the audio thread).

use crate::dsp::divider::{self, Poly, Rat, Section};
use num_complex::Complex;

type C64 = Complex<f64>;

/// Samples of delay that the correction uses (the stage's latency).
pub(super) const LATENCY: usize = 4;
/// Taps of the correction FIR numerator.
pub(super) const TAPS: usize = 12;
/// The correction's fit points at one rate.
pub(super) type FitGrid = divider::FitGrid<TAPS>;
/// Points of the Zo grid.
pub(super) const GRID: usize = 16;
/// Largest Zo of the grid, ohms (above it the last taps are used).
pub(super) const GRID_MAX_OHMS: f64 = 10_000.0;

/// u = ln(1 + Zo) of grid point k.
pub(super) fn grid_u(k: usize) -> f64 {
    GRID_MAX_OHMS.ln_1p() * k as f64 / (GRID - 1) as f64
}

/// Bilinear transform of the admittance Y = 1 / `z_rat` at rate `fs` as a
/// cascade of biquads, each scaled to unit gain at 1 kHz, the overall gain
/// in the first section.
pub(super) fn bilinear_admittance(z_rat: &Rat, fs: f64) -> Vec<Section> {
    let (num, den): (&Poly, &Poly) = (&z_rat.den, &z_rat.num);
    divider::bilinear(num, den, fs)
}

/// Correction taps for one load at every grid Zo, and the worst complex
/// relative error of the fit on its points.
pub(super) fn design_correction(
    g: &FitGrid,
    secs: &[Section],
    z_exact: &dyn Fn(f64) -> C64,
) -> ([[f64; TAPS]; GRID], f64) {
    let n = g.freqs_hz.len();
    let z: Vec<C64> = g.freqs_hz.iter().map(|f| z_exact(*f)).collect();
    let yb: Vec<C64> = g.zi.iter().map(|zi| divider::cascade(secs, *zi)).collect();
    let mut taps = [[0.0; TAPS]; GRID];
    let mut worst = 0.0f64;
    let mut gm = vec![C64::new(0.0, 0.0); n]; // H_b * fixed part
    let mut t = vec![C64::new(0.0, 0.0); n]; // target H
    for (k, out) in taps.iter_mut().enumerate() {
        let zo = grid_u(k).exp_m1();
        for i in 0..n {
            t[i] = z[i] / (z[i] + zo);
            gm[i] = g.fixed[i] / (1.0 + zo * yb[i]);
        }
        let (c, err) = divider::fit_correction(g, &gm, &t);
        *out = c;
        worst = worst.max(err);
    }
    (taps, worst)
}
