//! The half-band designs: per 2x stage one elliptic IIR half-band (live)
//! and one Kaiser FIR half-band (high), designed for the host rate in
//! `prepare`, and the latency plans built from them.
//!
//! # Transition of each stage
//! Stage 1 sits next to the host rate fs and is the steep one: passband to
//! `fp = min(20 kHz, 0.4535 fs)`, stopband from `fs - fp` (at 44.1 kHz:
//! 20 kHz -> 24.1 kHz). Stage k >= 2 (rate 2^k fs) only has to keep the host
//! band [0, fs/2] and reject what would fold into it, so its transition is
//! (fs/2, 2^(k-1) fs - fs/2): normalised width (2^(k-1) - 1) / 2^k = 0.25,
//! 0.375, 0.4375.
//!
//! # Live quality: polyphase IIR half-bands
//! Valenzuela and Constantinides, "Digital signal processing schemes for
//! efficient interpolation and decimation", IEE Proc. G 130(6), 1983; the
//! coefficient formulas follow Laurent de Soras' HIIR notes. The half-band is
//! `H(z) = (A0(z^2) + z^-1 A1(z^2)) / 2` with `A0`, `A1` cascades of first-
//! order allpasses `(a + w^-1) / (1 + a w^-1)` in `w = z^2`. The coefficients
//! are the squared pole radii of an odd-order elliptic half-band, computed in
//! [`design_iir_halfband`] from the elliptic nome `q` with Jacobi theta
//! series; the order is the smallest that meets the stopband target, checked
//! on a dense grid. (How the two paths run: `iir.rs`.)
//! Its group delay at DC is `sum (1 - a) / (1 + a)` low-rate samples per
//! stage; the fractional part of the total is padded at the host rate by a
//! first-order Thiran allpass (`thiran.rs`), so the low-frequency group
//! delay is an integer ([`live_plan`]).
//! Group delay rises towards 20 kHz (minimum-phase-like behaviour of IIR
//! half-bands): the reported latency is the delay of the low frequencies.
//!
//! # High quality: linear-phase FIR half-bands
//! Kaiser-windowed ideal half-band `h[D + m] = sin(pi m / 2) / (pi m) * w(m)`,
//! `h[D] = 1/2`, `w` a Kaiser window with `beta = 0.1102 (A - 8.7)` and the
//! length from Kaiser's formula `2D = (A - 7.95) / (14.36 df)`, then grown
//! until a dense-grid check of the stopband meets the target (a half-band's
//! passband error equals its stopband error, so 120 dB of stopband is 1e-6
//! of passband ripple). Every other tap is zero (how that runs: `fir.rs`).
//! Up+down of a stage delays by `2 D` high-rate samples; the last
//! (highest-rate) decimator is delayed by up to `2^n - 1` extra top-rate
//! samples so the total is a whole number of host samples ([`high_plan`]).

use super::MAX_STAGES;
use num_complex::Complex;
use std::f64::consts::PI;

/// Passband edge we promise to keep flat, in Hz.
const PASSBAND_EDGE_HZ: f64 = 20_000.0;
/// Passband edge as a fraction of the host rate, for host rates below 44.1 kHz.
const PASSBAND_MAX_RATIO: f64 = 20_000.0 / 44_100.0;
/// Stopband target of each live (IIR) stage, dB.
pub(super) const LIVE_STOPBAND_DB: f64 = 95.0;
/// Stopband target of each high-quality (FIR) stage, dB.
const HIGH_STOPBAND_DB: f64 = 121.0;
/// Largest number of allpass coefficients of one IIR half-band (both paths).
const MAX_IIR_COEFS: usize = 16;
/// Largest number of allpass sections in one path of an IIR half-band.
pub(super) const MAX_IIR_SECTIONS: usize = MAX_IIR_COEFS / 2;
/// Largest number of non-zero off-centre tap pairs of one FIR half-band.
pub(super) const MAX_FIR_PAIRS: usize = 96;

/// Normalised (to the stage's high rate) transition width of stage `k`
/// (1-based) at host rate `sample_rate_hz` (see the module header).
pub(super) fn stage_transition(sample_rate_hz: f64, k: usize) -> f64 {
    if k == 1 {
        let fp = PASSBAND_EDGE_HZ.min(PASSBAND_MAX_RATIO * sample_rate_hz);
        // Passband fp, stopband fs - fp, at the rate 2 fs.
        ((sample_rate_hz - 2.0 * fp) / (2.0 * sample_rate_hz)).clamp(0.04, 0.49)
    } else {
        let p = (1usize << (k - 1)) as f64;
        (p - 1.0) / (2.0 * p)
    }
}

