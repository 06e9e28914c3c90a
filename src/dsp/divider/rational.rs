//! Rational functions of normalised s: polynomials, impedances N(s)/D(s)
//! built from resistors, inductors and capacitors in series and parallel,
//! and polynomial roots.
//!
//! s is normalised by W_REF (s = j w / W_REF) so the coefficients of
//! audio-band networks stay near unity. The same network is usually also
//! written as a complex impedance for the analytic response; the two are
//! checked against each other by the users' tests.

use num_complex::Complex;
use std::f64::consts::PI;

type C64 = Complex<f64>;

/// Angular reference frequency (2 pi 1 kHz) that normalises s so the
/// polynomial coefficients stay near unity.
pub(crate) const W_REF: f64 = 2.0 * PI * 1000.0;

/// A polynomial in normalised s, coefficients in ascending powers.
#[derive(Clone, Debug)]
pub(crate) struct Poly(pub Vec<f64>);

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
    pub(crate) fn trimmed(&self) -> Poly {
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
pub(crate) struct Rat {
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
pub(crate) fn roots(p: &Poly) -> Vec<C64> {
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

/// p(x) for ascending coefficients `p`.
pub(crate) fn eval_poly(p: &[f64], x: C64) -> C64 {
    p.iter()
        .rev()
        .fold(C64::new(0.0, 0.0), |acc, c| acc * x + c)
}
