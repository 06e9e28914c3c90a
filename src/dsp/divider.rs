//! The design machinery shared by every divider of a rational analog
//! impedance (the headphone amp's Zo into a load, the mic's source
//! impedance into the preamp's input): a response H(s) that is a ratio of
//! polynomials in s, made digital by the bilinear transform plus a short
//! FIR correction fitted with a fixed latency, so that magnitude and phase
//! match the analog H to 20 kHz even at 44.1 kHz.
//!
//! - `divider/rational.rs`: polynomials and impedances N(s)/D(s) in
//!   normalised s (s / 2 pi 1 kHz), built from R, L and C in series and
//!   parallel, and their roots (Durand-Kerner plus Newton polish);
//! - `divider/bilinear.rs`: the bilinear transform of a rational function
//!   into a cascade of biquads (roots mapped with z = (2 fs + s) /
//!   (2 fs - s), so a stable analog pole stays stable), and the cascade's
//!   response;
//! - `divider/correction.rs`: the correction C(z) = N(z) / (1 + BETA
//!   z^-1)^2 with a short FIR N fitted so that H_b C = z^-latency H on
//!   20 Hz .. 20 kHz (complex weighted least squares, Lawson reweighting
//!   toward minimax, Toeplitz normal equations solved by Cholesky).
//!
//! Why the latency: the bilinear transform warps the top of the band (at
//! 44.1 kHz, 20 kHz sees the analog network at ~95 kHz), and the exact
//! correction of that warp is slightly two-sided in time, so no causal
//! zero-latency filter of low order matches both magnitude and phase up to
//! 20 kHz (minimum-phase and causal fits stall at 0.1 .. 0.6 dB); a few
//! samples of delay make the fit exact to hundredths of a dB or better.
//! Each user picks its taps, latency and top fit frequency (the
//! headphone 12 taps and 4 samples to min(20 kHz, 0.45 fs); the mic 20
//! and 8 to 20 kHz, for its ribbon, whose response falls to 0 at Nyquist
//! after the transform: `dsp/mic.rs`).
//!
//! Everything here allocates and runs in `prepare()` (never on the audio
//! thread). The users: `headphone/loads.rs` (+ `headphone/fit.rs`, its
//! per-Zo grid) and `mic/design.rs`.

mod bilinear;
mod correction;
mod rational;

pub(crate) use bilinear::{bilinear, cascade, Section};
pub(crate) use correction::{
    correction_response, double_pole, double_pole_mad, fit_correction, FitGrid, BETA,
};
pub(crate) use rational::{eval_poly, Poly, Rat};
