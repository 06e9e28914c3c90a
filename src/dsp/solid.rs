//! The solid-state reference preamp ([`SolidPreamp`]): a transformerless
//! op-amp mic pre as in an audio interface, clean until its rails. It takes
//! the tube preamp's controls ([`PreampSettings`]: Gain, Level, high-pass,
//! output level; `tube` and `bias` mean nothing here) and offers the tube
//! [`Preamp`](crate::dsp::tube::Preamp)'s methods with the same meaning
//! (`set_rates`, `set_settings(_at_once)`, `small_signal_gain`,
//! `small_signal_response`, `process_part` with [`PreampPart`](crate::dsp::tube::PreampPart)), so the
//! chain's oversampled section can hold either type. A stereo pair is two
//! mono instances (the stages cost a few operations per sample).
//!
//! # Circuit
//!
//! ```text
//!  mic ─ 2×47 µF ─┬─ HPF ─ stage 1: instrumentation amp ─ Level ─ stage 2: output amp ─ output level
//!            2×1 kΩ bias     gain = Gain + 34.8 dB          0…−80 dB   gain 34.8 dB
//!                            clips at ±13.3 V                          clips at ±13.3 V
//! ```
//!
//! * Stage 1 is a THAT 1510 / INA217-class instrumentation amp. Its output
//!   swings ±13.3 V on ±15 V rails (THAT 1510/1512 datasheet, "Wide Output
//!   Swing: ±13.3 V on ±15 V supplies"; THAT Design Note 140 gives the
//!   1510's largest input at unity gain as +21.5 dBu, the same swing).
//!   Stage 2, the output (line / converter-driver) op-amp, runs on the same
//!   rails; it is given the same swing (a 5532-class op-amp swings about
//!   ±13 V on ±15 V into 2 kΩ).
//! * The input coupling: 47 µF in each leg (the usual phantom-blocking
//!   value) into the 1 kΩ bias resistor of each leg (the 1510 datasheet's
//!   Figure 3), differentially 23.5 µF into 2 kΩ: a one-pole high-pass at
//!   1/(2π·2 kΩ·23.5 µF) = 3.39 Hz. The chip's gain-set capacitor, whose
//!   corner moves with the gain, is left out (as if it were large enough).
//! * The high-pass switch is the tube preamp's (the same 12 dB/oct
//!   Butterworth code, `tube::SvfHighPass`), in the same place (after the
//!   input coupling, before the first gain stage's non-linearity).
//! * The output level (`output_db`) is applied in the back end, as the tube
//!   preamp does; the chain hands the preamp 0 dB and applies it itself,
//!   after its auto-gain.
//!
//! # Gain and make-up: how it compares with the tube preamp
//!
//! The clean gain is Gain + Level + [`MAKEUP_DB`] (69.6 dB), split evenly
//! between the two stages, as the tube preamp's comes from two like triode
//! stages. 69.6 dB is the tube preamp's own small-signal
//! gain above Gain + Level (12AX7 at bias 0: measured 69.62 dB at 1 kHz,
//! the same at every Gain and Level), so at the same knobs both types give
//! the same level for a clean signal, and A/B at the same settings is at the
//! same loudness before the auto-gain does anything (with another tube, the
//! auto-gain's static compensation, `small_signal_gain`, takes up the
//! difference: 12AT7 and 12AU7 have less gain). An interface's pre has no
//! interstage Level and 0…60 dB of gain; the make-up is what lets the
//! controls mean the same on both types: the output stage clips first while
//! Level is above −34.8 dB, the input stage below ("dirty but quiet", as
//! with the tube). Where the tube reaches about 1 % THD, +18…+20 dBu at
//! its output, the solid-state pre is still clean; it clips at +21.7 dBu,
//! where the tube goes on compressing softly for another 15 dB (+36 dBu at
//! 10 % THD).
//!
//! # The clipping curve
//!
//! A feedback op-amp is linear to within its open-loop error until its
//! output stage runs out of rail, then it stops there. Each stage is
//! modelled as its ideal output x (the input times the stage gain) through
//! a static curve (`curve::RailCurve`) with V = 13.3 V, knee start
//! a = 0.9·V = 11.97 V and knee width w = 2(V − a) = 2.66 V:
//!
//! * |x| ≤ a: f(x) = x, exactly;
//! * a < |x| < b = a + w = 14.63 V, t = (|x| − a)/w ∈ (0, 1):
//!   f = sgn(x)·(a + w·(t − t²/2));
//! * |x| ≥ b: f = sgn(x)·V.
//!
//! The knee's slope `f' = 1 − t` falls from 1 to 0 at a constant
//! curvature −1/w, and f(b) = a + w/2 = V: f is C¹ (slope continuous, no
//! corner), the least curved knee that rises by V − a while its slope goes
//! from 1 to 0. Least curvature, not more continuity, is what keeps the
//! aliasing down: measured as below, a C² knee of the same width
//! (`f' = 1 − 3t² + 2t³`, peak curvature 1.5/w) aliased −95.4 dB, a C³
//! one (`f' = 1 − 10t³ + 15t⁴ − 6t⁵`, peak 1.875/w) −90.0 dB, this one
//! −98.4 dB. It is tighter than any real op-amp needs: a sine whose peak
//! stays under a (up to 0.92 dB under the clip level) is not distorted at
//! all.
//!
//! The clip level: the output peak is held at the swing, 13.3 V, so a sine
//! clips at 13.3/√2 = 9.40 V rms = **+21.7 dBu** at the output (stage 2),
//! the middle of the +20…+22 dBu that modern interface pres reach.
//! ([`clip_level_dbu`]; the static curve reaches V at 1.1·V, so a sine
//! whose undistorted peak is V comes out with its peak at 0.975·V.)
//!
//! # Anti-derivative anti-aliasing
//!
//! Each curve is evaluated with first-order ADAA (Parker, Zavalishin,
//! Le Bivic, "Reducing the aliasing of nonlinear waveshaping using
//! continuous-time convolution", DAFx-16; Bilbao, Esqueda, Parker,
//! Välimäki, "Antiderivative antialiasing for memoryless nonlinearities",
//! IEEE SPL 2017): with the input taken as a straight line between samples,
//! the output averaged over one sample period is
//!
//! `y[n] = (1/T)∫ f(x(t)) dt = (F(x[n]) − F(x[n−1]))/(x[n] − x[n−1])`,
//!
//! F the antiderivative of f: the continuous-time output through a
//! one-sample box filter, whose nulls sit on multiples of the (oversampled)
//! rate where the folded harmonics land. F is closed form (f is odd, so
//! F is even):
//!
//! * |x| ≤ a: F = x²/2;
//! * in the knee: F = a²/2 + a·w·t + w²·(t²/2 − t³/6);
//! * |x| ≥ b: F = F(b) + V·(|x| − b), F(b) = a²/2 + a·w + w²/3.
//!
//! The quotient is ill-conditioned when x[n] ≈ x[n−1] (its rounding grows
//! as ulp(F)/Δ). It is not used where it need not be: both samples below
//! the knee give the exact average (x[n] + x[n−1])/2 (what the quotient is
//! there), both on the same flat top give ±V; a step of at most 1e-4 V
//! takes the curve at the mid-point, whose error f''·Δ²/24 and the
//! quotient's rounding (≈ 1e-13/Δ) are both under 1e-9 V there
//! (`curve::ADAA_MIN_STEP_VOLTS`). The result is clamped to ±V, the
//! range of any average of f (which also makes any input, NaN included,
//! give a finite output).
//!
//! On the linear part the average is (1 + z⁻¹)/2: −0.47 dB at 20 kHz at
//! 192 kHz and half a sample of delay. A one-pole pre-emphasis
//! (1 + b)/(1 + b·z⁻¹) on each stage's drive, b from the tube stages'
//! `adaa_compensation` (flat to 0.025 dB at 20 kHz: b ≈ 0.63 at 192 kHz),
//! makes each stage flat; its state is the stage's previous input, so a
//! stage carries one number. Both terms are in
//! [`SolidPreamp::small_signal_response`]; the group delay left,
//! 0.5 − b/(1 + b) ≈ 0.11 oversampled samples per stage, is part of the
//! phase response, not a latency (as with the tube stages).
//!
//! The stages run in chunks of up to 64 samples (`solid/stages.rs`), stage
//! by stage: the pre-emphasis recursion over the chunk, then the curve's
//! average, which carries nothing from sample to sample, per sub-chunk of
//! 8 samples: the exact `(u[n] + u[n−1])/2` where every u of the
//! sub-chunk is below the knee, the general ADAA step elsewhere. A stereo
//! pair runs in the two lanes of one loop ([`SolidPreamp::process_pair_part`],
//! as the chain's section runs it), through the build dispatch (the
//! pre-emphasis a fused multiply-add in the AVX2 + FMA build). Every path
//! gives what the plain per-sample recursion gives, bit for bit (tested in
//! every build, mono and pair).

