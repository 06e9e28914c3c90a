//! Compare ("level-matched bypass"): the gain that plays the dry signal at
//! the loudness of the processed output, worked out all the time so that
//! switching is instant and already matched.

use super::{LoudnessPair, LoudnessQuad};
use crate::dsp::fma::MulAdd;

/// The gain that plays the dry signal at the processed output's loudness:
/// `√(P_out/P_dry)` from a [`LoudnessPair`] (the auto-gain's K-weighted,
/// 3 s estimator) of the dry signal and the output before compare and
/// bypass, in host samples. It runs whether or not compare is on, so
/// switching is instant and already matched; the gain is recomputed every
/// hop (64 samples, 1.3 ms at 48 kHz) and ramped linearly between hops.
/// While compare is off only the estimate runs, not the gain ramp. Before
/// the first estimate, and in silence, it holds (1 at first). Both signals
/// are finite by construction (the chain's input is sanitized, and every
/// stage's output is finite), so they are weighed without a check.
pub(super) struct CompareMatch {
    /// K-weighted powers of the dry signal (a) and the output (b).
    pub(super) loudness: LoudnessPair,
    /// Gain at the start of the current hop.
    pub(super) gain_from: f64,
    /// Gain at the end of the current hop.
    pub(super) gain_to: f64,
}

impl CompareMatch {
    /// The gain's range, ±80 dB: past it one of the signals is silence.
    const LIMIT: f64 = 1e4;

    pub(super) fn new() -> Self {
        Self {
            loudness: LoudnessPair::new(),
            gain_from: 1.0,
            gain_to: 1.0,
        }
    }

    pub(super) fn set_sample_rate(&mut self, fs: f64) {
        self.loudness.set_sample_rate(fs);
    }

    pub(super) fn reset(&mut self) {
        self.loudness.reset();
        self.gain_from = 1.0;
        self.gain_to = 1.0;
    }

    /// Measure `dry` and `out` (same length) and, when `GAIN` (compare is
    /// on or fading), write the dry signal's matching gain per sample into
    /// `gain`. The estimate moves the same either way.
    pub(super) fn process<const GAIN: bool>(&mut self, dry: &[f64], out: &[f64], gain: &mut [f64]) {
        let mut start = 0;
        while start < dry.len() {
            let phase = self.loudness.hop_phase();
            let take = self.loudness.hop_left().min(dry.len() - start);
            let step = (self.gain_to - self.gain_from) / LoudnessPair::HOP as f64;
            let mut loud = self.loudness;
            for j in 0..take {
                let i = start + j;
                loud.weigh_finite(dry[i], out[i]);
                if GAIN {
                    gain[i] = self.gain_from + step * (phase + j + 1) as f64;
                }
            }
            self.loudness = loud;
            if self.loudness.advance(take) {
                self.end_hop();
            }
            start += take;
        }
    }

    /// [`Self::process`] with the gains written when `gain` (compare on or
    /// fading).
    #[inline(always)]
    pub(super) fn process_as(&mut self, gain: bool, dry: &[f64], out: &[f64], gains: &mut [f64]) {
        if gain {
            self.process::<true>(dry, out, gains);
        } else {
            self.process::<false>(dry, out, gains);
        }
    }

    /// [`Self::process_pair`] with the gains written when `gain`.
    #[inline(always)]
    pub(super) fn process_pair_as<M: MulAdd>(
        gain: bool,
        a: &mut CompareMatch,
        b: &mut CompareMatch,
        side_a: (&[f64], &[f64], &mut [f64]),
        side_b: (&[f64], &[f64], &mut [f64]),
    ) {
        if gain {
            Self::process_pair::<M, true>(a, b, side_a, side_b);
        } else {
            Self::process_pair::<M, false>(a, b, side_a, side_b);
        }
    }

    /// End of a hop: fold the hop into the averages and aim the gain at the
    /// new estimate.
    pub(super) fn end_hop(&mut self) {
        self.loudness.end_hop();
        self.gain_from = self.gain_to;
        let [p_dry, p_out] = self.loudness.powers();
        if p_dry > 1e-30 && p_out > 1e-30 {
            let g = (p_out / p_dry).sqrt();
            if g.is_finite() {
                self.gain_to = g.clamp(1.0 / Self::LIMIT, Self::LIMIT);
            }
        }
    }

    /// [`Self::process`] of a stereo pair's two channels at once, their
    /// K-weightings in the four lanes of a [`LoudnessQuad`]: each channel's
    /// gains are bit-identical to its own `process`. Each tuple is
    /// `(dry, out, gain)`, all six slices the same length (otherwise, and
    /// when the two cannot run together, each channel runs on its own).
    #[inline(always)]
    pub(super) fn process_pair<M: MulAdd, const GAIN: bool>(
        a: &mut CompareMatch,
        b: &mut CompareMatch,
        (dry_a, out_a, gain_a): (&[f64], &[f64], &mut [f64]),
        (dry_b, out_b, gain_b): (&[f64], &[f64], &mut [f64]),
    ) {
        let n = dry_a.len();
        if [
            out_a.len(),
            gain_a.len(),
            dry_b.len(),
            out_b.len(),
            gain_b.len(),
        ] != [n; 5]
        {
            a.process::<GAIN>(dry_a, out_a, gain_a);
            b.process::<GAIN>(dry_b, out_b, gain_b);
            return;
        }
        let mut start = 0;
        while start < n {
            let Some(mut quad) = LoudnessQuad::<M::F4>::load(&a.loudness, &b.loudness) else {
                a.process::<GAIN>(&dry_a[start..], &out_a[start..], &mut gain_a[start..]);
                b.process::<GAIN>(&dry_b[start..], &out_b[start..], &mut gain_b[start..]);
                return;
            };
            let phase = a.loudness.hop_phase();
            let take = a.loudness.hop_left().min(n - start);
            let end = start + take;
            let step_a = (a.gain_to - a.gain_from) / LoudnessPair::HOP as f64;
            let step_b = (b.gain_to - b.gain_from) / LoudnessPair::HOP as f64;
            let (from_a, from_b) = (a.gain_from, b.gain_from);
            let signals = dry_a[start..end]
                .iter()
                .zip(&out_a[start..end])
                .zip(dry_b[start..end].iter().zip(&out_b[start..end]));
            let gains = gain_a[start..end]
                .iter_mut()
                .zip(gain_b[start..end].iter_mut());
            for (j, (((da, oa), (db, ob)), (ga, gb))) in signals.zip(gains).enumerate() {
                quad.weigh_finite([*da, *oa, *db, *ob]);
                if GAIN {
                    let t = (phase + j + 1) as f64;
                    *ga = from_a + step_a * t;
                    *gb = from_b + step_b * t;
                }
            }
            quad.store(&mut a.loudness, &mut b.loudness);
            if a.loudness.advance(take) {
                a.end_hop();
            }
            if b.loudness.advance(take) {
                b.end_hop();
            }
            start = end;
        }
    }
}
