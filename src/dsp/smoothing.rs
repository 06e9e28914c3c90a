//! Parameter smoothing owned by the DSP core.
//!
//! A linear ramp in the value's own (linear) domain, advanced once per sample,
//! so a change that reaches the chain at sample `n` produces the same output
//! whatever the host's block size. Ramps are short (see
//! [`SMOOTHING_TIME_S`]): long enough that a gain step is not a click
//! (a 20 ms ramp puts the step's spectral splatter below the 50 Hz region),
//! short enough to feel immediate on a knob.
//!
//! Positive gains ramp in dB instead ([`GainSmoother`], an exponential
//! ramp): two gains that must cancel (the input and output conversions of a
//! calibration change, a gain and the auto-gain's compensation of it) cancel
//! exactly at every sample of the ramp when both ramp alike, because their
//! dB add. Two linear ramps of `g` and `1/g` would not: halfway from 1 to 10
//! their product is 5.5 × 0.55 ≈ 3 (+9.6 dB), which is the burst a moved knob
//! throws when its compensation ramps in another domain.

/// Time a smoothed parameter takes to reach a new target.
pub const SMOOTHING_TIME_S: f64 = 0.020;

/// A per-sample linear ramp towards a target value.
#[derive(Clone, Copy, Debug)]
pub struct LinearSmoother {
    /// Value produced by the last call to [`Self::next`].
    current: f64,
    /// Value the ramp ends at.
    target: f64,
    /// Increment per sample while ramping.
    step: f64,
    /// Samples left in the ramp; 0 means settled at `target`.
    remaining: u32,
    /// Ramp length in samples for a new target.
    ramp_samples: u32,
}

impl LinearSmoother {
    /// A smoother settled at `value`.
    pub fn new(value: f64) -> Self {
        Self {
            current: value,
            target: value,
            step: 0.0,
            remaining: 0,
            ramp_samples: 1,
        }
    }

    /// Set the ramp length for a sample rate (does not disturb the value).
    pub fn set_sample_rate(&mut self, sample_rate: f64) {
        self.ramp_samples = ((SMOOTHING_TIME_S * sample_rate).round() as u32).max(1);
    }

    /// Ramp to `target` from wherever the value is now. Setting the same
    /// target again does nothing, so calling this every block is cheap.
    #[inline]
    pub fn set_target(&mut self, target: f64) {
        if target == self.target {
            return;
        }
        self.target = target;
        self.remaining = self.ramp_samples;
        self.step = (target - self.current) / self.ramp_samples as f64;
    }

    /// Jump to `value` with no ramp.
    pub fn reset(&mut self, value: f64) {
        self.current = value;
        self.target = value;
        self.step = 0.0;
        self.remaining = 0;
    }

    /// The value for the next sample.
    #[inline]
    pub fn next_value(&mut self) -> f64 {
        if self.remaining > 0 {
            self.remaining -= 1;
            // Land exactly on the target so a settled gain multiplies exactly.
            self.current = if self.remaining == 0 {
                self.target
            } else {
                self.current + self.step
            };
        }
        self.current
    }

    /// Fill `out` with the next `out.len()` values.
    #[inline]
    pub fn fill(&mut self, out: &mut [f64]) {
        if self.remaining == 0 {
            out.fill(self.current);
        } else {
            for v in out.iter_mut() {
                *v = self.next_value();
            }
        }
    }

    /// True when the value sits at its target.
    pub fn is_settled(&self) -> bool {
        self.remaining == 0
    }

    /// The value of the last sample produced (the target once settled).
    pub fn value(&self) -> f64 {
        self.current
    }

    /// The value the ramp is heading to.
    pub fn target(&self) -> f64 {
        self.target
    }

    /// Samples left in the ramp (0 when settled).
    pub fn remaining(&self) -> usize {
        self.remaining as usize
    }
}

/// What a per-sample ramp offers the chain's gain curves.
pub trait Ramp {
    /// Write the next `out.len()` values.
    fn fill(&mut self, out: &mut [f64]);
    /// The ramp has reached its target.
    fn is_settled(&self) -> bool;
    /// The value of the last sample produced.
    fn value(&self) -> f64;
}

impl Ramp for LinearSmoother {
    fn fill(&mut self, out: &mut [f64]) {
        LinearSmoother::fill(self, out);
    }
    fn is_settled(&self) -> bool {
        LinearSmoother::is_settled(self)
    }
    fn value(&self) -> f64 {
        LinearSmoother::value(self)
    }
}