// ---------------------------------------------------------------------------
// IIR half-band design
// ---------------------------------------------------------------------------

/// Coefficients of one elliptic polyphase IIR half-band.
#[derive(Clone, Copy, Debug)]
pub(super) struct IirDesign {
    /// Allpass coefficients, ascending; even indices form `A0`, odd `A1`.
    pub(super) coefs: [f64; MAX_IIR_COEFS],
    /// How many entries of `coefs` are used (always even).
    pub(super) count: usize,
}

/// Elliptic modulus `k` and nome `q` of a half-band with normalised
/// transition width `tbw` (stopband edge minus passband edge over the rate).
///
/// The passband edge is `wp = pi/2 - pi tbw`; for a half-band the selectivity
/// is `k = tan^2(wp / 2)`. The nome of the complementary modulus comes from
/// the classical fast-converging series `q = e + 2e^5 + 15e^9 + 150e^13`,
/// `e = (1 - sqrt k') / (2 (1 + sqrt k'))`, `k' = sqrt(1 - k^2)`.
fn elliptic_params(tbw: f64) -> (f64, f64) {
    let t = ((1.0 - 2.0 * tbw) * PI / 4.0).tan();
    let k = t * t;
    let kp_sqrt = (1.0 - k * k).sqrt().sqrt();
    let e = 0.5 * (1.0 - kp_sqrt) / (1.0 + kp_sqrt);
    let e4 = e.powi(4);
    let q = e * (1.0 + e4 * (2.0 + e4 * (15.0 + 150.0 * e4)));
    (k, q)
}

/// Stopband attenuation in dB that an elliptic half-band of odd `order`
/// reaches with nome `q`: `|H_s|^2 = a / (1 + a)`, `a = 4 q^(order/2)`.
fn elliptic_attenuation_db(q: f64, order: usize) -> f64 {
    let a = 4.0 * q.powf(order as f64 * 0.5);
    -10.0 * (a / (1.0 + a)).log10()
}

/// Allpass coefficient `index` (0-based) of an elliptic half-band.
///
/// The pole frequencies are Jacobi `sn` values written as theta-function
/// ratios: `w = 2 q^(1/4) sum_m (-1)^m q^(m(m+1)) sin((2m+1) c pi / N) /
/// (1 + 2 sum_m (-1)^m q^(m^2) cos(2 m c pi / N))`, `c = index + 1`; then
/// `x = sqrt((1 - w^2 k)(1 - w^2 / k)) / (1 + w^2)` and `a = (1 - x)/(1 + x)`.
fn elliptic_coef(index: usize, k: f64, q: f64, order: usize) -> f64 {
    let c = (index + 1) as f64;
    let n = order as f64;
    let mut num = 0.0;
    let mut m = 0usize;
    loop {
        let mf = m as f64;
        let sign = if m.is_multiple_of(2) { 1.0 } else { -1.0 };
        let term = sign * q.powf(mf * (mf + 1.0)) * ((2.0 * mf + 1.0) * c * PI / n).sin();
        num += term;
        m += 1;
        if term.abs() < 1e-100 || m > 64 {
            break;
        }
    }
    let mut den = 0.0;
    let mut m = 1usize;
    loop {
        let mf = m as f64;
        let sign = if m.is_multiple_of(2) { 1.0 } else { -1.0 };
        let term = sign * q.powf(mf * mf) * (2.0 * mf * c * PI / n).cos();
        den += term;
        m += 1;
        if term.abs() < 1e-100 || m > 64 {
            break;
        }
    }
    let w = 2.0 * q.powf(0.25) * num / (1.0 + 2.0 * den);
    let w2 = w * w;
    let x = ((1.0 - w2 * k) * (1.0 - w2 / k)).sqrt() / (1.0 + w2);
    (1.0 - x) / (1.0 + x)
}

/// `(a + w^-1) / (1 + a w^-1)` at `w = e^{j theta}`.
pub(super) fn allpass1(a: f64, theta: f64) -> Complex<f64> {
    let zi = Complex::from_polar(1.0, -theta);
    (zi + a) / (zi * a + 1.0)
}