//! # Measured (`solid/tests.rs`; 48 kHz host rate, 4x, the chain's way:
//! front at the host rate, stages oversampled, back at the host rate)
//!
//! * Small-signal gain: Gain + Level + 69.6 dB within 0.001 dB at 1 kHz.
//! * THD of a 1 kHz sine 1 dB under the clip level (output +20.7 dBu):
//!   4e-9 % (rounding; the curve is the identity there), live and high.
//! * 0.5 dB under the clip level 0.17 %; at it (undistorted peak 13.3 V)
//!   0.94 %, +21.6 dBu out (1 % THD is 0.03 dB over it: the clip level is
//!   the 1 % point); 0.5 dB over it 2.4 %, 2 dB over it 9.0 %.
//! * Aliasing, 7 kHz sine, Gain for 10 % THD at 1 kHz (−54.2 dBu in,
//!   Level −20 dB: Gain 28.3 dB), all non-harmonic power re the
//!   fundamental: live (IIR half-bands) −98.4 dB, high (FIR) −98.4 dB (the
//!   same: the floor is the curve's aliasing through ADAA at 4x, not the
//!   oversampler's).
//!
//! # Cost
//!
//! Measured with `benches/chain.rs` (`chain/preamp_live_solid_state`:
//! stereo, 48 kHz, live, the bench's −15 dBFS noise at Gain 20 / Level −20,
//! which puts the output stage at its knee) against the tube chain in the
//! same run (alternated builds, 9 runs, min / median, ms per second of
//! stereo): 5.75 / 6.07 before the stereo lanes and the sub-chunk knee
//! test (1.55× the tube chain's 3.71), 3.19 / 3.51 after (0.89× the tube
//! chain's 3.56). The issue's target, half the tube chain, is not met: the
//! oversampler and the chain around the stages are shared with the tube,
//! and the two pre-emphasis recursions (a dependent multiply-add per
//! sample each, run one after the other) are what is left in the stages.
//! A profile of that chain (perf; README, "The mic input"): the stages
//! 47 % (stage 2 at its knee 29 %, most of it the general ADAA step;
//! the passes that interleaved the blocks and applied Level 7 %), the
//! host-rate loop 19 %, the half-bands 14 %, this pre's host-rate front
//! 6 %. Those passes are gone (`solid/stages.rs`): 3.29 / 3.51 → 3.08 /
//! 3.11 (0.87× the tube chain's 3.53 in that run, alternated, 7 runs).
//! The shared part alone, about 1.5 ms, is over 40 % of the tube chain.
//! Third pass (a profile of the chain, share of its processing: the
//! stages 45 %, of which the curves' averages 32 % and the two
//! pre-emphasis recursions 13 %; the half-bands 17 %; the chain's front
//! 11 %, 6 % of it the rings of recent input; the auto-gain 8 %, the
//! compare 6 %, this pre's front 6 %): stage 2's pre-emphasis of one
//! chunk now runs beside stage 1's of the next (`solid/stages.rs`), the
//! pair's fronts in the lanes of one loop, the knee's antiderivative
//! without its division (`curve.rs`), the chain's rings written in two
//! straight loops: 3.06 / 3.49 → 2.69 / 2.90 ms (min / median, 4 runs
//! alternated with the build before; README, "The mic input"). Tried and
//! ruled out: a lower
//! oversampling factor for this preamp; at 2× the aliasing at 10 % THD
//! (7 kHz, 48 kHz) is −65.4 dB against −98.4 dB at 4× (target −90).
//!
//! Latency: 0 samples. Units: volts in at the mic input (after the chain's
//! pad and polarity), volts out at the output level control.

