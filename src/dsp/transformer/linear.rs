//! The linear part of the DI's transformer model: the maths that turns the
//! equivalent circuit into a cascade of digital sections.
//!
//! # Linear transfer function and discretisation
//!
//! The ladder is evaluated with polynomial ABCD arithmetic in `s` (from the
//! load back to the source; `DiBox::update_analog` in `transformer/di.rs`),
//! giving `H(s) = Vout/Vs = k s / D(s)` with D of degree 3 (resistive
//! source: Lm, Ll', C') or 5 (pickup: + Ls, Cs). The roots of D are found
//! with Laguerre's method and polished (fixed arrays, no allocation); the
//! filter is a cascade of one section per factor (`DiBox::update_digital`):
//! * `s/(s - p0)`, the magnetising pole with the zero at DC (the low corner,
//!   Rth/Lm, about 0.8 Hz for a line source): bilinear transform;
//! * every other real pole or complex pole pair, normalised to unity DC gain:
//!   a magnitude-matched design after Vicanek ("Matched Second Order Digital
//!   Filters", 2016): impulse-invariant (exact) poles, and three numerator
//!   taps that make the digital magnitude equal the analog one at DC, at the
//!   pole frequency (or 10 kHz) and at 20 kHz. A pole pair above 3/8 fs (the
//!   120 kHz leakage resonance at 88.2-192 kHz) would alias, and in the audio
//!   band it is only a gentle tail, so it becomes a 3-tap FIR matched the
//!   same way.
//! * One FIR section (that pair, or a real pole so far above the band that
//!   its feedback is nil: the mic transformer's second leakage pole, 875
//!   kHz into in_z 300, has e^(−114) at 48 kHz) is multiplied into the
//!   first section's numerator (the DC-zero factor's, of degree 1), which
//!   then has four taps (`Biquad::fold`): the same response, one section
//!   less per sample.
//!
//! Sections run in direct form I (one multiply-add in the loop-carried path).
//! Measured against the analog H(s), every setting: < 0.02 dB from 20 Hz to
//! 20 kHz at 88.2, 192 and 768 kHz; at 44.1 kHz without oversampling < 0.05 dB
//! for resistive sources into 1.5 kohm, up to 0.9 dB near 15-20 kHz in the
//! extreme corners (150 ohm load, pickup).

use crate::dsp::fma::MulAdd;
use crate::dsp::simd::{mad, Arith};
use num_complex::Complex;

// ------------------------------------------------------ polynomial helpers --

pub(super) const NP: usize = 8;
pub(super) type Poly = [f64; NP];

pub(super) fn pmul_lin(p: &Poly, c0: f64, c1: f64) -> Poly {
    let mut r = [0.0; NP];
    for k in 0..NP {
        r[k] += p[k] * c0;
        if k + 1 < NP {
            r[k + 1] += p[k] * c1;
        }
    }
    r
}

pub(super) fn padd(a: &Poly, b: &Poly) -> Poly {
    let mut r = [0.0; NP];
    for k in 0..NP {
        r[k] = a[k] + b[k];
    }
    r
}

pub(super) fn pdeg(p: &Poly) -> usize {
    let mut d = 0;
    for (k, &c) in p.iter().enumerate() {
        if c != 0.0 {
            d = k;
        }
    }
    d
}

pub(super) fn peval(p: &Poly, deg: usize, x: Complex<f64>) -> Complex<f64> {
    let mut acc = Complex::new(p[deg], 0.0);
    for k in (0..deg).rev() {
        acc = acc * x + p[k];
    }
    acc
}

