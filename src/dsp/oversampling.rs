//! Oversampler for the non-linear stages: 2^n x up, a closure at the high
//! rate, 2^n x down, with an exact integer latency at the host rate.
//!
//! # What it models
//! Nothing analog: it is the band-limiting that lets a static or dynamic
//! non-linearity (the triode stages) run at 2..16 times the host rate without
//! folding its harmonics back into the audio band. Signal in and out is in
//! volts at the host rate; the closure sees volts at the oversampled rate.
//!
//! # Structure
//! A factor 2^n is a cascade of n half-band 2x stages. Stage 1 sits next to
//! the host rate fs and is the steep one: passband to `fp = min(20 kHz,
//! 0.4535 fs)`, stopband from `fs - fp` (at 44.1 kHz: 20 kHz -> 24.1 kHz).
//! Stage k >= 2 (rate 2^k fs) only has to keep the host band [0, fs/2] and
//! reject what would fold into it, so its transition is (fs/2, 2^(k-1) fs -
//! fs/2): normalised width (2^(k-1) - 1) / 2^k = 0.25, 0.375, 0.4375.
//! Upsampling runs stage 1, 2, ..., n; downsampling runs n, ..., 2, 1.
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
//! on a dense grid. Polyphase: the upsampler's even outputs are `A0 x`, the
//! odd ones `A1 x`; the decimator keeps the odd phase, `y = (A0 x_odd + A1
//! x_even) / 2`. With an identity closure up+down is exactly the allpass
//! `A0(w) A1(w)`: no passband ripple at all, only the phase of an allpass.
//! Its group delay at DC is `sum (1 - a) / (1 + a)` low-rate samples per
//! stage; the fractional part of the total is padded at the host rate by a
//! first-order Thiran allpass `(c + z^-1) / (1 + c z^-1)`, `c = (1 - d) / (1 +
//! d)`, `d` in [0.5, 1.5), so the low-frequency group delay is an integer.
//! Group delay rises towards 20 kHz (minimum-phase-like behaviour of IIR
//! half-bands): the reported latency is the delay of the low frequencies.
//!
//! # High quality: linear-phase FIR half-bands
//! Kaiser-windowed ideal half-band `h[D + m] = sin(pi m / 2) / (pi m) * w(m)`,
//! `h[D] = 1/2`, `w` a Kaiser window with `beta = 0.1102 (A - 8.7)` and the
//! length from Kaiser's formula `2D = (A - 7.95) / (14.36 df)`, then grown
//! until a dense-grid check of the stopband meets the target (a half-band's
//! passband error equals its stopband error, so 120 dB of stopband is 1e-6
//! of passband ripple). Every other tap is zero: the upsampler computes one
//! dense symmetric output and one pure delay per input; the decimator one
//! dense symmetric sum on one phase plus the centre tap on the other. Up+down
//! of a stage delays by `2 D` high-rate samples; the last (highest-rate)
//! decimator is delayed by up to `2^n - 1` extra top-rate samples so the total
//! is a whole number of host samples.
//!
//! # Latency
//! [`latency_for`] gives it per (quality, factor, host rate) before any
//! processing; factor 1 is an exact pass-through with latency 0. Host
//! samples, as designed here (factor 2 / 4 / 8 / 16):
//!
//! | host rate | live         | high             |
//! |-----------|--------------|------------------|
//! | 44.1 kHz  | 4 / 5 / 6 / 6 | 87 / 99 / 102 / 103 |
//! | 48 kHz    | 4 / 5 / 5 / 6 | 49 / 61 / 64 / 65   |
//! | 96 kHz    | 3 / 4 / 5 / 5 | 21 / 33 / 36 / 37   |
//!
//! Designs at 44.1 kHz: live stage 1 has 8 allpass coefficients (104 dB),
//! stages 2 / 3 / 4 have 4 / 4 / 2 (117 / 174 / 125 dB); at 48 kHz live
//! stage 1 has 6 (96 dB: the live target is 95 dB per stage, which keeps the
//! end-to-end aliasing of `tests/aliasing.rs` at −111.5 dB, where the preamp
//! and not the half-bands sets it, against the −90 dB requirement); high stage 1 has
//! 44 tap pairs (D = 87, 121 dB), stages 2 / 3 / 4 have 12 / 6 / 6 pairs.
//! The stopband of every stage is checked on a dense grid by the tests.
//!
//! # Real-time behaviour
//! `prepare` designs every stage and allocates every buffer for factor 16 and
//! both qualities, so `configure` only switches indices. IIR state is flushed
//! to zero below 1e-30 every 64 samples at fixed positions of the absolute
//! sample count (so the output does not depend on the block partition); FIR
//! history is flushed as it is written. A non-finite sample in the output or
//! in the state resets every filter and zeroes the non-finite samples.
//!
//! The fused live 4x kernels (one and two channels) run as an AVX2 + FMA
//! build when the CPU has both (`super::fma`); each allpass (and the Thiran
//! pad) is then `y = fma(a, x, fma(−a, y1, x1))`: the input reaches the
//! output through one FMA, which keeps the per-sample chain through the
//! cascade short (see `iir_tick`). The stereo kernels hold
//! both channels' two polyphase paths in the four lanes of one 256-bit
//! register per section (`iir_tick4`): half the instructions of two
//! 128-bit chains, the same arithmetic per lane (live chain −5 %).

use super::fma::{cpu_has_fma, Fused, MulAdd, Unfused};
use super::ProcessSpec;
use num_complex::Complex;
use std::f64::consts::PI;

/// Which filter family the oversampler uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quality {
    /// Polyphase IIR half-bands: low latency, non-linear phase.
    Live,
    /// Linear-phase FIR half-bands: more latency and CPU, no phase distortion.
    High,
}

/// Largest supported oversampling factor.
pub const MAX_FACTOR: usize = 16;
/// Number of 2x stages needed for `MAX_FACTOR`.
const MAX_STAGES: usize = 4;
/// Passband edge we promise to keep flat, in Hz.
const PASSBAND_EDGE_HZ: f64 = 20_000.0;
/// Passband edge as a fraction of the host rate, for host rates below 44.1 kHz.
const PASSBAND_MAX_RATIO: f64 = 20_000.0 / 44_100.0;
/// Stopband target of each live (IIR) stage, dB.
const LIVE_STOPBAND_DB: f64 = 95.0;
/// Stopband target of each high-quality (FIR) stage, dB.
const HIGH_STOPBAND_DB: f64 = 121.0;
/// Largest number of allpass coefficients of one IIR half-band (both paths).
const MAX_IIR_COEFS: usize = 16;
/// Largest number of allpass sections in one path of an IIR half-band.
const MAX_IIR_SECTIONS: usize = MAX_IIR_COEFS / 2;
/// Largest number of non-zero off-centre tap pairs of one FIR half-band.
const MAX_FIR_PAIRS: usize = 96;
/// The Thiran pad's state is flushed every this many host samples.
const FLUSH_PERIOD: usize = 64;
/// A half-band's IIR state is flushed every this many input samples of its
/// stage. Longer than the Thiran's, because each flush also ends a segment
/// of the fused loops (their recursions drain and their states go through
/// memory): at 128 the live 4× loops run segments of 64 host samples, not
/// 32. Still no denormals: a state just above `FLUSH_BELOW` (1e-30) that
/// decays at the fastest natural rate of a section, its coefficient (≥ 0.02
/// in the live designs), is ≥ 1e-30 · 0.02¹²⁸ ≈ 1e-247 at the next flush,
/// far above the denormal range (< 2.2e-308).
const IIR_FLUSH_PERIOD: usize = 128;
/// State magnitudes below this are set to zero (denormal protection).
const FLUSH_BELOW: f64 = 1e-30;

