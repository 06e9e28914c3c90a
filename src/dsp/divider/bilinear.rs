//! The bilinear transform of a rational function of s into a cascade of
//! biquads, and the cascade's response.
//!
//! The roots of numerator and denominator are found (`rational::roots`)
//! and mapped one by one with z = (2 fs + s) / (2 fs - s) (so a pole in
//! the left half plane lands inside the unit circle, and a positive-real
//! function stays positive real); a function with more poles than zeros
//! (or more zeros than poles) gets the difference as roots at z = -1, the
//! image of s = infinity. Conjugate pairs and pairs of real roots make the
//! sections; each section is scaled to unit gain at 1 kHz and the overall
//! gain (the bilinear image of the analog function's value there) goes
//! into the first, so every intermediate signal stays near unity.

use super::rational::{eval_poly, roots, Poly, W_REF};
use num_complex::Complex;
use std::f64::consts::PI;

type C64 = Complex<f64>;

/// A biquad section in normalised form: y = b0 x + b1 x1 + b2 x2 - a1 y1 - a2 y2.
pub(crate) type Section = [f64; 5];

/// Cascade response at z^-1 = `zi`.
pub(crate) fn cascade(secs: &[Section], zi: C64) -> C64 {
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

/// Bilinear transform of `num(s) / den(s)` (normalised s) at rate `fs` as
/// a cascade of biquads, each scaled to unit gain at 1 kHz, the overall
/// gain in the first section.
pub(crate) fn bilinear(num: &Poly, den: &Poly, fs: f64) -> Vec<Section> {
    let num = num.trimmed();
    let den = den.trimmed();
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
    if secs.is_empty() {
        // A constant: one section to carry the gain.
        secs.push([1.0, 0.0, 0.0, 0.0, 0.0]);
    }
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
