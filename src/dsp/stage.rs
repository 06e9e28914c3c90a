//! The shape every DSP stage has: the [`Stage`] trait.
//!
//! A stage is one channel of one circuit (a triode stage, the preamp, the DI
//! box, the headphone amp) or of one piece of plumbing (a delay line, the
//! oversampler). Signal in and out is a voltage in volts, carried as `f64`,
//! processed in place. The chain owns concrete stage types (static
//! dispatch); the trait states the contract they all keep, and one generic
//! test suite (`stage/tests.rs`) holds every stage to it.
//!
//! # The contract
//!
//! * `prepare(spec)` gets ready for a stream at `spec.sample_rate` with
//!   blocks of at most `spec.max_block` samples: designs filters, builds
//!   tables, allocates every buffer. It may allocate and take milliseconds.
//!   It keeps the settings and ends in the settled state (as `reset`).
//!   Settings may be given before or after it.
//! * `reset()` returns to the state of an instance freshly prepared with the
//!   current settings: filters silent, operating points settled (silence in
//!   gives silence out, no thump), smoothed controls at their targets,
//!   sample counters at zero. What comes out afterwards is bit for bit what
//!   a fresh instance gives. Never allocates.
//! * `set_settings(s)` applies a `Copy` settings struct in physical units
//!   (volts, ohms, hertz, dB; samples for a delay). It recomputes only what
//!   changed and may smooth or crossfade the change. Never allocates.
//! * `process(block)` runs a block in place, of any length from 1 to
//!   `spec.max_block`. The output does not depend on how a signal is cut
//!   into blocks (ramps, flushes and sub-rate steps are tied to the sample
//!   count, not to block edges). Non-finite or absurd input never makes the
//!   output non-finite, and the stage recovers without a `reset`. Never
//!   allocates.
//! * `response(freq_hz)` is the complex response, volts out per volt in,
//!   at the current (target) settings and the prepared rate: for a linear
//!   stage its transfer function, for a non-linear one the small-signal
//!   response around its settled operating point. It is the digital filter
//!   as implemented (not the analog prototype it approximates), so it
//!   equals the DFT of the rendered impulse response; the suite checks
//!   that. It leaves out the latency: the stage's full response is
//!   `response(f) · exp(−j 2π f · latency_samples() / fs)`.
//! * `latency_samples()` is the integer delay, in samples at the stage's
//!   rate, that a chain compensates (the delay of the low frequencies where
//!   it is not a pure delay).
//!
//! # How the stages fit
//!
//! | stage                         | settings                              | what it maps            |
//! |-------------------------------|---------------------------------------|-------------------------|
//! | `tube::TriodeStage`           | [`TriodeSettings`]                    | `set_tube_bias`         |
//! | `tube::Preamp`                | `tube::PreampSettings`                | `small_signal_response` |
//! | `solid::SolidPreamp`          | `tube::PreampSettings`                | `small_signal_response` |
//! | `transformer::DiBox`          | `transformer::DiSettings`             |                         |
//! | `transformer::MicTransformer` | `transformer::MicTransformerSettings` |                         |
//! | `headphone::HeadphoneAmp`     | `headphone::HeadphoneSettings`        |                         |
//! | `mic::MicSource`              | `mic::MicSettings`                    |                         |
//! | `delay::DelayLine`            | [`DelaySettings`]                     | `set_delay(_faded)`     |
//! | [`OversamplerStage`]          | [`OversamplingSettings`]              | `configure`             |
//!
//! A delay line's capacity is part of making it (its own
//! `DelayLine::prepare(max_delay)`), not of the stream, so its
//! `Stage::prepare` only clears it; its latency is its delay and its
//! response is 1. The oversampler as a stage ([`OversamplerStage`]) is up-
//! then downsampling with nothing in between: the band-limiting and delay
//! that the non-linear stages inside it see. It wraps the `Oversampler`
//! because `response` needs the rate, which the oversampler does not tell.
//!
//! Not stages: `tube::StereoPreamp` (two channels in SIMD lanes, with
//! `process_stereo(left, right)`; each channel is bit-identical to a mono
//! `Preamp`, which is), `tube::AutoGain` (its gain follows a second, reference
//! input), and the chain itself (several channels of `f32`).

use super::ProcessSpec;
use num_complex::Complex;

mod impls;
#[cfg(test)]
mod tests;

pub use impls::{DelaySettings, OversamplerStage, OversamplingSettings, TriodeSettings};

/// One channel of a DSP stage: volts in, volts out, in place (see the
/// module header for the contract).
pub trait Stage {
    /// The controls, in physical units.
    type Settings: Copy;

    /// Get ready for a stream (may allocate); ends settled, as [`Self::reset`].
    fn prepare(&mut self, spec: &ProcessSpec);

    /// Back to the state of a freshly prepared instance with the current
    /// settings. Never allocates.
    fn reset(&mut self);

    /// Apply settings (recomputes only what changed; may smooth the change).
    /// Never allocates.
    fn set_settings(&mut self, settings: Self::Settings);

    /// Process a block of 1 to `max_block` samples in place. Never allocates.
    fn process(&mut self, block: &mut [f64]);

    /// Small-signal (or linear) response at `freq_hz`, volts out per volt
    /// in, latency left out.
    fn response(&self, freq_hz: f64) -> Complex<f64>;

    /// Latency in samples at the stage's rate.
    fn latency_samples(&self) -> usize;
}
