//! The correction that takes a bilinear-transformed response H_b(z) to
//! its analog target H(jw), delayed: C(z) = N(z) / (1 + BETA z^-1)^2 with
//! an FIR numerator N of TAPS taps and a fixed double pole, fitted so that
//! H_b C ~= z^-latency H on 20 Hz .. 20 kHz only. TAPS (a const generic)
//! and the latency are the user's choice: the longer the latency, the
//! closer the fit (the exact correction is slightly two-sided in time).
//!
//! The fit is complex and relative (each point weighted by 1 / |H|^2):
//! weighted least squares, then LAWSON passes of Lawson reweighting (each
//! point's weight multiplied by its error) toward the minimax solution.
//! Between 20 kHz and Nyquist nothing is imposed; a tiny ridge (1e-9 of
//! the diagonal) keeps the taps bounded. The unknowns are the taps of one
//! FIR, so the normal equations are Toeplitz, built in O(points * taps),
//! and solved by Cholesky.

use crate::dsp::fma::MulAdd;
use crate::dsp::simd::{mad, Arith};
use num_complex::Complex;
use std::f64::consts::PI;

type C64 = Complex<f64>;

/// Pole of the fixed double-pole correction denominator (1 + BETA z^-1)^2.
pub(crate) const BETA: f64 = 0.85;

/// One sample of the fixed double pole 1 / (1 + BETA z^-1)^2 applied to
/// the correction FIR's output `acc`; `p` holds its previous two outputs
/// (newest first).
/// Generic over the lanes `L` (one channel in `f64`, a stereo pair in
/// `F2`: each lane computes what `f64` does).
#[inline(always)]
pub(crate) fn double_pole<L: Arith>(acc: L, p: &mut [L; 2]) -> L {
    let y = (acc - L::splat(BETA * BETA) * p[1]) - L::splat(2.0 * BETA) * p[0];
    *p = [y, p[0]];
    y
}

/// [`double_pole`] with its last multiply-add as build `M` says: bit for
/// bit `double_pole` in the portable build (`−2β·p0 + (acc − β²·p1)` is
/// the same sum), fused in the FMA build (one rounding less, and one
/// fused operation instead of a multiply and a subtraction on the
/// loop-carried path).
#[inline(always)]
pub(crate) fn double_pole_mad<M: MulAdd, L: Arith>(acc: L, p: &mut [L; 2]) -> L {
    let y = mad::<M, L>(
        L::splat(-2.0 * BETA),
        p[0],
        acc - L::splat(BETA * BETA) * p[1],
    );
    *p = [y, p[0]];
    y
}

/// The correction N(z) / (1 + BETA z^-1)^2 at z^-1 = `zi`, for the FIR
/// taps `taps` (in order of delay).
pub(crate) fn correction_response(taps: &[f64], zi: C64) -> C64 {
    let p = 1.0 + BETA * zi;
    super::eval_poly(taps, zi) / (p * p)
}
/// Frequency points of the fit.
const POINTS: usize = 160;
/// Lawson reweighting passes after the first least-squares solve.
const LAWSON: usize = 8;

/// Rate-dependent tables shared by every correction fit at one rate.
pub(crate) struct FitGrid<const TAPS: usize> {
    /// Frequencies of the fit points, Hz.
    pub freqs_hz: Vec<f64>,
    /// e^{-j w} at each point.
    pub zi: Vec<C64>,
    /// cos(d w) for d in 0..TAPS, row per point.
    cos: Vec<[f64; TAPS]>,
    /// e^{j k w} for k in 0..TAPS, row per point.
    ejk: Vec<[C64; TAPS]>,
    /// 1 / (1 + BETA e^{-jw})^2 * e^{+j latency w}: the fixed part of the
    /// correction with the latency removed.
    pub fixed: Vec<C64>,
}

impl<const TAPS: usize> FitGrid<TAPS> {
    /// The fit points at rate `fs`, 20 Hz .. `top_hz`, for a correction
    /// of `latency` samples.
    pub fn new(fs: f64, latency: usize, top_hz: f64) -> Self {
        let f_hi = top_hz;
        let (lo, hi) = (20.0f64.ln(), f_hi.ln());
        let freqs_hz: Vec<f64> = (0..POINTS)
            .map(|i| (lo + (hi - lo) * i as f64 / (POINTS - 1) as f64).exp())
            .collect();
        let mut zi = Vec::with_capacity(POINTS);
        let mut cos = Vec::with_capacity(POINTS);
        let mut ejk = Vec::with_capacity(POINTS);
        let mut fixed = Vec::with_capacity(POINTS);
        for f in &freqs_hz {
            let w = 2.0 * PI * f / fs;
            let z = C64::from_polar(1.0, -w);
            zi.push(z);
            cos.push(std::array::from_fn(|d| (d as f64 * w).cos()));
            ejk.push(std::array::from_fn(|k| C64::from_polar(1.0, k as f64 * w)));
            let p = 1.0 + BETA * z;
            fixed.push(C64::from_polar(1.0, latency as f64 * w) / (p * p));
        }
        FitGrid {
            freqs_hz,
            zi,
            cos,
            ejk,
            fixed,
        }
    }
}

