//! Digital design of a headphone load: a passive loop filter plus a short
//! per-Zo correction, both made in the digital domain.
//!
//! 1. The analog admittance Y(s) = 1/Z(s) (a rational function built from
//!    the circuit's resistors, inductors and capacitors) goes through the
//!    bilinear transform: its roots are found (Durand-Kerner) and mapped
//!    with z = (2 fs + s) / (2 fs - s), so the cascade Y_b(z) is stable and
//!    positive real (Re Y_b >= 0 on the unit circle). The stage closes the
//!    loop v = x - Zo Y_b v around it, which is stable for every Zo >= 0
//!    and gives H_b = 1 / (1 + Zo Y_b): right at low frequencies, warped
//!    near the top (at 44.1 kHz, 20 kHz sees the analog load at ~95 kHz).
//! 2. A correction C(z) = N(z) / (1 + BETA z^-1)^2 with an FIR numerator of
//!    TAPS taps and a fixed double pole is fitted so that
//!    H_b C ~= z^-LATENCY Z / (Z + Zo) on 20 Hz .. 20 kHz only (complex,
//!    relative error, weighted least squares with Lawson reweighting toward
//!    minimax). Between 20 kHz and Nyquist nothing is imposed (a tiny ridge
//!    keeps the taps bounded). The LATENCY-sample delay is what makes the
//!    fit exact: the warped-to-exact correction is slightly two-sided in
//!    time, so no causal zero-latency filter of low order can match both
//!    magnitude and phase up to 20 kHz at 44.1 kHz (measured: minimum-phase
//!    and causal fits push their poles onto the unit circle and still miss
//!    by 0.1 .. 0.6 dB).
//! 3. N depends on Zo. It is designed on a grid of GRID points uniform in
//!    u = ln(1 + Zo / 1 ohm) (0 .. 10 kohm) and interpolated linearly in u
//!    at run time. Interpolating FIR taps cannot make anything unstable.
//!
//! The normal equations of the fit are Toeplitz (the unknowns are taps of
//! one FIR), so each solve costs O(points * taps); designing all loads at a
//! rate takes a few ms.
//!
//! Everything here allocates and runs in `prepare()` / `design_loads()`
//! (never on the audio thread).

use num_complex::Complex;
use std::f64::consts::PI;

type C64 = Complex<f64>;

/// Angular reference frequency (2 pi 1 kHz) that normalises s so the
/// polynomial coefficients stay near unity.
pub(super) const W_REF: f64 = 2.0 * PI * 1000.0;

/// A polynomial in normalised s, coefficients in ascending powers.
#[derive(Clone, Debug)]
pub(super) struct Poly(pub Vec<f64>);

impl Poly {
    pub fn constant(c: f64) -> Self {
        Poly(vec![c])
    }
    pub fn add(&self, o: &Poly) -> Poly {
        let n = self.0.len().max(o.0.len());
        let mut v = vec![0.0; n];
        for (i, c) in self.0.iter().enumerate() {
            v[i] += c;
        }
        for (i, c) in o.0.iter().enumerate() {
            v[i] += c;
        }
        Poly(v)
    }
    pub fn mul(&self, o: &Poly) -> Poly {
        let mut v = vec![0.0; self.0.len() + o.0.len() - 1];
        for (i, a) in self.0.iter().enumerate() {
            for (j, b) in o.0.iter().enumerate() {
                v[i + j] += a * b;
            }
        }
        Poly(v)
    }
    /// Drops negligible highest-order coefficients.
    fn trimmed(&self) -> Poly {
        let scale = self.0.iter().fold(0.0f64, |m, c| m.max(c.abs()));
        let mut v = self.0.clone();
        while v.len() > 1 && v.last().is_some_and(|c| c.abs() <= scale * 1e-14) {
            v.pop();
        }
        Poly(v)
    }
}

/// An impedance N(s)/D(s) in normalised s (s = jw / W_REF).
#[derive(Clone, Debug)]
pub(super) struct Rat {
    pub num: Poly,
    pub den: Poly,
}

impl Rat {
    pub fn resistor(r: f64) -> Rat {
        Rat {
            num: Poly::constant(r),
            den: Poly::constant(1.0),
        }
    }
    pub fn inductor(l: f64) -> Rat {
        Rat {
            num: Poly(vec![0.0, l * W_REF]),
            den: Poly::constant(1.0),
        }
    }
    pub fn capacitor(c: f64) -> Rat {
        Rat {
            num: Poly::constant(1.0),
            den: Poly(vec![0.0, c * W_REF]),
        }
    }
    pub fn series(&self, o: &Rat) -> Rat {
        Rat {
            num: self.num.mul(&o.den).add(&o.num.mul(&self.den)),
            den: self.den.mul(&o.den),
        }
    }
    pub fn parallel(&self, o: &Rat) -> Rat {
        Rat {
            num: self.num.mul(&o.num),
            den: self.num.mul(&o.den).add(&o.num.mul(&self.den)),
        }
    }
}