/// Half-band response `(A0(z^2) + z^-1 A1(z^2)) / 2` at `omega` (radians per
/// sample of the stage's high rate).
pub(super) fn iir_halfband_response(d: &IirDesign, omega: f64) -> Complex<f64> {
    let mut a0 = Complex::new(1.0, 0.0);
    let mut a1 = Complex::new(1.0, 0.0);
    for (i, &a) in d.coefs[..d.count].iter().enumerate() {
        if i % 2 == 0 {
            a0 *= allpass1(a, 2.0 * omega);
        } else {
            a1 *= allpass1(a, 2.0 * omega);
        }
    }
    (a0 + a1 * Complex::from_polar(1.0, -omega)) * 0.5
}

/// Worst stopband gain in dB of a design with transition `tbw`, on a grid.
pub(super) fn iir_stopband_db(d: &IirDesign, tbw: f64) -> f64 {
    let w_stop = PI * (0.5 + tbw);
    let points = 1024;
    let mut worst: f64 = 0.0;
    for i in 0..=points {
        let w = w_stop + (PI - w_stop) * i as f64 / points as f64;
        worst = worst.max(iir_halfband_response(d, w).norm());
    }
    20.0 * worst.max(1e-300).log10()
}

/// Designs the elliptic IIR half-band with the fewest (even) coefficients
/// that reaches `atten_db` over a transition of `tbw`.
fn design_iir_halfband(tbw: f64, atten_db: f64) -> IirDesign {
    let (k, q) = elliptic_params(tbw);
    let mut count = 2;
    while count < MAX_IIR_COEFS && elliptic_attenuation_db(q, 2 * count + 1) < atten_db {
        count += 2;
    }
    loop {
        let order = 2 * count + 1;
        let mut d = IirDesign {
            coefs: [0.0; MAX_IIR_COEFS],
            count,
        };
        for i in 0..count {
            d.coefs[i] = elliptic_coef(i, k, q, order);
        }
        if count >= MAX_IIR_COEFS || iir_stopband_db(&d, tbw) <= -atten_db {
            return d;
        }
        count += 2;
    }
}

/// DC group delay, in samples of the stage's low rate, of up+down through one
/// IIR stage: the allpass `A0(w) A1(w)`, `sum (1 - a) / (1 + a)`.
fn iir_stage_delay(d: &IirDesign) -> f64 {
    d.coefs[..d.count]
        .iter()
        .map(|&a| (1.0 - a) / (1.0 + a))
        .sum()
}

// ---------------------------------------------------------------------------
// FIR half-band design
// ---------------------------------------------------------------------------

/// One Kaiser-windowed linear-phase FIR half-band.
#[derive(Clone, Copy, Debug)]
pub(super) struct FirDesign {
    /// `pairs[i] = h[D + 2i + 1] = h[D - 2i - 1]`; `h[D] = 1/2`, other taps 0.
    pub(super) pairs: [f64; MAX_FIR_PAIRS],
    /// Number of used `pairs`; the half-length is `D = 2 count - 1`.
    pub(super) count: usize,
}

impl FirDesign {
    /// Centre index `D` of the filter (its delay in high-rate samples).
    pub(super) fn half_length(&self) -> usize {
        2 * self.count - 1
    }

    /// Zero-phase amplitude `0.5 + 2 sum pairs[i] cos((2i+1) omega)`.
    pub(super) fn amplitude(&self, omega: f64) -> f64 {
        // Chebyshev recurrence for cos((2i+1) w): c_{i+1} = 2 cos(2w) c_i - c_{i-1}.
        let c2 = 2.0 * (2.0 * omega).cos();
        let mut prev = omega.cos(); // cos(-w) = cos(w): the "i = -1" term
        let mut cur = omega.cos();
        let mut sum = 0.5;
        for (i, &p) in self.pairs[..self.count].iter().enumerate() {
            if i > 0 {
                let next = c2 * cur - prev;
                prev = cur;
                cur = next;
            }
            sum += 2.0 * p * cur;
        }
        sum
    }
}

/// Zeroth-order modified Bessel function of the first kind (power series).
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let y = 0.25 * x * x;
    let mut k = 1.0;
    while term > 1e-18 * sum {
        term *= y / (k * k);
        sum += term;
        k += 1.0;
    }
    sum
}

/// Kaiser half-band with `count` pairs and window parameter `beta`.
fn kaiser_halfband(count: usize, beta: f64) -> FirDesign {
    let mut d = FirDesign {
        pairs: [0.0; MAX_FIR_PAIRS],
        count,
    };
    let half = (2 * count - 1) as f64;
    let norm = bessel_i0(beta);
    for i in 0..count {
        let m = (2 * i + 1) as f64;
        let sinc = (PI * m / 2.0).sin() / (PI * m);
        let r = m / (half + 1.0);
        let w = bessel_i0(beta * (1.0 - r * r).max(0.0).sqrt()) / norm;
        d.pairs[i] = sinc * w;
    }
    d
}