/// Roots of a real polynomial of degree `deg` (<= 7) by Laguerre's method with
/// deflation, each polished on the original polynomial. No allocation.
pub(super) fn roots(p: &Poly, deg: usize, out: &mut [Complex<f64>; NP]) {
    let mut a = [Complex::new(0.0, 0.0); NP];
    for k in 0..=deg {
        a[k] = Complex::new(p[k], 0.0);
    }
    let mut n = deg;
    while n >= 1 {
        // Laguerre from 0: converges to the smallest root first (stable deflation).
        let mut x = Complex::new(0.0, 0.0);
        for it in 0..200 {
            let mut b = a[n];
            let mut d = Complex::new(0.0, 0.0);
            let mut f = Complex::new(0.0, 0.0);
            for j in (0..n).rev() {
                f = x * f + d;
                d = x * d + b;
                b = x * b + a[j];
            }
            if b.norm() == 0.0 {
                break;
            }
            let nn = n as f64;
            let g = d / b;
            let g2 = g * g;
            let h = g2 - 2.0 * f / b;
            let sq = ((nn - 1.0) * (nn * h - g2)).sqrt();
            let gp = g + sq;
            let gm = g - sq;
            let den = if gp.norm() > gm.norm() { gp } else { gm };
            let dx = if den.norm() > 0.0 {
                nn / den
            } else {
                Complex::new(1.0 + x.norm(), 0.0) * Complex::from_polar(1.0, it as f64)
            };
            let x1 = x - dx;
            if (x1 - x).norm() <= 1e-15 * x1.norm() {
                x = x1;
                break;
            }
            x = x1;
        }
        // Polish on the full polynomial (Newton).
        for _ in 0..4 {
            let fx = peval(p, deg, x);
            let mut dp = [0.0; NP];
            for k in 1..=deg {
                dp[k - 1] = p[k] * k as f64;
            }
            let dfx = peval(&dp, deg - 1, x);
            if dfx.norm() > 0.0 {
                let step = fx / dfx;
                if step.norm().is_finite() {
                    x -= step;
                }
            }
        }
        if x.im.abs() <= 1e-9 * x.norm() {
            x.im = 0.0;
        }
        out[n - 1] = x;
        // Deflate by (s - x).
        let mut carry = a[n];
        for j in (0..n).rev() {
            let t = a[j];
            a[j] = carry;
            carry = t + carry * x;
        }
        a[n] = Complex::new(0.0, 0.0);
        n -= 1;
    }
}

// ----------------------------------------------------------- filter parts --

/// One analog section in normalised frequency p = s / W_REF: (b, a) with
/// degree `order` (1 or 2).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct AnalogSection {
    /// Numerator coefficients b0 + b1 p + b2 p^2.
    pub(super) b: [f64; 3],
    /// Denominator coefficients a0 + a1 p + a2 p^2.
    pub(super) a: [f64; 3],
    /// 1 or 2.
    pub(super) order: usize,
    /// Natural frequency in rad/s (used to prewarp).
    pub(super) w0: f64,
}

/// One digital section in direct form I: the loop-carried dependency is a
/// single multiply-add (`- a1 y[n-1]`), half the latency of the transposed
/// form II, which is what bounds the speed of a cascade.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Biquad {
    /// Feed-forward coefficients; b3 is 0 but in a section that took in
    /// an FIR section ([`Biquad::fold`]).
    b: [f64; 4],
    /// Feedback coefficients a1, a2 (a0 = 1).
    a: [f64; 2],
    /// Input one sample ago.
    x1: f64,
    /// Input two samples ago.
    x2: f64,
    /// Input three samples ago (for b3).
    x3: f64,
    /// Output one sample ago.
    y1: f64,
    /// Output two samples ago.
    y2: f64,
}

impl Biquad {
    /// Set normalised coefficients from b(z^-1), a(z^-1) (keeps the state).
    pub(super) fn set(&mut self, b: [f64; 3], a: [f64; 3]) {
        self.b = [b[0] / a[0], b[1] / a[0], b[2] / a[0], 0.0];
        self.a = [a[1] / a[0], a[2] / a[0]];
    }

    /// The coefficients of `o` (keeps the state).
    pub(super) fn set_coefficients(&mut self, o: &Biquad) {
        (self.b, self.a) = (o.b, o.a);
    }