/// Roots of a real polynomial (ascending coefficients) by Durand-Kerner,
/// polished with Newton steps.
fn roots(p: &Poly) -> Vec<C64> {
    let p = p.trimmed();
    let n = p.0.len() - 1;
    if n == 0 {
        return Vec::new();
    }
    let lead = p.0[n];
    let a: Vec<f64> = p.0.iter().map(|c| c / lead).collect();
    let eval = |z: C64| -> C64 {
        let mut acc = C64::new(0.0, 0.0);
        for c in a.iter().rev() {
            acc = acc * z + c;
        }
        acc
    };
    let deval = |z: C64| -> C64 {
        let mut acc = C64::new(0.0, 0.0);
        for (k, c) in a.iter().enumerate().skip(1).rev() {
            acc = acc * z + c * k as f64;
        }
        acc
    };
    // Cauchy bound for the starting circle.
    let radius = 1.0 + a[..n].iter().fold(0.0f64, |m, c| m.max(c.abs()));
    let mut z: Vec<C64> = (0..n)
        .map(|k| {
            C64::from_polar(
                radius * (0.3 + 0.7 * (k as f64 + 1.0) / n as f64),
                0.4 + 2.0 * PI * k as f64 / n as f64,
            )
        })
        .collect();
    for _ in 0..2000 {
        let mut moved = 0.0f64;
        for i in 0..n {
            let mut den = C64::new(1.0, 0.0);
            for j in 0..n {
                if i != j {
                    den *= z[i] - z[j];
                }
            }
            if den.norm() == 0.0 {
                den = C64::new(1e-12, 0.0);
            }
            let step = eval(z[i]) / den;
            z[i] -= step;
            moved = moved.max(step.norm() / (1.0 + z[i].norm()));
        }
        if moved < 1e-15 {
            break;
        }
    }
    for zi in z.iter_mut() {
        for _ in 0..3 {
            let d = deval(*zi);
            if d.norm() > 0.0 {
                let step = eval(*zi) / d;
                if step.is_finite() {
                    *zi -= step;
                }
            }
        }
    }
    z
}

/// A biquad section in normalised form: y = b0 x + b1 x1 + b2 x2 - a1 y1 - a2 y2.
pub(super) type Section = [f64; 5];

/// Samples of delay that the correction uses (the stage's latency).
pub(super) const LATENCY: usize = 4;
/// Taps of the correction FIR numerator.
pub(super) const TAPS: usize = 12;
/// Pole of the fixed double-pole correction denominator (1 + BETA z^-1)^2.
pub(super) const BETA: f64 = 0.85;
/// Points of the Zo grid.
pub(super) const GRID: usize = 16;
/// Largest Zo of the grid, ohms (above it the last taps are used).
pub(super) const GRID_MAX_OHMS: f64 = 10_000.0;
/// Frequency points of the fit.
const POINTS: usize = 160;
/// Lawson reweighting passes after the first least-squares solve.
const LAWSON: usize = 8;

/// u = ln(1 + Zo) of grid point k.
pub(super) fn grid_u(k: usize) -> f64 {
    GRID_MAX_OHMS.ln_1p() * k as f64 / (GRID - 1) as f64
}

fn eval_poly(p: &[f64], x: C64) -> C64 {
    p.iter()
        .rev()
        .fold(C64::new(0.0, 0.0), |acc, c| acc * x + c)
}

/// Cascade response at z^-1 = `zi`.
pub(super) fn cascade(secs: &[Section], zi: C64) -> C64 {
    let z2 = zi * zi;
    secs.iter()
        .map(|s| (s[0] + zi * s[1] + z2 * s[2]) / (1.0 + zi * s[3] + z2 * s[4]))
        .product()
}

/// z-domain polynomials (in z^-1, leading 1) of degree <= 2 from roots
/// (conjugate pairs and real pairs grouped; `extra_nyquist` roots at
/// z = -1 appended).
fn group_roots(rs: &[C64], extra_nyquist: usize) -> Vec<[f64; 3]> {
    let mut out = Vec::new();
    let mut reals: Vec<f64> = Vec::new();
    let mut used = vec![false; rs.len()];
    for i in 0..rs.len() {
        if used[i] {
            continue;
        }
        used[i] = true;
        let r = rs[i];
        if r.im.abs() <= 1e-9 * r.norm().max(1e-12) {
            reals.push(r.re);
            continue;
        }
        let partner = (0..rs.len()).filter(|j| !used[*j]).min_by(|a, b| {
            (rs[*a] - r.conj())
                .norm()
                .total_cmp(&(rs[*b] - r.conj()).norm())
        });
        if let Some(j) = partner {
            used[j] = true;
        }
        out.push([1.0, -2.0 * r.re, r.norm_sqr()]);
    }
    reals.extend(std::iter::repeat_n(-1.0, extra_nyquist));
    reals.sort_by(f64::total_cmp);
    for pair in reals.chunks(2) {
        if pair.len() == 2 {
            out.push([1.0, -(pair[0] + pair[1]), pair[0] * pair[1]]);
        } else {
            out.push([1.0, -pair[0], 0.0]);
        }
    }
    out
}

