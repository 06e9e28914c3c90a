//! Parameter smoothing owned by the DSP core.
//!
//! A linear ramp in the value's own (linear) domain, advanced once per sample,
//! so a change that reaches the chain at sample `n` produces the same output
//! whatever the host's block size. Ramps are short (see
//! [`SMOOTHING_TIME_S`]): long enough that a gain step is not a click
//! (a 20 ms ramp puts the step's spectral splatter below the 50 Hz region),
//! short enough to feel immediate on a knob.

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