/// Worst stopband gain in dB of an FIR half-band for transition `tbw`.
pub(super) fn fir_stopband_db(d: &FirDesign, tbw: f64) -> f64 {
    let w_stop = PI * (0.5 + tbw);
    let points = 2048;
    let mut worst: f64 = 0.0;
    for i in 0..=points {
        let w = w_stop + (PI - w_stop) * i as f64 / points as f64;
        worst = worst.max(d.amplitude(w).abs());
    }
    20.0 * worst.max(1e-300).log10()
}

/// Designs the shortest Kaiser half-band meeting `atten_db` over `tbw`.
///
/// Kaiser: `beta = 0.1102 (A - 8.7)` for A > 50 dB, and a length of
/// `N = (A - 7.95) / (14.36 df)` taps with `df = tbw`; the count of non-zero
/// off-centre pairs is about `N / 4`. The grid check then adds pairs until
/// the measured stopband meets the target.
fn design_fir_halfband(tbw: f64, atten_db: f64) -> FirDesign {
    let beta = 0.1102 * (atten_db - 8.7);
    let taps = (atten_db - 7.95) / (14.36 * tbw);
    let mut count = ((taps / 4.0).ceil() as usize).clamp(1, MAX_FIR_PAIRS);
    loop {
        let d = kaiser_halfband(count, beta);
        if count >= MAX_FIR_PAIRS || fir_stopband_db(&d, tbw) <= -atten_db {
            return d;
        }
        count += 1;
    }
}

// ---------------------------------------------------------------------------
// Plans: designs of all stages at one host rate
// ---------------------------------------------------------------------------

/// Number of 2x stages for a factor (1 -> 0, 2 -> 1, ..., 16 -> 4).
pub(super) fn stages_for(factor: usize) -> usize {
    match factor {
        0 | 1 => 0,
        2 => 1,
        3..=4 => 2,
        5..=8 => 3,
        _ => 4,
    }
}

/// Live latency plan: integer latency and the Thiran fractional delay.
pub(super) fn live_plan(designs: &[IirDesign], stages: usize) -> (usize, f64) {
    if stages == 0 {
        return (0, 0.0);
    }
    let total: f64 = designs[..stages]
        .iter()
        .enumerate()
        .map(|(i, d)| iir_stage_delay(d) / (1usize << i) as f64)
        .sum();
    let latency = (total + 0.5).ceil();
    (latency as usize, latency - total)
}

/// High-quality latency plan: integer latency and the delay, in top-rate
/// samples, that the last decimator applies (at least its own half-length).
pub(super) fn high_plan(designs: &[FirDesign], stages: usize) -> (usize, usize) {
    if stages == 0 {
        return (0, 0);
    }
    let n = stages;
    let top = 1usize << n;
    // Delay in top-rate samples: stage k (1-based) delays 2 D_k of its high
    // rate 2^k fs, i.e. 2 D_k 2^(n-k) top-rate samples; the last decimator
    // contributes s_n instead of D_n.
    let mut t = 0usize;
    for (i, d) in designs[..n].iter().enumerate() {
        t += 2 * d.half_length() * (1usize << (n - 1 - i));
    }
    let d_n = designs[n - 1].half_length();
    let pad = (top - t % top) % top;
    ((t + pad) / top, d_n + pad)
}

/// All stage designs for one host sample rate.
#[derive(Clone, Copy, Debug)]
pub(super) struct Designs {
    /// IIR half-band of each stage (index 0 = next to the host rate).
    pub(super) iir: [IirDesign; MAX_STAGES],
    /// FIR half-band of each stage.
    pub(super) fir: [FirDesign; MAX_STAGES],
}

impl Designs {
    pub(super) fn new(sample_rate_hz: f64) -> Self {
        let iir = std::array::from_fn(|i| {
            design_iir_halfband(stage_transition(sample_rate_hz, i + 1), LIVE_STOPBAND_DB)
        });
        let fir = std::array::from_fn(|i| {
            design_fir_halfband(stage_transition(sample_rate_hz, i + 1), HIGH_STOPBAND_DB)
        });
        Designs { iir, fir }
    }
}