/// Fits the correction numerator: taps N such that
/// `uncorrected[i]` * N(e^{j w_i}) ~= `target[i]` at the points of `g`,
/// where `uncorrected[i]` is the digital response H_b at point i already
/// multiplied by `g.fixed[i]` (the double pole, latency removed). Returns
/// the taps and the worst complex relative error |H_b C - H| / |H| on the
/// points after the last pass.
pub(crate) fn fit_correction<const TAPS: usize>(
    g: &FitGrid<TAPS>,
    uncorrected: &[C64],
    target: &[C64],
) -> ([f64; TAPS], f64) {
    let n = g.freqs_hz.len();
    let (gm, t) = (uncorrected, target);
    let w0: Vec<f64> = t.iter().map(|ti| 1.0 / ti.norm_sqr()).collect(); // 1 / |H|^2
    let mut law = vec![1.0; n];
    let mut c = [0.0; TAPS];
    let mut worst = 0.0f64;
    for pass in 0..=LAWSON {
        // Toeplitz normal equations: A_jk = r[|j-k|], rhs b_j.
        let mut r = [0.0; TAPS];
        let mut b = [0.0; TAPS];
        for i in 0..n {
            let wi = w0[i] * law[i];
            let gg = wi * gm[i].norm_sqr();
            let cr = &g.cos[i];
            for d in 0..TAPS {
                r[d] += gg * cr[d];
            }
            let q = gm[i].conj() * t[i] * wi;
            let ej = &g.ejk[i];
            for j in 0..TAPS {
                b[j] += (q * ej[j]).re;
            }
        }
        let mut a = [[0.0; TAPS]; TAPS];
        for (j, row) in a.iter_mut().enumerate() {
            for (l, v) in row.iter_mut().enumerate() {
                *v = r[j.abs_diff(l)];
            }
            row[j] += 1e-9 * r[0];
        }
        if let Some(x) = cholesky_solve(a, b) {
            c = x;
        }
        // Errors and Lawson update.
        let mut emax = 0.0f64;
        for i in 0..n {
            let ci: C64 = c.iter().zip(&g.ejk[i]).map(|(ck, e)| ck * e.conj()).sum();
            let e = (gm[i] * ci - t[i]).norm() * w0[i].sqrt();
            law[i] *= e;
            emax = emax.max(e);
        }
        if pass == LAWSON {
            worst = emax;
            break;
        }
        let mean = law.iter().sum::<f64>() / n as f64;
        if !(mean > 0.0 && mean.is_finite()) {
            break;
        }
        for l in law.iter_mut() {
            *l = *l / mean + 1e-3;
        }
    }
    (c, worst)
}

/// Solves the symmetric positive definite system a x = b.
fn cholesky_solve<const TAPS: usize>(
    mut a: [[f64; TAPS]; TAPS],
    mut b: [f64; TAPS],
) -> Option<[f64; TAPS]> {
    // Lower factor L stored in the lower triangle of `a`.
    for j in 0..TAPS {
        let d = a[j][j] - a[j][..j].iter().map(|v| v * v).sum::<f64>();
        if d <= 0.0 || !d.is_finite() {
            return None;
        }
        let d = d.sqrt();
        a[j][j] = d;
        for i in j + 1..TAPS {
            let dot: f64 = a[i][..j].iter().zip(&a[j][..j]).map(|(x, y)| x * y).sum();
            a[i][j] = (a[i][j] - dot) / d;
        }
    }
    // L y = b, then L^T x = y.
    for i in 0..TAPS {
        let dot: f64 = a[i][..i].iter().zip(&b[..i]).map(|(x, y)| x * y).sum();
        b[i] = (b[i] - dot) / a[i][i];
    }
    for i in (0..TAPS).rev() {
        let dot: f64 = (i + 1..TAPS).map(|k| a[k][i] * b[k]).sum();
        b[i] = (b[i] - dot) / a[i][i];
    }
    b.iter().all(|v| v.is_finite()).then_some(b)
}
