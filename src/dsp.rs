//! The DSP core: plain Rust, no plugin framework, no GUI, no locks, no logging.
//!
//! Every stage has the same shape: `prepare(&ProcessSpec)` (may allocate),
//! `reset()` and `process(&mut [f64])` (never allocate), and a `Copy`
//! settings struct in physical units. Inside the chain the signal is a
//! voltage in volts, carried as `f64`: converting dBFS → volts → dBFS then
//! rounding back to the host's `f32` is an exact identity, because the two
//! `f64` roundings are far below half an `f32` ulp.
//!
//! Level facts used throughout (see `docs/DESIGN.md`):
//! - 0 dBu = √0.6 V rms = 0.774 597 V rms (1 mW into 600 Ω).
//! - "0 dBFS = X dBu" means a full-scale sine has an rms level of X dBu, so a
//!   sample value of 1.0 is a peak voltage of √2 · 0.7746 · 10^(X/20) V.

pub mod chain;
pub mod delay;
pub(crate) mod divider;
pub(crate) mod fma;
pub mod headphone;
pub mod loudness;
pub mod meters;
pub mod mic;
pub mod oversampling;
pub mod signals;
pub(crate) mod simd;
pub mod smoothing;
pub mod solid;
pub mod stage;
pub mod transformer;
pub mod tube;

pub use simd::{Arith, Isa, Lane, F2, F4};

/// What a stage needs to know about the stream it will process.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProcessSpec {
    /// Sample rate the stage runs at, in Hz (the oversampled rate for stages
    /// inside the oversampler).
    pub sample_rate: f64,
    /// Largest block `process` will ever be called with.
    pub max_block: usize,
    /// The build the stage's loops run in (the chain picks it once, in its
    /// `prepare`, and hands it to every stage).
    pub isa: Isa,
}

impl ProcessSpec {
    /// `sample_rate` and `max_block`, with the fastest build this CPU runs.
    pub fn new(sample_rate: f64, max_block: usize) -> Self {
        Self {
            sample_rate,
            max_block,
            isa: Isa::detect(),
        }
    }
}

/// The chain processes host blocks in chunks of at most this many samples, so
/// every scratch buffer has a fixed size. The output does not depend on it;
/// 256 costs 4 % less than 64 on the live preamp chain (fewer per-chunk
/// set-ups of the oversampler and preamp loops) and 1 % less than 128.
pub const MAX_BLOCK: usize = 256;

/// 0 dBu in volts rms: the voltage that dissipates 1 mW in 600 Ω, √0.6 V.
pub const DBU_REF_VOLTS: f64 = 0.774_596_669_241_483_4;

/// Decibels to a linear amplitude ratio.
#[inline]
pub fn db_to_gain(db: f64) -> f64 {
    10f64.powf(db / 20.0)
}

/// Linear amplitude ratio to decibels (−inf for 0).
#[inline]
pub fn gain_to_db(gain: f64) -> f64 {
    20.0 * gain.abs().log10()
}

/// A level in dBu to volts rms.
#[inline]
pub fn dbu_to_volts_rms(dbu: f64) -> f64 {
    DBU_REF_VOLTS * db_to_gain(dbu)
}

/// Volts rms to dBu.
#[inline]
pub fn volts_rms_to_dbu(volts_rms: f64) -> f64 {
    gain_to_db(volts_rms / DBU_REF_VOLTS)
}

/// Peak voltage that a sample value of 1.0 (0 dBFS) stands for, when a
/// full-scale sine is calibrated to `cal_dbu` dBu rms.
#[inline]
pub fn full_scale_peak_volts(cal_dbu: f64) -> f64 {
    std::f64::consts::SQRT_2 * dbu_to_volts_rms(cal_dbu)
}