/// Bilinear transform of the admittance Y = 1 / `z_rat` at rate `fs` as a
/// cascade of biquads, each scaled to unit gain at 1 kHz, the overall gain
/// in the first section.
pub(super) fn bilinear_admittance(z_rat: &Rat, fs: f64) -> Vec<Section> {
    let num = z_rat.den.trimmed(); // numerator of Y
    let den = z_rat.num.trimmed(); // denominator of Y
    let to_z = |r: &C64| {
        let s = *r * W_REF;
        (2.0 * fs + s) / (2.0 * fs - s)
    };
    let zz: Vec<C64> = roots(&num).iter().map(to_z).collect();
    let pz: Vec<C64> = roots(&den).iter().map(to_z).collect();
    let (nz, np) = (zz.len(), pz.len());
    let zg = group_roots(&zz, np.saturating_sub(nz));
    let pg = group_roots(&pz, nz.saturating_sub(np));
    let n = zg.len().max(pg.len());
    let mut secs: Vec<Section> = (0..n)
        .map(|i| {
            let b = zg.get(i).copied().unwrap_or([1.0, 0.0, 0.0]);
            let a = pg.get(i).copied().unwrap_or([1.0, 0.0, 0.0]);
            [b[0], b[1], b[2], a[1], a[2]]
        })
        .collect();
    let w1 = 2.0 * PI * 1000.0 / fs;
    let zi = C64::from_polar(1.0, -w1);
    for s in secs.iter_mut() {
        let g = cascade(std::slice::from_ref(s), zi).norm();
        if g > 0.0 && g.is_finite() {
            s[0] /= g;
            s[1] /= g;
            s[2] /= g;
        }
    }
    // The bilinear transform maps z = e^{j w1} to s = j 2 fs tan(w1 / 2).
    let x = C64::new(0.0, 2.0 * fs * (0.5 * w1).tan() / W_REF);
    let target = eval_poly(&num.0, x) / eval_poly(&den.0, x);
    let g = (target / cascade(&secs, zi)).re;
    if let Some(s) = secs.first_mut() {
        s[0] *= g;
        s[1] *= g;
        s[2] *= g;
    }
    secs
}

/// Rate-dependent tables shared by the correction fits of all loads.
pub(super) struct FitGrid {
    /// Frequencies of the fit points, Hz.
    pub freqs_hz: Vec<f64>,
    /// e^{-j w} at each point.
    zi: Vec<C64>,
    /// cos(d w) for d in 0..TAPS, row per point.
    cos: Vec<[f64; TAPS]>,
    /// e^{j k w} for k in 0..TAPS, row per point.
    ejk: Vec<[C64; TAPS]>,
    /// 1 / (1 + BETA e^{-jw})^2 * e^{+j LATENCY w}: the fixed part of the
    /// correction with the latency removed.
    fixed: Vec<C64>,
}

impl FitGrid {
    pub fn new(fs: f64) -> FitGrid {
        let f_hi = 20_000.0f64.min(0.45 * fs);
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
            fixed.push(C64::from_polar(1.0, LATENCY as f64 * w) / (p * p));
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

/// Correction taps for one load at every grid Zo, and the worst complex
/// relative error of the fit on its points.
pub(super) fn design_correction(
    g: &FitGrid,
    secs: &[Section],
    z_exact: &dyn Fn(f64) -> C64,
) -> ([[f64; TAPS]; GRID], f64) {
    let n = g.freqs_hz.len();
    let z: Vec<C64> = g.freqs_hz.iter().map(|f| z_exact(*f)).collect();
    let yb: Vec<C64> = g.zi.iter().map(|zi| cascade(secs, *zi)).collect();
    let mut taps = [[0.0; TAPS]; GRID];
    let mut worst = 0.0f64;
    // Per-point work arrays.
    let mut gm = vec![C64::new(0.0, 0.0); n]; // H_b * fixed part
    let mut t = vec![C64::new(0.0, 0.0); n]; // target H
    let mut w0 = vec![0.0; n]; // 1 / |H|^2
    let mut law = vec![1.0; n];
    for (k, out) in taps.iter_mut().enumerate() {
        let zo = grid_u(k).exp_m1();
        for i in 0..n {
            t[i] = z[i] / (z[i] + zo);
            gm[i] = g.fixed[i] / (1.0 + zo * yb[i]);
            w0[i] = 1.0 / t[i].norm_sqr();
            law[i] = 1.0;
        }
        let mut c = [0.0; TAPS];
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
                worst = worst.max(emax);
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
        *out = c;
    }
    (taps, worst)
}

/// Solves the symmetric positive definite system a x = b.
fn cholesky_solve(mut a: [[f64; TAPS]; TAPS], mut b: [f64; TAPS]) -> Option<[f64; TAPS]> {
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