    /// Whether the section is an FIR: feedback below [`FIR_FEEDBACK`]
    /// (the matched design makes a pole pair above 3/8 fs an FIR, and a
    /// real pole far above the band, 875 kHz at 48 kHz, has a feedback
    /// of e^(−114)).
    pub(super) fn is_fir(&self) -> bool {
        self.a[0].abs() < FIR_FEEDBACK && self.a[1].abs() < FIR_FEEDBACK
    }

    /// Take the FIR section `fir` into this one's numerator, when this
    /// one's is of degree 1 at most (the product is of degree 3): one
    /// section less per sample for the same response (its feedback, under
    /// [`FIR_FEEDBACK`], is dropped). Whether it did.
    pub(super) fn fold(&mut self, fir: &Biquad) -> bool {
        if self.b[2] != 0.0 || self.b[3] != 0.0 {
            return false;
        }
        let (p, q) = (self.b, fir.b);
        self.b = [
            p[0] * q[0],
            p[0] * q[1] + p[1] * q[0],
            p[0] * q[2] + p[1] * q[1],
            p[1] * q[2],
        ];
        true
    }

    /// One sample of the section in direct form I,
    /// `y = (b0·x + b1·x1 + b2·x2 (+ b3·x3) − a2·y2) − a1·y1`, on lanes
    /// `L` (one channel, or a stereo pair in `F2`) with the state `st` =
    /// [x1, x2, x3, y1, y2] held outside; b3 only with `B3` (a section
    /// that may have folded in an FIR). Each term after the first is added
    /// by `mad` of build `M` (`−a1·y1 + t`: bit for bit the sum and the
    /// subtraction written unfused in the portable build, one rounding
    /// less each in the FMA build, and one instruction instead of two).
    #[inline(always)]
    pub(super) fn tick_lanes<M: MulAdd, L: Arith, const B3: bool>(
        &self,
        st: &mut [L; 5],
        x: L,
    ) -> L {
        let [x1, x2, x3, y1, y2] = *st;
        let s = L::splat;
        let t = mad::<M, L>(s(self.b[1]), x1, s(self.b[0]) * x);
        let mut t = mad::<M, L>(s(self.b[2]), x2, t);
        if B3 {
            t = mad::<M, L>(s(self.b[3]), x3, t);
        }
        let t = mad::<M, L>(s(-self.a[1]), y2, t);
        let y = mad::<M, L>(s(-self.a[0]), y1, t);
        *st = [x, x1, if B3 { x2 } else { x3 }, y, y1];
        y
    }

    /// The state [x1, x2, x3, y1, y2].
    pub(super) fn state(&self) -> [f64; 5] {
        [self.x1, self.x2, self.x3, self.y1, self.y2]
    }

    /// Set the state [x1, x2, x3, y1, y2].
    pub(super) fn set_state(&mut self, [x1, x2, x3, y1, y2]: [f64; 5]) {
        (self.x1, self.x2, self.x3, self.y1, self.y2) = (x1, x2, x3, y1, y2);
    }

    /// Whether both sections have the same coefficients.
    pub(super) fn same_coefficients(&self, o: &Biquad) -> bool {
        self.b == o.b && self.a == o.a
    }

    /// True when the state is finite.
    pub(super) fn is_finite(&self) -> bool {
        self.state().iter().all(|v| v.is_finite())
    }

    /// Zero the state.
    pub(super) fn clear(&mut self) {
        self.x1 = 0.0;
        self.x2 = 0.0;
        self.x3 = 0.0;
        self.y1 = 0.0;
        self.y2 = 0.0;
    }

    pub(super) fn response(&self, zi: Complex<f64>) -> Complex<f64> {
        let b = self.b[0] + zi * (self.b[1] + zi * (self.b[2] + zi * self.b[3]));
        b / (1.0 + zi * (self.a[0] + zi * self.a[1]))
    }
}