/// A per-sample exponential ramp of a positive gain towards a target (a
/// straight line in dB), over [`SMOOTHING_TIME_S`]; it lands exactly on the
/// target. Non-positive or non-finite targets are refused (the gain holds).
#[derive(Clone, Copy, Debug)]
pub struct GainSmoother {
    /// Value produced by the last call to [`Self::next_value`].
    current: f64,
    /// Value the ramp ends at.
    target: f64,
    /// Factor per sample while ramping.
    ratio: f64,
    /// Samples left in the current ramp.
    remaining: u32,
    /// Length of a full ramp in samples.
    ramp_samples: u32,
}

impl GainSmoother {
    /// A settled gain (1 if `value` is not a positive finite number).
    pub fn new(value: f64) -> Self {
        let value = if value.is_finite() && value > 0.0 {
            value
        } else {
            1.0
        };
        Self {
            current: value,
            target: value,
            ratio: 1.0,
            remaining: 0,
            ramp_samples: 1,
        }
    }

    /// Ramp length for `sample_rate`.
    pub fn set_sample_rate(&mut self, sample_rate: f64) {
        self.ramp_samples = ((SMOOTHING_TIME_S * sample_rate).round() as u32).max(1);
    }

    /// Ramp from the current value to `target` over the ramp length.
    #[inline]
    pub fn set_target(&mut self, target: f64) {
        if target == self.target || !(target.is_finite() && target > 0.0) {
            return;
        }
        self.target = target;
        self.remaining = self.ramp_samples;
        self.ratio = (target / self.current).powf(1.0 / self.ramp_samples as f64);
    }

    /// Jump to `value` at once.
    pub fn reset(&mut self, value: f64) {
        *self = Self {
            ramp_samples: self.ramp_samples,
            ..Self::new(value)
        };
    }

    /// The next sample's value.
    #[inline]
    pub fn next_value(&mut self) -> f64 {
        if self.remaining > 0 {
            self.remaining -= 1;
            self.current = if self.remaining == 0 {
                self.target
            } else {
                self.current * self.ratio
            };
        }
        self.current
    }

    /// The value the ramp is heading to.
    pub fn target(&self) -> f64 {
        self.target
    }
}

impl Ramp for GainSmoother {
    fn fill(&mut self, out: &mut [f64]) {
        if self.remaining == 0 {
            out.fill(self.current);
        } else {
            for v in out.iter_mut() {
                *v = self.next_value();
            }
        }
    }
    fn is_settled(&self) -> bool {
        self.remaining == 0
    }
    fn value(&self) -> f64 {
        self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramps_linearly_and_lands_exactly() {
        let mut s = LinearSmoother::new(0.0);
        s.set_sample_rate(1000.0); // 20-sample ramp
        s.set_target(1.0);
        let mut v = [0.0; 25];
        s.fill(&mut v);
        assert!((v[0] - 0.05).abs() < 1e-12);
        assert!((v[9] - 0.5).abs() < 1e-12);
        assert_eq!(v[19], 1.0);
        assert_eq!(v[24], 1.0);
        assert!(s.is_settled());
    }

    #[test]
    fn gain_ramps_are_straight_in_db_and_reciprocal_ramps_cancel() {
        let mut g = GainSmoother::new(1.0);
        let mut inv = GainSmoother::new(1.0);
        g.set_sample_rate(1000.0); // 20 samples
        inv.set_sample_rate(1000.0);
        g.set_target(100.0);
        inv.set_target(0.01);
        let (mut a, mut b) = ([0.0; 25], [0.0; 25]);
        g.fill(&mut a);
        inv.fill(&mut b);
        for i in 0..25 {
            // 40 dB in 20 steps: 2 dB per sample, then held.
            let db = 20.0 * a[i].log10();
            let expected = (2.0 * (i + 1) as f64).min(40.0);
            assert!((db - expected).abs() < 1e-9, "{i}: {db}");
            assert!((a[i] * b[i] - 1.0).abs() < 1e-12, "{i}: {}", a[i] * b[i]);
        }
        assert_eq!(a[19], 100.0);
        // A non-positive target is refused.
        g.set_target(0.0);
        assert!(Ramp::is_settled(&g));
        assert_eq!(g.target(), 100.0);
    }

    #[test]
    fn same_values_whatever_the_chunking() {
        let run = |chunk: usize| {
            let mut s = LinearSmoother::new(0.3);
            s.set_sample_rate(48_000.0);
            s.set_target(-2.0);
            let mut out = vec![0.0; 3000];
            for c in out.chunks_mut(chunk) {
                s.fill(c);
            }
            out
        };
        let a = run(1);
        for chunk in [7, 64, 513] {
            assert_eq!(a, run(chunk));
        }
    }
}
