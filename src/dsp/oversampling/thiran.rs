//! The live quality's fractional-delay pad.
//!
//! The live stages' group delay at DC is not a whole number of host samples
//! (`design.rs`); the fractional part of the total is padded at the host rate
//! by a first-order Thiran allpass `(c + z^-1) / (1 + c z^-1)`, `c = (1 - d) /
//! (1 + d)`, `d` in [0.5, 1.5), so the low-frequency group delay is an
//! integer.

use super::flush;

/// The Thiran pad's state is flushed every this many host samples.
pub(super) const FLUSH_PERIOD: usize = 64;

/// First-order Thiran allpass at the host rate that pads the live latency
/// to a whole number of samples.
#[derive(Clone, Copy, Debug)]
pub(super) struct Thiran {
    /// `c = (1 - d) / (1 + d)` for the fractional delay `d`.
    pub(super) c: f64,
    /// Previous input.
    pub(super) x1: f64,
    /// Previous output.
    pub(super) y1: f64,
    /// Samples since the last denormal flush.
    pub(super) phase: usize,
}

impl Thiran {
    pub(super) fn new(delay: f64) -> Self {
        Thiran {
            c: (1.0 - delay) / (1.0 + delay),
            x1: 0.0,
            y1: 0.0,
            phase: 0,
        }
    }

    pub(super) fn reset(&mut self) {
        self.x1 = 0.0;
        self.y1 = 0.0;
        self.phase = 0;
    }

    pub(super) fn process(&mut self, block: &mut [f64]) {
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