/// Reference frequency for the polynomial normalisation, rad/s (1 kHz).
pub(super) const W_REF: f64 = 2.0 * std::f64::consts::PI * 1000.0;
/// Maximum number of digital sections (one per factor).
pub(super) const MAX_SEC: usize = 6;
/// Feedback below which a section is an FIR ([`Biquad::is_fir`]).
const FIR_FEEDBACK: f64 = 1e-15;
/// Maximum number of analog factors (degree 5, all poles real).
pub(super) const MAX_FACTORS: usize = 6;

/// Magnitude-matched all-pole factor with unity DC gain (after M. Vicanek,
/// "Matched Second Order Digital Filters", 2016). `order` 1: `1/(1 + s/w)`;
/// order 2: `1/(1 + s/(Q w) + s^2/w^2)`; w in rad/sample.
///
/// Poles: impulse-invariant (exact) when w < 3 pi/4 (always for order 1);
/// a second-order factor above that would alias, and in the audio band it is
/// a gentle tail, so it becomes a 3-tap FIR. Numerator: three taps whose
/// magnitude equals the analog one exactly at DC and at two more points,
/// min(w, w1) and w2 (w1, w2 = 10 and 20 kHz, capped below Nyquist).
pub(super) fn matched_factor(
    order: usize,
    w: f64,
    q: f64,
    w1: f64,
    w2: f64,
) -> ([f64; 3], [f64; 3]) {
    use std::f64::consts::PI;
    let mag2 = |x: f64| {
        let u = x / w;
        if order == 1 {
            1.0 / (1.0 + u * u)
        } else {
            1.0 / ((1.0 - u * u).powi(2) + (u / q).powi(2))
        }
    };
    let (a1, a2, p1) = if order == 1 {
        (-(-w).exp(), 0.0, w.min(w1))
    } else if w < 0.75 * PI {
        let zeta = 0.5 / q;
        let r = (-zeta * w).exp();
        let a1 = if zeta <= 1.0 {
            -2.0 * r * ((1.0 - zeta * zeta).sqrt() * w).cos()
        } else {
            -2.0 * r * ((zeta * zeta - 1.0).sqrt() * w).cosh()
        };
        (a1, r * r, w.min(w1))
    } else {
        (0.0, 0.0, w1)
    };
    let p2 = if (p1 - w2).abs() < 1e-3 {
        0.5 * (w2 + PI)
    } else {
        w2
    };
    // |b(e^jx)|^2 = B0 phi0 + B1 phi1 + B2 phi2 with phi1 = sin^2(x/2),
    // phi0 = 1 - phi1, phi2 = 4 phi0 phi1 (likewise for a).
    let phis = |x: f64| {
        let f1 = (0.5 * x).sin().powi(2);
        let f0 = 1.0 - f1;
        (f0, f1, 4.0 * f0 * f1)
    };
    let aa = [(1.0 + a1 + a2).powi(2), (1.0 - a1 + a2).powi(2), -4.0 * a2];
    let den = |x: f64| {
        let (f0, f1, f2) = phis(x);
        aa[0] * f0 + aa[1] * f1 + aa[2] * f2
    };
    let bb0 = aa[0];
    // Two linear equations for B1, B2 at p1, p2.
    let (f0a, f1a, f2a) = phis(p1);
    let (f0b, f1b, f2b) = phis(p2);
    let ra = den(p1) * mag2(p1) - bb0 * f0a;
    let rb = den(p2) * mag2(p2) - bb0 * f0b;
    let det = f1a * f2b - f2a * f1b;
    let (bb1, bb2) = if det.abs() > 1e-300 {
        ((ra * f2b - f2a * rb) / det, (f1a * rb - ra * f1b) / det)
    } else {
        (bb0, 0.0)
    };
    let (s0, s1) = (bb0.sqrt(), bb1.max(0.0).sqrt());
    let b1 = 0.5 * (s0 - s1);
    let wsum = 0.5 * (s0 + s1);
    let disc = (wsum * wsum + bb2).max(0.0).sqrt();
    let b0 = 0.5 * (wsum + disc);
    let b2 = wsum - b0;
    ([b0, b1, b2], [1.0, a1, a2])
}