/// Normalised (to the stage's high rate) transition width of stage `k`
/// (1-based) at host rate `sample_rate_hz`, and the passband edge in Hz.
fn stage_transition(sample_rate_hz: f64, k: usize) -> f64 {
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
struct IirDesign {
    /// Allpass coefficients, ascending; even indices form `A0`, odd `A1`.
    coefs: [f64; MAX_IIR_COEFS],
    /// How many entries of `coefs` are used (always even).
    count: usize,
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
fn allpass1(a: f64, theta: f64) -> Complex<f64> {
    let zi = Complex::from_polar(1.0, -theta);
    (zi + a) / (zi * a + 1.0)
}

/// Half-band response `(A0(z^2) + z^-1 A1(z^2)) / 2` at `omega` (radians per
/// sample of the stage's high rate).
fn iir_halfband_response(d: &IirDesign, omega: f64) -> Complex<f64> {
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
fn iir_stopband_db(d: &IirDesign, tbw: f64) -> f64 {
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
struct FirDesign {
    /// `pairs[i] = h[D + 2i + 1] = h[D - 2i - 1]`; `h[D] = 1/2`, other taps 0.
    pairs: [f64; MAX_FIR_PAIRS],
    /// Number of used `pairs`; the half-length is `D = 2 count - 1`.
    count: usize,
}

impl FirDesign {
    /// Centre index `D` of the filter (its delay in high-rate samples).
    fn half_length(&self) -> usize {
        2 * self.count - 1
    }

    /// Zero-phase amplitude `0.5 + 2 sum pairs[i] cos((2i+1) omega)`.
    fn amplitude(&self, omega: f64) -> f64 {
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
fn fir_stopband_db(d: &FirDesign, tbw: f64) -> f64 {
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
fn stages_for(factor: usize) -> usize {
    match factor {
        0 | 1 => 0,
        2 => 1,
        3..=4 => 2,
        5..=8 => 3,
        _ => 4,
    }
}

/// Live latency plan: integer latency and the Thiran fractional delay.
fn live_plan(designs: &[IirDesign], stages: usize) -> (usize, f64) {
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
fn high_plan(designs: &[FirDesign], stages: usize) -> (usize, usize) {
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
struct Designs {
    /// IIR half-band of each stage (index 0 = next to the host rate).
    iir: [IirDesign; MAX_STAGES],
    /// FIR half-band of each stage.
    fir: [FirDesign; MAX_STAGES],
}

impl Designs {
    fn new(sample_rate_hz: f64) -> Self {
        let iir = std::array::from_fn(|i| {
            design_iir_halfband(stage_transition(sample_rate_hz, i + 1), LIVE_STOPBAND_DB)
        });
        let fir = std::array::from_fn(|i| {
            design_fir_halfband(stage_transition(sample_rate_hz, i + 1), HIGH_STOPBAND_DB)
        });
        Designs { iir, fir }
    }
}

/// Latency in host samples of a configuration, before any processing.
///
/// Designs the filters for `sample_rate_hz` (no allocation, about a
/// millisecond), so call it when the configuration changes, not per block.
pub fn latency_for(quality: Quality, factor: usize, sample_rate_hz: f64) -> usize {
    let stages = stages_for(factor);
    if stages == 0 {
        return 0;
    }
    let designs = Designs::new(sample_rate_hz);
    match quality {
        Quality::Live => live_plan(&designs.iir, stages).0,
        Quality::High => high_plan(&designs.fir, stages).0,
    }
}

// ---------------------------------------------------------------------------
// Run-time filters
// ---------------------------------------------------------------------------

/// Sets a value to zero when it is too small to matter (denormal guard).
#[inline(always)]
fn flush(v: f64) -> f64 {
    if v.abs() < FLUSH_BELOW {
        0.0
    } else {
        v
    }
}

/// State of one direction of an IIR stage: two allpass paths in lock-step.
#[derive(Clone, Copy, Debug)]
struct IirState {
    /// `s[j]` = previous input of section j in each lane; `s[m]` = previous
    /// output of the last section (`m` = sections per path).
    s: [[f64; 2]; MAX_IIR_SECTIONS + 1],
    /// Input samples processed since the last flush (0..IIR_FLUSH_PERIOD), so the
    /// flush happens at the same absolute sample whatever the block sizes.
    phase: usize,
}

impl IirState {
    const ZERO: IirState = IirState {
        s: [[0.0; 2]; MAX_IIR_SECTIONS + 1],
        phase: 0,
    };

    fn flush_state(&mut self) {
        for lane in self.s.iter_mut() {
            lane[0] = flush(lane[0]);
            lane[1] = flush(lane[1]);
        }
    }

    /// Sum of the state times zero: NaN if any state value is not finite.
    fn poison(&self) -> f64 {
        self.s.iter().map(|l| l[0] * 0.0 + l[1] * 0.0).sum()
    }
}

/// Runs `m` allpass sections of both lanes on one sample pair.
///
/// Each section is `y = a x + (x1 - a y1)` (the same allpass as
/// `a (x - y1) + x1`): two multiply-adds, the bracket formed from the state
/// first, so the input reaches the output through one multiply-add. The
/// cascade of sections (and, in the fused 4x loops, of both stages) is one
/// long dependency chain per sample; shortening it lets the CPU overlap
/// more samples. That measured faster (live chain −3 %) than the form
/// `−a y1 + (a x + x1)`, whose recursion through `y1` is one operation
/// shorter but whose input path is two longer.
#[inline(always)]
fn iir_tick<F: MulAdd, const M: usize>(
    a: &[[f64; 2]; M],
    s: &mut [[f64; 2]; M],
    last: &mut [f64; 2],
    mut v: [f64; 2],
) -> [f64; 2] {
    for j in 0..M {
        let prev_out = if j + 1 < M { s[j + 1] } else { *last };
        let y = [
            F::mad1(a[j][0], v[0], F::mad1(-a[j][0], prev_out[0], s[j][0])),
            F::mad1(a[j][1], v[1], F::mad1(-a[j][1], prev_out[1], s[j][1])),
        ];
        s[j] = v;
        v = y;
    }
    *last = v;
    v
}

/// Upsamples `input` into `out` (twice as long) with `M` sections per lane.
fn iir_up_m<const M: usize>(coefs: &[[f64; 2]], st: &mut IirState, input: &[f64], out: &mut [f64]) {
    let a: [[f64; 2]; M] = std::array::from_fn(|j| coefs[j]);
    let mut start = 0;
    while start < input.len() {
        let end = (start + IIR_FLUSH_PERIOD - st.phase).min(input.len());
        let mut s: [[f64; 2]; M] = std::array::from_fn(|j| st.s[j]);
        let mut last = st.s[M];
        for (x, o) in input[start..end]
            .iter()
            .zip(out[2 * start..2 * end].chunks_exact_mut(2))
        {
            let v = iir_tick::<Unfused, M>(&a, &mut s, &mut last, [*x, *x]);
            o[0] = v[0];
            o[1] = v[1];
        }
        st.s[..M].copy_from_slice(&s);
        st.s[M] = last;
        st.phase += end - start;
        if st.phase == IIR_FLUSH_PERIOD {
            st.phase = 0;
            st.flush_state();
        }
        start = end;
    }
}

/// Decimates `input` into `out` (half as long) with `M` sections per lane.
fn iir_down_m<const M: usize>(
    coefs: &[[f64; 2]],
    st: &mut IirState,
    input: &[f64],
    out: &mut [f64],
) {
    let a: [[f64; 2]; M] = std::array::from_fn(|j| coefs[j]);
    let mut start = 0;
    while start < out.len() {
        let end = (start + IIR_FLUSH_PERIOD - st.phase).min(out.len());
        let mut s: [[f64; 2]; M] = std::array::from_fn(|j| st.s[j]);
        let mut last = st.s[M];
        for (x, o) in input[2 * start..2 * end]
            .chunks_exact(2)
            .zip(out[start..end].iter_mut())
        {
            let v = iir_tick::<Unfused, M>(&a, &mut s, &mut last, [x[0], x[1]]);
            *o = 0.5 * (v[0] + v[1]);
        }
        st.s[..M].copy_from_slice(&s);
        st.s[M] = last;
        st.phase += end - start;
        if st.phase == IIR_FLUSH_PERIOD {
            st.phase = 0;
            st.flush_state();
        }
        start = end;
    }
}

/// Host samples a fused 4x loop may run before stage 1 (every 128 of its
/// samples) or stage 2 (every 64 host samples) is due for a flush.
fn fused_segment(p1: usize, p2: usize, remaining: usize) -> usize {
    remaining
        .min(IIR_FLUSH_PERIOD - p1)
        .min((IIR_FLUSH_PERIOD - p2) / 2)
}

/// Advances the flush phases of a fused 4x loop by `len` host samples.
fn fused_advance(s1: &mut IirState, s2: &mut IirState, len: usize) {
    s1.phase += len;
    s2.phase += 2 * len;
    if s1.phase == IIR_FLUSH_PERIOD {
        s1.phase = 0;
        s1.flush_state();
    }
    if s2.phase == IIR_FLUSH_PERIOD {
        s2.phase = 0;
        s2.flush_state();
    }
}

/// Live 4x upsampler with stages 1 and 2 in one loop, so the recursions of
/// both stages overlap in the CPU instead of running one pass after the
/// other. Same arithmetic, in the same order, as two `iir_up_m` passes.
#[inline(always)]
fn iir_up4_m<F: MulAdd, const M1: usize, const M2: usize>(
    st1: &mut IirStage,
    st2: &mut IirStage,
    input: &[f64],
    out: &mut [f64],
) {
    let a1: [[f64; 2]; M1] = std::array::from_fn(|j| st1.up_coefs[j]);
    let a2: [[f64; 2]; M2] = std::array::from_fn(|j| st2.up_coefs[j]);
    let mut start = 0;
    while start < input.len() {
        let end = start + fused_segment(st1.up.phase, st2.up.phase, input.len() - start);
        let mut s1: [[f64; 2]; M1] = std::array::from_fn(|j| st1.up.s[j]);
        let mut l1 = st1.up.s[M1];
        let mut s2: [[f64; 2]; M2] = std::array::from_fn(|j| st2.up.s[j]);
        let mut l2 = st2.up.s[M2];
        for (x, o) in input[start..end]
            .iter()
            .zip(out[4 * start..4 * end].chunks_exact_mut(4))
        {
            let v = iir_tick::<F, M1>(&a1, &mut s1, &mut l1, [*x, *x]);
            let w0 = iir_tick::<F, M2>(&a2, &mut s2, &mut l2, [v[0], v[0]]);
            let w1 = iir_tick::<F, M2>(&a2, &mut s2, &mut l2, [v[1], v[1]]);
            o[0] = w0[0];
            o[1] = w0[1];
            o[2] = w1[0];
            o[3] = w1[1];
        }
        st1.up.s[..M1].copy_from_slice(&s1);
        st1.up.s[M1] = l1;
        st2.up.s[..M2].copy_from_slice(&s2);
        st2.up.s[M2] = l2;
        fused_advance(&mut st1.up, &mut st2.up, end - start);
        start = end;
    }
}

/// Live 4x decimator: stage 2, stage 1 and the Thiran pad in one loop.
#[inline(always)]
fn iir_down4_m<F: MulAdd, const M1: usize, const M2: usize>(
    st1: &mut IirStage,
    st2: &mut IirStage,
    thiran: &mut Thiran,
    input: &[f64],
    out: &mut [f64],
) {
    let a1: [[f64; 2]; M1] = std::array::from_fn(|j| st1.down_coefs[j]);
    let a2: [[f64; 2]; M2] = std::array::from_fn(|j| st2.down_coefs[j]);
    let c = thiran.c;
    let mut start = 0;
    while start < out.len() {
        let end = start + fused_segment(st1.down.phase, st2.down.phase, out.len() - start);
        let end = end.min(start + FLUSH_PERIOD - thiran.phase);
        let mut s1: [[f64; 2]; M1] = std::array::from_fn(|j| st1.down.s[j]);
        let mut l1 = st1.down.s[M1];
        let mut s2: [[f64; 2]; M2] = std::array::from_fn(|j| st2.down.s[j]);
        let mut l2 = st2.down.s[M2];
        let (mut x1, mut y1) = (thiran.x1, thiran.y1);
        for (x, o) in input[4 * start..4 * end]
            .chunks_exact(4)
            .zip(out[start..end].iter_mut())
        {
            let w0 = iir_tick::<F, M2>(&a2, &mut s2, &mut l2, [x[0], x[1]]);
            let u0 = 0.5 * (w0[0] + w0[1]);
            let w1 = iir_tick::<F, M2>(&a2, &mut s2, &mut l2, [x[2], x[3]]);
            let u1 = 0.5 * (w1[0] + w1[1]);
            let v = iir_tick::<F, M1>(&a1, &mut s1, &mut l1, [u0, u1]);
            let d = 0.5 * (v[0] + v[1]);
            let y = F::mad1(c, d, F::mad1(-c, y1, x1));
            x1 = d;
            y1 = y;
            *o = y;
        }
        st1.down.s[..M1].copy_from_slice(&s1);
        st1.down.s[M1] = l1;
        st2.down.s[..M2].copy_from_slice(&s2);
        st2.down.s[M2] = l2;
        thiran.x1 = x1;
        thiran.y1 = y1;
        thiran.phase += end - start;
        if thiran.phase == FLUSH_PERIOD {
            thiran.phase = 0;
            thiran.x1 = flush(thiran.x1);
            thiran.y1 = flush(thiran.y1);
        }
        fused_advance(&mut st1.down, &mut st2.down, end - start);
        start = end;
    }
}

/// `iir_tick` of two channels at once, in four lanes `[a0, a1, b0, b1]`
/// (channel a's two paths, then channel b's): the same arithmetic per
/// lane, so each channel is bit-identical to its own `iir_tick`, and each
/// section is one 256-bit operation where the caller is built with AVX.
#[inline(always)]
fn iir_tick4<F: MulAdd, const M: usize>(
    a: &[[f64; 4]; M],
    s: &mut [[f64; 4]; M],
    last: &mut [f64; 4],
    mut v: [f64; 4],
) -> [f64; 4] {
    for j in 0..M {
        let prev_out = if j + 1 < M { s[j + 1] } else { *last };
        let y = std::array::from_fn(|i| {
            F::mad1(a[j][i], v[i], F::mad1(-a[j][i], prev_out[i], s[j][i]))
        });
        s[j] = v;
        v = y;
    }
    *last = v;
    v
}

/// Two channels' allpass states of one direction in the lanes of
/// `iir_tick4`: `(s, last)` built from channel a's and b's states.
#[inline(always)]
fn join_states<const M: usize>(a: &IirState, b: &IirState) -> ([[f64; 4]; M], [f64; 4]) {
    let j4 = |x: [f64; 2], y: [f64; 2]| [x[0], x[1], y[0], y[1]];
    // Through memory (`black_box`), here and in `split_states`: built from
    // and split into halves in registers, the states lead LLVM's SLP
    // vectorizer to keep every section in two 128-bit halves.
    std::hint::black_box((
        std::array::from_fn(|j| j4(a.s[j], b.s[j])),
        j4(a.s[M], b.s[M]),
    ))
}

/// Writes the lanes of `join_states` back to the two channels.
#[inline(always)]
fn split_states<const M: usize>(
    s: &[[f64; 4]; M],
    last: [f64; 4],
    a: &mut IirState,
    b: &mut IirState,
) {
    let (s, last) = std::hint::black_box((*s, last));
    for (j, v) in s.iter().enumerate() {
        a.s[j] = [v[0], v[1]];
        b.s[j] = [v[2], v[3]];
    }
    a.s[M] = [last[0], last[1]];
    b.s[M] = [last[2], last[3]];
}

/// Coefficients of one direction for both channels' lanes (the pair shares
/// its designs, see `Oversampler::pair_ok`).
#[inline(always)]
fn coefs4<const M: usize>(c: &[[f64; 2]; MAX_IIR_SECTIONS]) -> [[f64; 4]; M] {
    std::array::from_fn(|j| [c[j][0], c[j][1], c[j][0], c[j][1]])
}

/// Two channels' live 4x upsamplers in one loop (stereo): the same
/// arithmetic, in the same order per channel, as `iir_up4_m` on each, with
/// both channels' paths in the four lanes of `iir_tick4`. Both channels
/// must have the same designs and flush phases.
#[inline(always)]
fn iir_up4_pair_m<F: MulAdd, const M1: usize, const M2: usize>(
    a: (&mut IirStage, &mut IirStage, &[f64], &mut [f64]),
    b: (&mut IirStage, &mut IirStage, &[f64], &mut [f64]),
) {
    let (a1st, a2st, in_a, out_a) = a;
    let (b1st, b2st, in_b, out_b) = b;
    let a1 = coefs4::<M1>(&a1st.up_coefs);
    let a2 = coefs4::<M2>(&a2st.up_coefs);
    let len = in_a.len().min(in_b.len());
    let mut start = 0;
    while start < len {
        let end = start + fused_segment(a1st.up.phase, a2st.up.phase, len - start);
        let (mut s1, mut l1) = join_states::<M1>(&a1st.up, &b1st.up);
        let (mut s2, mut l2) = join_states::<M2>(&a2st.up, &b2st.up);
        for (((xa, oa), xb), ob) in in_a[start..end]
            .iter()
            .zip(out_a[4 * start..4 * end].chunks_exact_mut(4))
            .zip(&in_b[start..end])
            .zip(out_b[4 * start..4 * end].chunks_exact_mut(4))
        {
            let v = iir_tick4::<F, M1>(&a1, &mut s1, &mut l1, [*xa, *xa, *xb, *xb]);
            let w0 = iir_tick4::<F, M2>(&a2, &mut s2, &mut l2, [v[0], v[0], v[2], v[2]]);
            let w1 = iir_tick4::<F, M2>(&a2, &mut s2, &mut l2, [v[1], v[1], v[3], v[3]]);
            oa.copy_from_slice(&[w0[0], w0[1], w1[0], w1[1]]);
            ob.copy_from_slice(&[w0[2], w0[3], w1[2], w1[3]]);
        }
        split_states(&s1, l1, &mut a1st.up, &mut b1st.up);
        split_states(&s2, l2, &mut a2st.up, &mut b2st.up);
        fused_advance(&mut a1st.up, &mut a2st.up, end - start);
        fused_advance(&mut b1st.up, &mut b2st.up, end - start);
        start = end;
    }
}

/// Two channels' live 4x decimators in one loop (see `iir_up4_pair_m`):
/// per channel the same arithmetic as `iir_down4_m`.
#[inline(always)]
fn iir_down4_pair_m<F: MulAdd, const M1: usize, const M2: usize>(
    a: (
        &mut IirStage,
        &mut IirStage,
        &mut Thiran,
        &[f64],
        &mut [f64],
    ),
    b: (
        &mut IirStage,
        &mut IirStage,
        &mut Thiran,
        &[f64],
        &mut [f64],
    ),
) {
    let (a1st, a2st, ta, in_a, out_a) = a;
    let (b1st, b2st, tb, in_b, out_b) = b;
    let a1 = coefs4::<M1>(&a1st.down_coefs);
    let a2 = coefs4::<M2>(&a2st.down_coefs);
    let c = ta.c;
    let len = out_a.len().min(out_b.len());
    let mut start = 0;
    while start < len {
        let end = start + fused_segment(a1st.down.phase, a2st.down.phase, len - start);
        let end = end.min(start + FLUSH_PERIOD - ta.phase);
        let (mut s1, mut l1) = join_states::<M1>(&a1st.down, &b1st.down);
        let (mut s2, mut l2) = join_states::<M2>(&a2st.down, &b2st.down);
        let (mut xa1, mut ya1, mut xb1, mut yb1) = (ta.x1, ta.y1, tb.x1, tb.y1);
        for (((xa, oa), xb), ob) in in_a[4 * start..4 * end]
            .chunks_exact(4)
            .zip(out_a[start..end].iter_mut())
            .zip(in_b[4 * start..4 * end].chunks_exact(4))
            .zip(out_b[start..end].iter_mut())
        {
            let w0 = iir_tick4::<F, M2>(&a2, &mut s2, &mut l2, [xa[0], xa[1], xb[0], xb[1]]);
            let (ua0, ub0) = (0.5 * (w0[0] + w0[1]), 0.5 * (w0[2] + w0[3]));
            let w1 = iir_tick4::<F, M2>(&a2, &mut s2, &mut l2, [xa[2], xa[3], xb[2], xb[3]]);
            let (ua1, ub1) = (0.5 * (w1[0] + w1[1]), 0.5 * (w1[2] + w1[3]));
            let v = iir_tick4::<F, M1>(&a1, &mut s1, &mut l1, [ua0, ua1, ub0, ub1]);
            let da = 0.5 * (v[0] + v[1]);
            let db = 0.5 * (v[2] + v[3]);
            let ya = F::mad1(c, da, F::mad1(-c, ya1, xa1));
            let yb = F::mad1(c, db, F::mad1(-c, yb1, xb1));
            (xa1, ya1, xb1, yb1) = (da, ya, db, yb);
            *oa = ya;
            *ob = yb;
        }
        split_states(&s1, l1, &mut a1st.down, &mut b1st.down);
        split_states(&s2, l2, &mut a2st.down, &mut b2st.down);
        for (t, x1, y1) in [(&mut *ta, xa1, ya1), (&mut *tb, xb1, yb1)] {
            t.x1 = x1;
            t.y1 = y1;
            t.phase += end - start;
            if t.phase == FLUSH_PERIOD {
                t.phase = 0;
                t.x1 = flush(t.x1);
                t.y1 = flush(t.y1);
            }
        }
        fused_advance(&mut a1st.down, &mut a2st.down, end - start);
        fused_advance(&mut b1st.down, &mut b2st.down, end - start);
        start = end;
    }
}

/// Runs the fused 4x live upsampler. Only called when `fused_ok` says a
/// kernel exists for the designed section counts.
#[inline(always)]
fn live_up4<F: MulAdd>(st: &mut [IirStage], input: &[f64], out: &mut [f64]) {
    let (s1, rest) = st.split_at_mut(1);
    let (s1, s2) = (&mut s1[0], &mut rest[0]);
    match (s1.sections, s2.sections) {
        (1, 2) => iir_up4_m::<F, 1, 2>(s1, s2, input, out),
        (2, 2) => iir_up4_m::<F, 2, 2>(s1, s2, input, out),
        (3, 2) => iir_up4_m::<F, 3, 2>(s1, s2, input, out),
        (4, 2) => iir_up4_m::<F, 4, 2>(s1, s2, input, out),
        _ => {} // excluded by `Oversampler::fused_ok`
    }
}

/// Fused 4x live decimator (see `live_up4`).
#[inline(always)]
fn live_down4<F: MulAdd>(st: &mut [IirStage], thiran: &mut Thiran, input: &[f64], out: &mut [f64]) {
    let (s1, rest) = st.split_at_mut(1);
    let (s1, s2) = (&mut s1[0], &mut rest[0]);
    match (s1.sections, s2.sections) {
        (1, 2) => iir_down4_m::<F, 1, 2>(s1, s2, thiran, input, out),
        (2, 2) => iir_down4_m::<F, 2, 2>(s1, s2, thiran, input, out),
        (3, 2) => iir_down4_m::<F, 3, 2>(s1, s2, thiran, input, out),
        (4, 2) => iir_down4_m::<F, 4, 2>(s1, s2, thiran, input, out),
        _ => {} // excluded by `Oversampler::fused_ok`
    }
}

/// One 2x polyphase IIR stage: its coefficients and the state of both
/// directions.
#[derive(Clone, Copy, Debug)]
struct IirStage {
    /// Upsampler coefficients per section: lane 0 = `A0`, lane 1 = `A1`.
    up_coefs: [[f64; 2]; MAX_IIR_SECTIONS],
    /// Decimator coefficients: lane 0 (even input) = `A1`, lane 1 = `A0`.
    down_coefs: [[f64; 2]; MAX_IIR_SECTIONS],
    /// Allpass sections per path.
    sections: usize,
    /// Upsampler state.
    up: IirState,
    /// Decimator state.
    down: IirState,
}

impl IirStage {
    fn new(d: &IirDesign) -> Self {
        let sections = d.count / 2;
        let mut up_coefs = [[0.0; 2]; MAX_IIR_SECTIONS];
        let mut down_coefs = [[0.0; 2]; MAX_IIR_SECTIONS];
        for j in 0..sections {
            up_coefs[j] = [d.coefs[2 * j], d.coefs[2 * j + 1]];
            down_coefs[j] = [d.coefs[2 * j + 1], d.coefs[2 * j]];
        }
        IirStage {
            up_coefs,
            down_coefs,
            sections,
            up: IirState::ZERO,
            down: IirState::ZERO,
        }
    }

    fn reset(&mut self) {
        self.up = IirState::ZERO;
        self.down = IirState::ZERO;
    }

    fn up(&mut self, input: &[f64], out: &mut [f64]) {
        let c = &self.up_coefs;
        let st = &mut self.up;
        match self.sections {
            1 => iir_up_m::<1>(c, st, input, out),
            2 => iir_up_m::<2>(c, st, input, out),
            3 => iir_up_m::<3>(c, st, input, out),
            4 => iir_up_m::<4>(c, st, input, out),
            5 => iir_up_m::<5>(c, st, input, out),
            6 => iir_up_m::<6>(c, st, input, out),
            7 => iir_up_m::<7>(c, st, input, out),
            _ => iir_up_m::<8>(c, st, input, out),
        }
    }

    fn down(&mut self, input: &[f64], out: &mut [f64]) {
        let c = &self.down_coefs;
        let st = &mut self.down;
        match self.sections {
            1 => iir_down_m::<1>(c, st, input, out),
            2 => iir_down_m::<2>(c, st, input, out),
            3 => iir_down_m::<3>(c, st, input, out),
            4 => iir_down_m::<4>(c, st, input, out),
            5 => iir_down_m::<5>(c, st, input, out),
            6 => iir_down_m::<6>(c, st, input, out),
            7 => iir_down_m::<7>(c, st, input, out),
            _ => iir_down_m::<8>(c, st, input, out),
        }
    }
}

/// First-order Thiran allpass at the host rate that pads the live latency
/// to a whole number of samples.
#[derive(Clone, Copy, Debug)]
struct Thiran {
    /// `c = (1 - d) / (1 + d)` for the fractional delay `d`.
    c: f64,
    /// Previous input.
    x1: f64,
    /// Previous output.
    y1: f64,
    /// Samples since the last denormal flush.
    phase: usize,
}

impl Thiran {
    fn new(delay: f64) -> Self {
        Thiran {
            c: (1.0 - delay) / (1.0 + delay),
            x1: 0.0,
            y1: 0.0,
            phase: 0,
        }
    }

    fn reset(&mut self) {
        self.x1 = 0.0;
        self.y1 = 0.0;
        self.phase = 0;
    }

    fn process(&mut self, block: &mut [f64]) {
        let c = self.c;
        let mut start = 0;
        while start < block.len() {
            let end = (start + FLUSH_PERIOD - self.phase).min(block.len());
            let (mut x1, mut y1) = (self.x1, self.y1);
            for v in block[start..end].iter_mut() {
                let y = c * *v + x1 - c * y1;
                x1 = *v;
                y1 = y;
                *v = y;
            }
            self.x1 = x1;
            self.y1 = y1;
            self.phase += end - start;
            if self.phase == FLUSH_PERIOD {
                self.phase = 0;
                self.x1 = flush(self.x1);
                self.y1 = flush(self.y1);
            }
            start = end;
        }
    }
}

/// `out[n] = sum_i c[i] (buf[n + count + i] + buf[n + count - 1 - i])`: the
/// symmetric dense phase of a half-band, eight outputs at a time so the
/// compiler keeps the accumulators in vector registers. The scalar tail adds
/// in the same order, so every output is bit-identical whatever the split.
fn symmetric_fir(buf: &[f64], c: &[f64], out: &mut [f64]) {
    const W: usize = 8;
    let count = c.len();
    let len = out.len();
    let mut n = 0;
    while n + W <= len {
        // Every window this output chunk reads, sliced once so the inner
        // loop indexes within known bounds.
        let hi_all = &buf[n + count..n + 2 * count + W - 1];
        let lo_all = &buf[n..n + count + W - 1];
        let mut acc = [0.0f64; W];
        for ((&ci, hi), lo) in c.iter().zip(hi_all.windows(W)).zip(lo_all.windows(W).rev()) {
            for j in 0..W {
                acc[j] += ci * (hi[j] + lo[j]);
            }
        }
        out[n..n + W].copy_from_slice(&acc);
        n += W;
    }
    while n < len {
        let mut acc = 0.0;
        for (i, &ci) in c.iter().enumerate() {
            acc += ci * (buf[n + count + i] + buf[n + count - 1 - i]);
        }
        out[n] = acc;
        n += 1;
    }
}

/// One 2x linear-phase FIR stage: coefficients and history of both
/// directions.
#[derive(Clone, Debug)]
struct FirStage {
    /// Off-centre tap pairs `h[D +- (2i+1)]`.
    pairs: [f64; MAX_FIR_PAIRS],
    /// The same pairs doubled: the upsampler's gain of 2 restores the level
    /// lost to zero-stuffing.
    up_pairs: [f64; MAX_FIR_PAIRS],
    /// Number of used pairs.
    count: usize,
    /// Delay of the decimator in high-rate samples (>= `D`; larger only on
    /// the last stage, to make the total latency an integer).
    down_delay: usize,
    /// Upsampler input history (`D` samples) followed by the current input.
    up_buf: Vec<f64>,
    /// Dense upsampler outputs of the current block.
    scratch: Vec<f64>,
    /// Decimator history + current input, even-indexed high-rate samples.
    down_even: Vec<f64>,
    /// Decimator history + current input, odd-indexed high-rate samples.
    down_odd: Vec<f64>,
}

impl FirStage {
    fn new(d: &FirDesign, max_in: usize) -> Self {
        let count = d.count;
        let half = d.half_length();
        let up_pairs = d.pairs.map(|p| 2.0 * p);
        // The decimator delay can grow by up to MAX_FACTOR - 1 samples.
        let down_hist = (half + MAX_FACTOR) / 2 + count;
        FirStage {
            pairs: d.pairs,
            up_pairs,
            count,
            down_delay: half,
            up_buf: vec![0.0; half + max_in],
            scratch: vec![0.0; max_in],
            down_even: vec![0.0; down_hist + max_in],
            down_odd: vec![0.0; down_hist + max_in],
        }
    }

    fn half_length(&self) -> usize {
        2 * self.count - 1
    }

    /// History length of the decimator streams for the current delay.
    fn down_hist(&self) -> usize {
        self.down_delay / 2 + self.count
    }

    fn reset(&mut self) {
        self.up_buf.fill(0.0);
        self.down_even.fill(0.0);
        self.down_odd.fill(0.0);
    }

    /// Whether `copy_state_from(other)` fits the buffers as they are.
    fn same_shape(&self, other: &Self) -> bool {
        self.up_buf.len() == other.up_buf.len()
            && self.scratch.len() == other.scratch.len()
            && self.down_even.len() == other.down_even.len()
            && self.down_odd.len() == other.down_odd.len()
    }

    /// Become a copy of `other` (same shape): the coefficients and the
    /// histories the next call reads before it writes (the first
    /// `half_length()` samples of the upsampler buffer, the first
    /// `down_hist()` of the decimator streams). The rest of the buffers is
    /// written before it is read by every call (and `scratch` entirely),
    /// so it is not copied.
    fn copy_state_from(&mut self, other: &Self) {
        let FirStage {
            pairs,
            up_pairs,
            count,
            down_delay,
            up_buf,
            scratch: _,
            down_even,
            down_odd,
        } = other;
        self.pairs = *pairs;
        self.up_pairs = *up_pairs;
        self.count = *count;
        self.down_delay = *down_delay;
        let up = other.half_length().min(up_buf.len());
        self.up_buf[..up].copy_from_slice(&up_buf[..up]);
        let down = other.down_hist().min(down_even.len()).min(down_odd.len());
        self.down_even[..down].copy_from_slice(&down_even[..down]);
        self.down_odd[..down].copy_from_slice(&down_odd[..down]);
    }

    fn up(&mut self, input: &[f64], out: &mut [f64]) {
        let len = input.len();
        let hist = self.half_length();
        let count = self.count;
        for (b, &x) in self.up_buf[hist..hist + len].iter_mut().zip(input) {
            *b = flush(x);
        }
        symmetric_fir(
            &self.up_buf[..hist + len],
            &self.up_pairs[..count],
            &mut self.scratch[..len],
        );
        let centre = &self.up_buf[count..count + len];
        for ((o, &d), &c) in out
            .chunks_exact_mut(2)
            .zip(&self.scratch[..len])
            .zip(centre)
        {
            o[0] = d;
            o[1] = c;
        }
        self.up_buf.copy_within(len..len + hist, 0);
    }

    fn down(&mut self, input: &[f64], out: &mut [f64]) {
        let len = out.len();
        let hist = self.down_hist();
        let count = self.count;
        for ((e, o), x) in self.down_even[hist..hist + len]
            .iter_mut()
            .zip(self.down_odd[hist..hist + len].iter_mut())
            .zip(input.chunks_exact(2))
        {
            *e = flush(x[0]);
            *o = flush(x[1]);
        }
        // Even delay: dense taps on the odd stream, centre on the even one.
        let (dense, centre, centre_at) = if self.down_delay.is_multiple_of(2) {
            (&self.down_odd, &self.down_even, count)
        } else {
            (&self.down_even, &self.down_odd, count - 1)
        };
        symmetric_fir(&dense[..hist + len], &self.pairs[..count], out);
        for (o, &c) in out.iter_mut().zip(&centre[centre_at..centre_at + len]) {
            *o += 0.5 * c;
        }
        self.down_even.copy_within(len..len + hist, 0);
        self.down_odd.copy_within(len..len + hist, 0);
    }
}

// ---------------------------------------------------------------------------
// The oversampler
// ---------------------------------------------------------------------------

/// Per-channel 2^n x oversampler around a closure (see the module header).
#[derive(Clone, Debug)]
pub struct Oversampler {
    /// Host sample rate the filters were designed for, Hz.
    sample_rate_hz: f64,
    /// Largest host block `process` handles in one piece.
    max_block: usize,
    /// Filter family in use.
    quality: Quality,
    /// Oversampling factor in use (1, 2, 4, 8 or 16).
    factor: usize,
    /// log2 of `factor`: how many 2x stages run.
    stages: usize,
    /// Latency of the current configuration in host samples.
    latency: usize,
    /// The designs for `sample_rate_hz` (kept for `response` and re-planning).
    designs: Designs,
    /// Live stages, index 0 next to the host rate.
    iir: [IirStage; MAX_STAGES],
    /// High-quality stages, index 0 next to the host rate.
    fir: [FirStage; MAX_STAGES],
    /// Live-mode fractional-delay pad at the host rate.
    thiran: Thiran,
    /// Whether a fused 4x live kernel exists for the designed section counts.
    fused_ok: bool,
    /// The CPU has AVX2 and FMA (checked in `prepare`): the fused 4x live
    /// kernels run as an AVX2 + FMA build with fused multiply-adds (see
    /// `super::fma`); the other paths are the same either way.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    has_fma: bool,
    /// Ping-pong buffer for the intermediate and oversampled signal.
    buf_a: Vec<f64>,
    /// The other ping-pong buffer.
    buf_b: Vec<f64>,
    /// Host samples of the last `upsample`.
    up_len: usize,
    /// The last `upsample` left its signal in `buf_b` (else `buf_a`).
    up_in_b: bool,
}

impl Default for Oversampler {
    fn default() -> Self {
        Self::new()
    }
}

impl Oversampler {
    /// An oversampler prepared for 48 kHz and blocks of up to 512 samples,
    /// configured as factor 1 (pass-through). Call `prepare` before use.
    pub fn new() -> Self {
        let spec = ProcessSpec {
            sample_rate: 48_000.0,
            max_block: 512,
        };
        let designs = Designs::new(spec.sample_rate);
        let mut os = Oversampler {
            sample_rate_hz: spec.sample_rate,
            max_block: 1,
            quality: Quality::Live,
            factor: 1,
            stages: 0,
            latency: 0,
            designs,
            iir: std::array::from_fn(|i| IirStage::new(&designs.iir[i])),
            fir: std::array::from_fn(|i| FirStage::new(&designs.fir[i], 1)),
            thiran: Thiran::new(1.0),
            fused_ok: false,
            has_fma: false,
            buf_a: Vec::new(),
            buf_b: Vec::new(),
            up_len: 0,
            up_in_b: false,
        };
        os.prepare(&spec);
        os
    }

    /// Designs every stage for `spec.sample_rate` and allocates every buffer
    /// for `spec.max_block` host samples at factor 16, for both qualities.
    /// Keeps the current quality and factor; clears all state.
    pub fn prepare(&mut self, spec: &ProcessSpec) {
        self.has_fma = cpu_has_fma();
        let max_block = spec.max_block.max(1);
        self.sample_rate_hz = spec.sample_rate;
        self.max_block = max_block;
        self.designs = Designs::new(spec.sample_rate);
        let designs = self.designs;
        self.iir = std::array::from_fn(|i| IirStage::new(&designs.iir[i]));
        self.fused_ok = (1..=4).contains(&self.iir[0].sections) && self.iir[1].sections == 2;
        // Stage k (0-based) takes max_block * 2^k samples in (upsampler) and
        // gives as many out (decimator).
        self.fir = std::array::from_fn(|i| FirStage::new(&designs.fir[i], max_block << i));
        self.buf_a = vec![0.0; max_block * MAX_FACTOR];
        self.buf_b = vec![0.0; max_block * MAX_FACTOR];
        self.apply_config();
        self.reset();
    }

    /// Chooses the quality and the factor (1, 2, 4, 8, 16; other values are
    /// rounded up to the next power of two, at most 16). Allocation-free.
    /// A change clears the filter state (the latency changes too).
    pub fn configure(&mut self, quality: Quality, factor: usize) {
        let stages = stages_for(factor);
        if quality == self.quality && stages == self.stages {
            return;
        }
        self.quality = quality;
        self.stages = stages;
        self.apply_config();
        self.reset();
    }

    /// Recomputes latency, Thiran pad and last-decimator delay.
    fn apply_config(&mut self) {
        self.factor = 1 << self.stages;
        let (live_latency, frac) = live_plan(&self.designs.iir, self.stages);
        let (high_latency, last_delay) = high_plan(&self.designs.fir, self.stages);
        self.thiran = Thiran::new(if self.stages == 0 { 1.0 } else { frac });
        for f in self.fir.iter_mut() {
            f.down_delay = f.half_length();
        }
        if self.stages > 0 {
            self.fir[self.stages - 1].down_delay = last_delay;
        }
        self.latency = match self.quality {
            Quality::Live => live_latency,
            Quality::High => high_latency,
        };
    }

    /// Whether [`Self::copy_state_from`] of `other` is an exact copy:
    /// both were prepared for the same rate and block size (so their
    /// buffers have the same sizes).
    pub fn can_copy_state_from(&self, other: &Self) -> bool {
        self.sample_rate_hz == other.sample_rate_hz
            && self.max_block == other.max_block
            && self.buf_a.len() == other.buf_a.len()
            && self.buf_b.len() == other.buf_b.len()
            && self
                .fir
                .iter()
                .zip(&other.fir)
                .all(|(a, b)| a.same_shape(b))
    }

    /// Become an exact copy of `other` (designs, configuration, latency,
    /// filter states and histories, flush phases, and an oversampled
    /// signal waiting between `upsample` and `downsample`) without
    /// allocating or freeing, so a chain can do it on the audio thread.
    /// Afterwards both produce bit-identical output for the same input.
    ///
    /// Both must have been `prepare`d for the same rate and block size
    /// ([`Self::can_copy_state_from`]). Otherwise an exact copy would need
    /// buffers of other sizes: this one then keeps its own design and
    /// buffers, takes `other`'s quality and factor and is reset.
    ///
    /// Only state is copied, not scratch: a few hundred samples of FIR
    /// history at most, plus the waiting oversampled signal (none between
    /// `process` calls).
    pub fn copy_state_from(&mut self, other: &Self) {
        if !self.can_copy_state_from(other) {
            self.configure(other.quality, other.factor);
            self.reset();
            return;
        }
        // Named field by field, so a new field cannot be forgotten here.
        let Oversampler {
            sample_rate_hz,
            max_block,
            quality,
            factor,
            stages,
            latency,
            designs,
            iir,
            fir,
            thiran,
            fused_ok,
            has_fma,
            buf_a,
            buf_b,
            up_len,
            up_in_b,
        } = other;
        self.sample_rate_hz = *sample_rate_hz;
        self.max_block = *max_block;
        self.quality = *quality;
        self.factor = *factor;
        self.stages = *stages;
        self.latency = *latency;
        self.designs = *designs;
        self.iir = *iir;
        for (mine, theirs) in self.fir.iter_mut().zip(fir) {
            mine.copy_state_from(theirs);
        }
        self.thiran = *thiran;
        self.fused_ok = *fused_ok;
        self.has_fma = *has_fma;
        self.up_len = *up_len;
        self.up_in_b = *up_in_b;
        // The signal waiting for `downsample` (what `oversampled` lends).
        let n = (up_len << stages).min(buf_a.len());
        if *up_in_b {
            self.buf_b[..n].copy_from_slice(&buf_b[..n]);
        } else {
            self.buf_a[..n].copy_from_slice(&buf_a[..n]);
        }
    }

    /// Oversampling factor in use.
    pub fn factor(&self) -> usize {
        self.factor
    }

    /// Quality in use.
    pub fn quality(&self) -> Quality {
        self.quality
    }

    /// Latency in host samples (exact: the delay of low frequencies).
    pub fn latency_samples(&self) -> usize {
        self.latency
    }

    /// Clears all filter state.
    pub fn reset(&mut self) {
        for s in self.iir.iter_mut() {
            s.reset();
        }
        for s in self.fir.iter_mut() {
            s.reset();
        }
        self.thiran.reset();
    }

    /// Linear response (identity closure) at `freq_hz`, including the delay.
    /// Ignores the aliased components, which are below the stopband target.
    pub fn response(&self, freq_hz: f64) -> Complex<f64> {
        let w = 2.0 * PI * freq_hz / self.sample_rate_hz;
        if self.stages == 0 {
            return Complex::new(1.0, 0.0);
        }
        match self.quality {
            Quality::Live => {
                let mut h = allpass1(self.thiran.c, w);
                for (k, d) in self.designs.iir[..self.stages].iter().enumerate() {
                    let theta = w / (1usize << k) as f64;
                    for &a in &d.coefs[..d.count] {
                        h *= allpass1(a, theta);
                    }
                }
                h
            }
            Quality::High => {
                let mut g = 1.0;
                for (k, d) in self.designs.fir[..self.stages].iter().enumerate() {
                    let a = d.amplitude(w / (2usize << k) as f64);
                    g *= a * a;
                }
                Complex::from_polar(g, -w * self.latency as f64)
            }
        }
    }

    /// Upsamples `block`, calls `f` once on the oversampled signal (length
    /// `block.len() * factor()`), and decimates the result back into `block`.
    /// Blocks longer than the prepared `max_block` are split (then `f` runs
    /// once per piece).
    pub fn process<F: FnMut(&mut [f64])>(&mut self, block: &mut [f64], mut f: F) {
        if self.stages == 0 {
            f(block);
            return;
        }
        for piece in block.chunks_mut(self.max_block) {
            self.upsample(piece);
            f(self.oversampled());
            self.downsample(piece);
        }
    }

    /// The first half of [`Self::process`], for callers that run several
    /// channels' oversampled signals together: upsamples `block` (at most
    /// the prepared `max_block` samples; longer blocks are cut there) into
    /// the oversampler's buffer, which [`Self::oversampled`] then lends out
    /// and [`Self::downsample`] decimates.
    pub fn upsample(&mut self, block: &[f64]) {
        #[cfg(target_arch = "x86_64")]
        if self.has_fma {
            // SAFETY: `has_fma` is set only when the CPU reports AVX2 and FMA.
            unsafe { self.upsample_fma(block) };
            return;
        }
        self.upsample_any::<Unfused>(block);
    }

    /// `upsample_any` compiled with AVX2 and FMA, fused.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn upsample_fma(&mut self, block: &[f64]) {
        self.upsample_any::<Fused>(block);
    }

    #[inline(always)]
    fn upsample_any<F: MulAdd>(&mut self, block: &[f64]) {
        let len = block.len().min(self.max_block);
        let block = &block[..len];
        self.up_len = len;
        self.up_in_b = false;
        let n = self.stages;
        if n == 0 {
            self.buf_a[..len].copy_from_slice(block);
            return;
        }
        let (a, b) = (&mut self.buf_a, &mut self.buf_b);
        match self.quality {
            Quality::Live if n == 2 && self.fused_ok => {
                live_up4::<F>(&mut self.iir, block, &mut a[..4 * len]);
            }
            Quality::Live => {
                self.iir[0].up(block, &mut a[..2 * len]);
                for k in 1..n {
                    let (src, dst) = if self.up_in_b {
                        (&*b, &mut *a)
                    } else {
                        (&*a, &mut *b)
                    };
                    self.iir[k].up(&src[..len << k], &mut dst[..len << (k + 1)]);
                    self.up_in_b = !self.up_in_b;
                }
            }
            Quality::High => {
                self.fir[0].up(block, &mut a[..2 * len]);
                for k in 1..n {
                    let (src, dst) = if self.up_in_b {
                        (&*b, &mut *a)
                    } else {
                        (&*a, &mut *b)
                    };
                    self.fir[k].up(&src[..len << k], &mut dst[..len << (k + 1)]);
                    self.up_in_b = !self.up_in_b;
                }
            }
        }
    }

    /// The oversampled signal of the last [`Self::upsample`]
    /// (`len · factor()` samples), to process in place.
    pub fn oversampled(&mut self) -> &mut [f64] {
        let n = self.up_len << self.stages;
        if self.up_in_b {
            &mut self.buf_b[..n]
        } else {
            &mut self.buf_a[..n]
        }
    }

    /// The second half of [`Self::process`]: decimates the oversampled
    /// buffer into `block` (the length given to the last `upsample`; a
    /// longer `block` is written only that far).
    pub fn downsample(&mut self, block: &mut [f64]) {
        #[cfg(target_arch = "x86_64")]
        if self.has_fma {
            // SAFETY: `has_fma` is set only when the CPU reports AVX2 and FMA.
            unsafe { self.downsample_fma(block) };
            return;
        }
        self.downsample_any::<Unfused>(block);
    }

    /// `downsample_any` compiled with AVX2 and FMA, fused.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn downsample_fma(&mut self, block: &mut [f64]) {
        self.downsample_any::<Fused>(block);
    }

    #[inline(always)]
    fn downsample_any<F: MulAdd>(&mut self, block: &mut [f64]) {
        let len = self.up_len.min(block.len());
        let block = &mut block[..len];
        let n = self.stages;
        if n == 0 {
            block.copy_from_slice(&self.buf_a[..len]);
            return;
        }
        let mut in_b = self.up_in_b;
        let (a, b) = (&mut self.buf_a, &mut self.buf_b);
        match self.quality {
            Quality::Live if n == 2 && self.fused_ok => {
                live_down4::<F>(&mut self.iir, &mut self.thiran, &a[..4 * len], block);
            }
            Quality::Live => {
                for k in (1..n).rev() {
                    let (src, dst) = if in_b { (&*b, &mut *a) } else { (&*a, &mut *b) };
                    self.iir[k].down(&src[..len << (k + 1)], &mut dst[..len << k]);
                    in_b = !in_b;
                }
                let src = if in_b { &*b } else { &*a };
                self.iir[0].down(&src[..2 * len], block);
                self.thiran.process(block);
            }
            Quality::High => {
                for k in (1..n).rev() {
                    let (src, dst) = if in_b { (&*b, &mut *a) } else { (&*a, &mut *b) };
                    self.fir[k].down(&src[..len << (k + 1)], &mut dst[..len << k]);
                    in_b = !in_b;
                }
                let src = if in_b { &*b } else { &*a };
                self.fir[0].down(&src[..2 * len], block);
            }
        }
        self.guard(block);
    }

    /// Whether `a` and `b` can run as one fused live 4x pair: same design,
    /// same configuration, same flush phases (true for the two channels of
    /// a chain, which are reset and fed together).
    fn pair_ok(a: &Oversampler, b: &Oversampler) -> bool {
        let ok = |o: &Oversampler| o.quality == Quality::Live && o.stages == 2 && o.fused_ok;
        ok(a)
            && ok(b)
            && a.iir[0].sections == b.iir[0].sections
            && a.iir[1].sections == b.iir[1].sections
            && a.iir[0].up_coefs == b.iir[0].up_coefs
            && a.iir[1].up_coefs == b.iir[1].up_coefs
            && a.thiran.c == b.thiran.c
            && a.iir[0].up.phase == b.iir[0].up.phase
            && a.iir[1].up.phase == b.iir[1].up.phase
            && a.iir[0].down.phase == b.iir[0].down.phase
            && a.iir[1].down.phase == b.iir[1].down.phase
            && a.thiran.phase == b.thiran.phase
    }

    /// [`Self::upsample`] of two channels at once (a stereo pair): the same
    /// result per channel, with the live 4x recursions of both channels in
    /// one loop when the two are configured alike (else one after the other).
    pub fn upsample_pair(a: &mut Oversampler, b: &mut Oversampler, in_a: &[f64], in_b: &[f64]) {
        #[cfg(target_arch = "x86_64")]
        if a.has_fma {
            // SAFETY: `has_fma` is set only when the CPU reports AVX2 and FMA.
            unsafe { Self::upsample_pair_fma(a, b, in_a, in_b) };
            return;
        }
        Self::upsample_pair_any::<Unfused>(a, b, in_a, in_b);
    }

    /// `upsample_pair_any` compiled with AVX2 and FMA, fused.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn upsample_pair_fma(a: &mut Oversampler, b: &mut Oversampler, in_a: &[f64], in_b: &[f64]) {
        Self::upsample_pair_any::<Fused>(a, b, in_a, in_b);
    }

    #[inline(always)]
    fn upsample_pair_any<F: MulAdd>(
        a: &mut Oversampler,
        b: &mut Oversampler,
        in_a: &[f64],
        in_b: &[f64],
    ) {
        let len = in_a.len().min(a.max_block);
        if len != in_b.len().min(b.max_block) || !Self::pair_ok(a, b) {
            a.upsample(in_a);
            b.upsample(in_b);
            return;
        }
        for o in [&mut *a, &mut *b] {
            o.up_len = len;
            o.up_in_b = false;
        }
        let (a1, a2) = a.iir.split_at_mut(1);
        let (b1, b2) = b.iir.split_at_mut(1);
        let (oa, ob) = (&mut a.buf_a[..4 * len], &mut b.buf_a[..4 * len]);
        let (ia, ib) = (&in_a[..len], &in_b[..len]);
        let (pa, pb) = (
            (&mut a1[0], &mut a2[0], ia, oa),
            (&mut b1[0], &mut b2[0], ib, ob),
        );
        match (pa.0.sections, pa.1.sections) {
            (1, 2) => iir_up4_pair_m::<F, 1, 2>(pa, pb),
            (2, 2) => iir_up4_pair_m::<F, 2, 2>(pa, pb),
            (3, 2) => iir_up4_pair_m::<F, 3, 2>(pa, pb),
            (4, 2) => iir_up4_pair_m::<F, 4, 2>(pa, pb),
            _ => {} // excluded by `fused_ok`
        }
    }

    /// [`Self::downsample`] of two channels at once (see
    /// [`Self::upsample_pair`]).
    pub fn downsample_pair(
        a: &mut Oversampler,
        b: &mut Oversampler,
        out_a: &mut [f64],
        out_b: &mut [f64],
    ) {
        #[cfg(target_arch = "x86_64")]
        if a.has_fma {
            // SAFETY: `has_fma` is set only when the CPU reports AVX2 and FMA.
            unsafe { Self::downsample_pair_fma(a, b, out_a, out_b) };
            return;
        }
        Self::downsample_pair_any::<Unfused>(a, b, out_a, out_b);
    }

    /// `downsample_pair_any` compiled with AVX2 and FMA, fused.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn downsample_pair_fma(
        a: &mut Oversampler,
        b: &mut Oversampler,
        out_a: &mut [f64],
        out_b: &mut [f64],
    ) {
        Self::downsample_pair_any::<Fused>(a, b, out_a, out_b);
    }

    #[inline(always)]
    fn downsample_pair_any<F: MulAdd>(
        a: &mut Oversampler,
        b: &mut Oversampler,
        out_a: &mut [f64],
        out_b: &mut [f64],
    ) {
        let len = a.up_len.min(out_a.len());
        if len != b.up_len.min(out_b.len()) || a.up_in_b || b.up_in_b || !Self::pair_ok(a, b) {
            a.downsample(out_a);
            b.downsample(out_b);
            return;
        }
        let (out_a, out_b) = (&mut out_a[..len], &mut out_b[..len]);
        {
            let (a1, a2) = a.iir.split_at_mut(1);
            let (b1, b2) = b.iir.split_at_mut(1);
            let (ia, ib) = (&a.buf_a[..4 * len], &b.buf_a[..4 * len]);
            let pa = (&mut a1[0], &mut a2[0], &mut a.thiran, ia, &mut *out_a);
            let pb = (&mut b1[0], &mut b2[0], &mut b.thiran, ib, &mut *out_b);
            match (pa.0.sections, pa.1.sections) {
                (1, 2) => iir_down4_pair_m::<F, 1, 2>(pa, pb),
                (2, 2) => iir_down4_pair_m::<F, 2, 2>(pa, pb),
                (3, 2) => iir_down4_pair_m::<F, 3, 2>(pa, pb),
                (4, 2) => iir_down4_pair_m::<F, 4, 2>(pa, pb),
                _ => {} // excluded by `fused_ok`
            }
        }
        a.guard(out_a);
        b.guard(out_b);
    }

    /// Resets every filter and zeroes non-finite output when the output or
    /// the recursive state holds NaN or infinity.
    fn guard(&mut self, block: &mut [f64]) {
        let mut acc = [0.0f64; 4];
        let mut chunks = block.chunks_exact(4);
        for c in &mut chunks {
            for j in 0..4 {
                acc[j] += c[j] * 0.0;
            }
        }
        let mut poison = acc[0] + acc[1] + acc[2] + acc[3];
        for &v in chunks.remainder() {
            poison += v * 0.0;
        }
        for s in &self.iir[..self.stages] {
            poison += s.up.poison() + s.down.poison();
        }
        poison += self.thiran.x1 * 0.0 + self.thiran.y1 * 0.0;
        if poison != 0.0 {
            self.reset();
            for v in block.iter_mut() {
                if !v.is_finite() {
                    *v = 0.0;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use realfft::RealFftPlanner;

    const FACTORS: [usize; 4] = [2, 4, 8, 16];
    const QUALITIES: [Quality; 2] = [Quality::Live, Quality::High];

    fn make(quality: Quality, factor: usize, fs: f64, max_block: usize) -> Oversampler {
        let mut os = Oversampler::new();
        os.prepare(&ProcessSpec {
            sample_rate: fs,
            max_block,
        });
        os.configure(quality, factor);
        os
    }

    /// Deterministic white noise in [-1, 1) (xorshift), independent of std.
    fn noise(len: usize, seed: u64) -> Vec<f64> {
        let mut s = seed | 1;
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 11) as f64 / (1u64 << 52) as f64 - 1.0
            })
            .collect()
    }

    /// Runs `input` through `os` in blocks of `block`, identity closure.
    fn run(os: &mut Oversampler, input: &[f64], block: usize) -> Vec<f64> {
        let mut out = input.to_vec();
        for b in out.chunks_mut(block) {
            os.process(b, |_| {});
        }
        out
    }

    /// Runs with a soft non-linearity inside, so aliasing paths are exercised.
    fn run_nl(os: &mut Oversampler, input: &[f64], block: usize) -> Vec<f64> {
        let mut out = input.to_vec();
        for b in out.chunks_mut(block) {
            os.process(b, |up| {
                for v in up.iter_mut() {
                    *v = (1.5 * *v).tanh();
                }
            });
        }
        out
    }

    fn impulse_response(os: &mut Oversampler, len: usize) -> Vec<f64> {
        let mut x = vec![0.0; len];
        x[0] = 1.0;
        run(os, &x, 512)
    }

    /// Magnitude spectrum (not normalised) of `x` with a rectangular window.
    fn spectrum(x: &[f64]) -> Vec<f64> {
        let mut planner = RealFftPlanner::<f64>::new();
        let fft = planner.plan_fft_forward(x.len());
        let mut input = x.to_vec();
        let mut out = fft.make_output_vec();
        fft.process(&mut input, &mut out).unwrap();
        out.iter().map(|c| c.norm()).collect()
    }

    fn db(x: f64) -> f64 {
        20.0 * x.max(1e-300).log10()
    }

    #[test]
    fn factor_one_is_exact_identity() {
        for q in QUALITIES {
            let mut os = make(q, 1, 44_100.0, 256);
            assert_eq!(os.factor(), 1);
            assert_eq!(os.latency_samples(), 0);
            assert_eq!(latency_for(q, 1, 44_100.0), 0);
            let x = noise(1000, 7);
            let mut calls = 0;
            let mut y = x.clone();
            for b in y.chunks_mut(100) {
                os.process(b, |up| {
                    calls += 1;
                    assert_eq!(up.len(), 100);
                });
            }
            assert_eq!(calls, 10);
            assert_eq!(x, y);
        }
    }

    #[test]
    fn closure_sees_oversampled_length_once() {
        for q in QUALITIES {
            for f in FACTORS {
                let mut os = make(q, f, 48_000.0, 64);
                let mut block = vec![0.1; 37];
                let mut seen = Vec::new();
                os.process(&mut block, |up| seen.push(up.len()));
                assert_eq!(seen, vec![37 * f]);
            }
        }
    }

    /// The ideal oversampler with an identity closure is a pure delay: unity
    /// gain from 20 Hz to 20 kHz, within +-0.05 dB.
    #[test]
    fn passband_flat_to_20k_at_44k1() {
        let fs = 44_100.0;
        let n = 16_384;
        for q in QUALITIES {
            for f in FACTORS {
                let mut os = make(q, f, fs, 512);
                let h = impulse_response(&mut os, n);
                let mag = spectrum(&h);
                let mut worst: f64 = 0.0;
                for (bin, &m) in mag.iter().enumerate() {
                    let hz = bin as f64 * fs / n as f64;
                    if (20.0..=20_000.0).contains(&hz) {
                        worst = worst.max(db(m).abs());
                    }
                }
                assert!(worst <= 0.05, "{q:?} x{f}: passband deviation {worst} dB");
            }
        }
    }

    /// `response()` agrees with the FFT of the measured impulse response.
    #[test]
    fn response_matches_measurement() {
        let fs = 48_000.0;
        let n = 8192;
        for q in QUALITIES {
            let mut os = make(q, 4, fs, 512);
            let h = impulse_response(&mut os, n);
            for &hz in &[100.0, 1_000.0, 10_000.0, 19_000.0] {
                let w = 2.0 * PI * hz / fs;
                let measured: Complex<f64> = h
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| Complex::from_polar(v, -w * i as f64))
                    .sum();
                let model = os.response(hz);
                assert!(
                    (measured - model).norm() < 1e-5,
                    "{q:?} {hz} Hz: {measured} vs {model}"
                );
            }
        }
    }

    /// Group delay `Re(DTFT(n h[n]) / DTFT(h[n]))` of the measured impulse
    /// response at 100 Hz and 1 kHz equals the reported live latency.
    #[test]
    fn live_group_delay_equals_latency() {
        for &fs in &[44_100.0, 48_000.0, 96_000.0] {
            for f in FACTORS {
                let mut os = make(Quality::Live, f, fs, 512);
                let lat = os.latency_samples() as f64;
                assert_eq!(os.latency_samples(), latency_for(Quality::Live, f, fs));
                let h = impulse_response(&mut os, 8192);
                for &hz in &[100.0, 1_000.0] {
                    let w = 2.0 * PI * hz / fs;
                    let (mut num, mut den) = (Complex::new(0.0, 0.0), Complex::new(0.0, 0.0));
                    for (i, &v) in h.iter().enumerate() {
                        let e = Complex::from_polar(v, -w * i as f64);
                        den += e;
                        num += e * i as f64;
                    }
                    let tau = (num / den).re;
                    assert!(
                        (tau - lat).abs() < 0.05,
                        "fs {fs} x{f} {hz} Hz: group delay {tau} vs latency {lat}"
                    );
                }
            }
        }
    }

    /// The live latency target of the preamp issue: <= 16 samples at 48 kHz, 4x.
    #[test]
    fn live_latency_budget() {
        assert!(latency_for(Quality::Live, 4, 48_000.0) <= 16);
        assert!(latency_for(Quality::Live, 8, 48_000.0) <= 16);
    }

    /// A symmetric, DC-free band-limited click (100 Hz..15 kHz windowed-sinc
    /// band-pass) peaks at its centre; through the linear-phase path it must
    /// peak exactly `latency_samples()` later.
    #[test]
    fn high_click_peak_lands_at_latency() {
        let fs = 44_100.0;
        let centre = 300usize;
        let half = 256isize;
        let (f1, f2) = (100.0 / fs, 15_000.0 / fs);
        let mut x = vec![0.0; 2048];
        for m in -half..=half {
            let t = m as f64;
            let sinc = |fc: f64| {
                if m == 0 {
                    2.0 * fc
                } else {
                    (2.0 * PI * fc * t).sin() / (PI * t)
                }
            };
            let win = 0.5 + 0.5 * (PI * t / (half as f64 + 1.0)).cos();
            x[(centre as isize + m) as usize] = (sinc(f2) - sinc(f1)) * win;
        }
        // Remove the residual DC with a scaled copy of the (symmetric) window.
        let dc: f64 = x.iter().sum();
        let win_sum: f64 = (-half..=half)
            .map(|m| 0.5 + 0.5 * (PI * m as f64 / (half as f64 + 1.0)).cos())
            .sum();
        for m in -half..=half {
            let win = 0.5 + 0.5 * (PI * m as f64 / (half as f64 + 1.0)).cos();
            x[(centre as isize + m) as usize] -= dc / win_sum * win;
        }
        assert!(x.iter().sum::<f64>().abs() < 1e-12);
        for f in FACTORS {
            let mut os = make(Quality::High, f, fs, 512);
            let y = run(&mut os, &x, 100);
            let peak = y
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
                .unwrap()
                .0;
            assert_eq!(peak, centre + os.latency_samples(), "x{f}");
        }
    }

    /// A 1 kHz sine comes out as the same sine delayed by exactly the latency,
    /// with an error below -100 dB.
    #[test]
    fn high_sine_delayed_by_latency() {
        for &fs in &[44_100.0, 48_000.0, 96_000.0] {
            for f in FACTORS {
                let mut os = make(Quality::High, f, fs, 512);
                let lat = os.latency_samples();
                assert_eq!(lat, latency_for(Quality::High, f, fs));
                let w = 2.0 * PI * 1_000.0 / fs;
                let x: Vec<f64> = (0..6000).map(|i| (w * i as f64).sin()).collect();
                let y = run(&mut os, &x, 333);
                let (mut err, mut sig) = (0.0, 0.0);
                for (i, &v) in y.iter().enumerate().skip(2000) {
                    let want = (w * (i - lat) as f64).sin();
                    err += (v - want) * (v - want);
                    sig += want * want;
                }
                let e = 10.0 * (err / sig).log10();
                assert!(e < -100.0, "fs {fs} x{f}: error {e} dB");
            }
        }
    }

    /// A tone written by the closure above the host Nyquist frequency, at a
    /// frequency that folds into 0..20 kHz, is rejected by >= 100 dB (live)
    /// and >= 120 dB (high) after decimation.
    #[test]
    fn stopband_rejects_tones_written_inside() {
        let fs = 44_100.0;
        for q in QUALITIES {
            let need = if q == Quality::Live { 100.0 } else { 120.0 };
            for f in FACTORS {
                // Folding into 0..20 kHz from the first stage's stopband, and
                // for higher factors from around multiples of fs.
                let mut tones = vec![24_200.0, 30_000.0, 40_000.0, 44_000.0];
                if f >= 4 {
                    tones.extend([2.0 * fs - 10_000.0, 2.0 * fs + 15_000.0]);
                }
                if f >= 8 {
                    tones.push(4.0 * fs - 5_000.0);
                }
                if f >= 16 {
                    tones.push(7.0 * fs + 3_000.0);
                }
                for &ft in &tones {
                    let mut os = make(q, f, fs, 512);
                    let w = 2.0 * PI * ft / (fs * f as f64);
                    let mut t = 0usize;
                    let mut y = vec![0.0; 8192];
                    for b in y.chunks_mut(512) {
                        os.process(b, |up| {
                            for v in up.iter_mut() {
                                *v = (w * t as f64).sin();
                                t += 1;
                            }
                        });
                    }
                    let tail = &y[4096..];
                    let rms = (tail.iter().map(|v| v * v).sum::<f64>() / tail.len() as f64).sqrt();
                    let rejection = -db(rms / 0.5f64.sqrt());
                    assert!(
                        rejection >= need,
                        "{q:?} x{f} tone {ft} Hz: rejection {rejection:.1} dB"
                    );
                }
            }
        }
    }

    /// A 10 kHz host-rate sine upsampled: the images at k fs +- 10 kHz in the
    /// oversampled buffer are >= 100 dB (live) / 120 dB (high) below the tone.
    #[test]
    fn images_rejected_in_upsampled_signal() {
        let fs = 44_100.0;
        let nh = 4096usize;
        let bin = 929usize; // 929 fs / 4096 = 10001.9 Hz, exactly on a bin
        let w = 2.0 * PI * bin as f64 / nh as f64;
        for q in QUALITIES {
            let need = if q == Quality::Live { 100.0 } else { 120.0 };
            for f in FACTORS {
                let mut os = make(q, f, fs, nh);
                let mut captured = Vec::new();
                for round in 0..3 {
                    let mut x: Vec<f64> = (0..nh)
                        .map(|i| (w * (i + round * nh) as f64).sin())
                        .collect();
                    os.process(&mut x, |up| {
                        if round == 2 {
                            captured = up.to_vec();
                        }
                    });
                }
                let mag = spectrum(&captured);
                let tone = mag[bin];
                let mut worst = f64::NEG_INFINITY;
                for k in 1..=f / 2 {
                    for image in [k * nh - bin, k * nh + bin] {
                        if image < mag.len() {
                            worst = worst.max(db(mag[image] / tone));
                        }
                    }
                }
                assert!(worst <= -need, "{q:?} x{f}: image at {worst:.1} dB");
            }
        }
    }

    #[test]
    fn block_size_invariance() {
        let x = noise(8192, 99);
        for q in QUALITIES {
            for f in [2, 4, 16] {
                let mut reference = None;
                for bs in [1, 7, 64, 513, 4096] {
                    let mut os = make(q, f, 48_000.0, 4096);
                    let y = run_nl(&mut os, &x, bs);
                    match &reference {
                        None => reference = Some(y),
                        Some(r) => assert!(r == &y, "{q:?} x{f} block {bs} differs"),
                    }
                }
            }
        }
    }

    #[test]
    fn reset_gives_bit_identical_output() {
        let x = noise(3000, 5);
        for q in QUALITIES {
            for f in FACTORS {
                let mut os = make(q, f, 44_100.0, 256);
                let a = run_nl(&mut os, &x, 100);
                os.reset();
                let b = run_nl(&mut os, &x, 100);
                assert!(a == b, "{q:?} x{f}");
            }
        }
    }

    #[test]
    fn silence_in_silence_out() {
        for q in QUALITIES {
            for f in FACTORS {
                let mut os = make(q, f, 48_000.0, 256);
                let y = run_nl(&mut os, &[0.0; 2000], 256);
                assert!(y.iter().all(|&v| v == 0.0), "{q:?} x{f}");
            }
        }
    }

    /// NaN from the closure or from the input never leaves the oversampler,
    /// the state heals by itself, and after `reset()` output matches a fresh
    /// instance bit for bit.
    #[test]
    fn non_finite_values_are_contained() {
        let x = noise(1024, 3);
        for q in QUALITIES {
            for f in FACTORS {
                let mut os = make(q, f, 48_000.0, 128);
                for (i, b) in x.clone().chunks_mut(128).enumerate() {
                    os.process(b, |up| {
                        if i == 2 {
                            up[5] = f64::NAN;
                            up[up.len() - 1] = f64::INFINITY;
                        }
                    });
                    assert!(b.iter().all(|v| v.is_finite()), "{q:?} x{f} block {i}");
                }
                // Healed automatically: a later block is finite and non-zero.
                let mut later = x[..128].to_vec();
                os.process(&mut later, |_| {});
                assert!(later.iter().all(|v| v.is_finite()));
                let mut bad = vec![f64::NAN, f64::INFINITY, 1e300, -1e300];
                os.process(&mut bad, |_| {});
                assert!(bad.iter().all(|v| v.is_finite()));
                os.reset();
                let a = run(&mut os, &x, 128);
                let mut fresh = make(q, f, 48_000.0, 128);
                let b = run(&mut fresh, &x, 128);
                assert!(a == b, "{q:?} x{f}");
            }
        }
    }

    /// After an impulse and a long silence, no filter state is subnormal and
    /// the output has decayed to exact zero.
    #[test]
    fn decaying_tails_reach_exact_zero() {
        for q in QUALITIES {
            for f in FACTORS {
                let mut os = make(q, f, 48_000.0, 512);
                let mut x = vec![0.0; 512];
                x[0] = 1.0;
                os.process(&mut x, |_| {});
                let mut last = vec![1.0; 512];
                for _ in 0..120 {
                    last.fill(0.0);
                    os.process(&mut last, |_| {});
                    for s in &os.iir {
                        for l in s.up.s.iter().chain(s.down.s.iter()) {
                            assert!(!l[0].is_subnormal() && !l[1].is_subnormal());
                        }
                    }
                }
                assert!(last.iter().all(|&v| v == 0.0), "{q:?} x{f}");
                for s in &os.iir {
                    assert!(s
                        .up
                        .s
                        .iter()
                        .chain(s.down.s.iter())
                        .all(|l| *l == [0.0, 0.0]));
                }
            }
        }
    }

    /// `configure` only re-plans: every buffer keeps its address and length.
    #[test]
    fn configure_reuses_preallocated_buffers() {
        let mut os = make(Quality::Live, 2, 44_100.0, 1024);
        let ptrs = |os: &Oversampler| {
            let mut v = vec![(os.buf_a.as_ptr() as usize, os.buf_a.len())];
            v.push((os.buf_b.as_ptr() as usize, os.buf_b.len()));
            for s in &os.fir {
                for b in [&s.up_buf, &s.scratch, &s.down_even, &s.down_odd] {
                    v.push((b.as_ptr() as usize, b.len()));
                }
            }
            v
        };
        let before = ptrs(&os);
        let mut x = noise(1024, 1);
        for q in QUALITIES {
            for f in [1, 2, 4, 8, 16, 4, 2] {
                os.configure(q, f);
                assert_eq!(os.quality(), q);
                assert_eq!(os.factor(), f);
                assert_eq!(os.latency_samples(), latency_for(q, f, 44_100.0));
                os.process(&mut x, |_| {});
                assert_eq!(ptrs(&os), before);
            }
        }
    }

    /// The bound `IIR_FLUSH_PERIOD` relies on: no live section decays
    /// faster than by 0.02 per sample, so a state above `FLUSH_BELOW` at one
    /// flush is far from denormal at the next.
    #[test]
    fn live_sections_decay_slowly_enough_for_the_flush_period() {
        let mut slowest = f64::INFINITY;
        for &fs in &[22_050.0, 44_100.0, 48_000.0, 96_000.0, 192_000.0, 384_000.0] {
            let d = Designs::new(fs);
            for k in 0..MAX_STAGES {
                for &a in &d.iir[k].coefs[..d.iir[k].count] {
                    slowest = slowest.min(a.abs());
                }
            }
        }
        assert!(slowest >= 0.02, "smallest coefficient {slowest}");
        let worst = FLUSH_BELOW * slowest.powi(IIR_FLUSH_PERIOD as i32);
        assert!(worst > 1e-300, "{worst:e}");
    }

    /// Each stage meets its stopband target on a dense grid, and the live
    /// and high half-bands are real half-bands: H(w) + H(pi - w) = 1 for the
    /// FIR (zero phase), and |H|^2 + |H(pi - w)|^2 = 1 for the IIR (power
    /// complementary).
    #[test]
    fn stage_designs_meet_targets() {
        for &fs in &[44_100.0, 48_000.0, 96_000.0, 192_000.0] {
            let d = Designs::new(fs);
            for k in 0..MAX_STAGES {
                let tbw = stage_transition(fs, k + 1);
                assert!(iir_stopband_db(&d.iir[k], tbw) <= -LIVE_STOPBAND_DB);
                assert!(fir_stopband_db(&d.fir[k], tbw) <= -120.0);
                for i in 1..50 {
                    let w = PI * i as f64 / 50.0;
                    let (a, b) = (d.fir[k].amplitude(w), d.fir[k].amplitude(PI - w));
                    assert!((a + b - 1.0).abs() < 1e-12);
                    let (a, b) = (
                        iir_halfband_response(&d.iir[k], w).norm_sqr(),
                        iir_halfband_response(&d.iir[k], PI - w).norm_sqr(),
                    );
                    assert!((a + b - 1.0).abs() < 1e-9);
                }
            }
        }
        // The 44.1 kHz first stage spans exactly 20 kHz -> 24.1 kHz.
        assert!((stage_transition(44_100.0, 1) - 4_100.0 / 88_200.0).abs() < 1e-12);
    }

    /// Allocations and frees made by `f`, counted by the test allocator
    /// (checked to count first, so a zero is not vacuous).
    fn allocations_in(f: impl FnOnce()) -> u32 {
        use nice_assert_no_alloc::{assert_no_alloc, reset_violation_count, violation_count};
        reset_violation_count();
        assert_no_alloc(|| drop(std::hint::black_box(Vec::<u8>::with_capacity(8))));
        assert_eq!(
            violation_count(),
            2,
            "the allocation counter is not installed"
        );
        reset_violation_count();
        assert_no_alloc(f);
        violation_count()
    }

    #[test]
    fn copy_state_from_is_exact_and_allocation_free() {
        let fs = 48_000.0;
        let x = noise(6_000, 7);
        let (head, tail) = x.split_at(2_345);
        for (quality, factor) in [
            (Quality::Live, 2),
            (Quality::Live, 4),
            (Quality::Live, 8),
            (Quality::High, 2),
            (Quality::High, 4),
            (Quality::High, 16),
        ] {
            // Standby: prepared alike, another configuration and history.
            let mut running = make(quality, factor, fs, 256);
            let mut standby = make(Quality::High, 8, fs, 256);
            run_nl(&mut running, head, 100);
            run_nl(&mut standby, &noise(999, 3), 77);
            assert!(standby.can_copy_state_from(&running));
            let n = allocations_in(|| standby.copy_state_from(&running));
            assert_eq!(n, 0, "{quality:?} {factor}x allocated or freed");
            assert_eq!(standby.latency_samples(), running.latency_samples());
            for bs in [1usize, 64, 256, 700] {
                let a = run_nl(&mut running, &tail[..1_000], bs);
                let b = run_nl(&mut standby, &tail[..1_000], bs);
                assert!(
                    a == b,
                    "{quality:?} {factor}x: outputs differ (blocks {bs})"
                );
            }
            // Copied between `upsample` and `downsample`: the oversampled
            // signal waiting in the buffer comes along.
            let block = &tail[1_000..1_200];
            running.upsample(block);
            running.oversampled().iter_mut().for_each(|v| *v = v.tanh());
            let n = allocations_in(|| standby.copy_state_from(&running));
            assert_eq!(n, 0);
            let (mut a, mut b) = (block.to_vec(), block.to_vec());
            running.downsample(&mut a);
            standby.downsample(&mut b);
            assert!(a == b, "{quality:?} {factor}x: pending signal differs");
        }
    }

    #[test]
    fn copy_state_from_another_preparation_takes_the_configuration() {
        // Another block size: an exact copy would need other buffers, so
        // the standby keeps its own, takes the configuration and is reset.
        let mut running = make(Quality::High, 4, 48_000.0, 256);
        let mut standby = make(Quality::Live, 2, 48_000.0, 64);
        run_nl(&mut running, &noise(1_000, 5), 100);
        run_nl(&mut standby, &noise(1_000, 6), 100);
        assert!(!standby.can_copy_state_from(&running));
        let n = allocations_in(|| standby.copy_state_from(&running));
        assert_eq!(n, 0);
        assert_eq!((standby.quality(), standby.factor()), (Quality::High, 4));
        let mut fresh = make(Quality::High, 4, 48_000.0, 64);
        let x = noise(2_000, 9);
        assert!(run_nl(&mut standby, &x, 100) == run_nl(&mut fresh, &x, 100));
    }
}