mod curve;
mod preamp;
mod stages;

#[cfg(test)]
mod tests;

pub use preamp::SolidPreamp;

use crate::dsp::stage::Stage;
use crate::dsp::tube::PreampSettings;
use crate::dsp::ProcessSpec;
use num_complex::Complex;

/// The op-amps' supply rails, ± volts.
pub const RAIL_VOLTS: f64 = 15.0;
/// Output swing of both stages on those rails, ± volts (THAT 1510
/// datasheet: ±13.3 V on ±15 V supplies).
pub const SWING_VOLTS: f64 = 13.3;
/// The fixed make-up above Gain + Level, dB: the tube preamp's small-signal
/// gain above Gain + Level with a 12AX7 at bias 0 (69.62 dB), so both types
/// give the same level at the same knobs.
pub const MAKEUP_DB: f64 = 69.6;
/// Stage 1's gain above the Gain control, dB (half the make-up).
pub const INPUT_STAGE_MAKEUP_DB: f64 = 0.5 * MAKEUP_DB;
/// Stage 2's fixed gain, dB (the other half).
pub const OUTPUT_STAGE_GAIN_DB: f64 = MAKEUP_DB - INPUT_STAGE_MAKEUP_DB;

/// The output clip level, dBu: the rms level of a sine whose peak is the
/// output swing, 20·log10(13.3 V/√2 / 0.7746 V) = +21.7 dBu.
pub fn clip_level_dbu() -> f64 {
    crate::dsp::volts_rms_to_dbu(SWING_VOLTS / std::f64::consts::SQRT_2)
}

impl Stage for SolidPreamp {
    type Settings = PreampSettings;

    fn prepare(&mut self, spec: &ProcessSpec) {
        SolidPreamp::prepare(self, spec);
    }

    fn reset(&mut self) {
        SolidPreamp::reset(self);
    }

    fn set_settings(&mut self, s: PreampSettings) {
        SolidPreamp::set_settings(self, s);
    }

    fn process(&mut self, block: &mut [f64]) {
        SolidPreamp::process(self, block);
    }

    fn response(&self, freq_hz: f64) -> Complex<f64> {
        self.small_signal_response(freq_hz)
    }

    fn latency_samples(&self) -> usize {
        0
    }
}
