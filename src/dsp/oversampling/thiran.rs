//! The live quality's fractional-delay pad.
//!
//! The live stages' group delay at DC is not a whole number of host samples
//! (`design.rs`); the fractional part of the total is padded at the host rate
//! by a first-order Thiran allpass `(c + z^-1) / (1 + c z^-1)`, `c = (1 - d) /
//! (1 + d)`, `d` in [0.5, 1.5), so the low-frequency group delay is an
//! integer.

use super::flush;
use crate::dsp::fma::{MulAdd, Unfused};

/// The Thiran pad's state is flushed every this many host samples.
const FLUSH_PERIOD: usize = 64;

/// First-order Thiran allpass at the host rate that pads the live latency
/// to a whole number of samples.
#[derive(Clone, Copy, Debug)]
pub(super) struct Thiran {
    /// `c = (1 - d) / (1 + d)` for the fractional delay `d`.
    pub(super) c: f64,
    /// The filter's memory.
    pub(super) state: ThiranState,
    /// Samples since the last denormal flush.
    pub(super) phase: usize,
}

/// The memory of the allpass, held in registers by the loops that run it.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct ThiranState {
    /// Previous input.
    x1: f64,
    /// Previous output.
    y1: f64,
}

impl ThiranState {
    /// One sample through the allpass with coefficient `c`: `y = c x + (x1
    /// - c y1)`, the bracket formed from the state first (as each allpass
    /// section of the half-bands, see `iir_tick`).
    #[inline(always)]
    pub(super) fn tick<F: MulAdd>(&mut self, c: f64, x: f64) -> f64 {
        let y = F::mad1(c, x, F::mad1(-c, self.y1, self.x1));
        self.x1 = x;
        self.y1 = y;
        y
    }
}

impl Thiran {
    pub(super) fn new(delay: f64) -> Self {
        Thiran {
            c: (1.0 - delay) / (1.0 + delay),
            state: ThiranState::default(),
            phase: 0,
        }
    }

    pub(super) fn reset(&mut self) {
        self.state = ThiranState::default();
        self.phase = 0;
    }

    /// How many of the next `remaining` samples a loop may run before the
    /// state is due for its flush.
    #[inline(always)]
    pub(super) fn segment(&self, remaining: usize) -> usize {
        remaining.min(FLUSH_PERIOD - self.phase)
    }

    /// Ends a segment of `len` samples (at most `segment`) that left the
    /// memory at `state`: keeps it, and flushes it every `FLUSH_PERIOD`
    /// samples of the absolute count.
    #[inline(always)]
    pub(super) fn end_segment(&mut self, state: ThiranState, len: usize) {
        self.state = state;
        self.phase += len;
        if self.phase == FLUSH_PERIOD {
            self.phase = 0;
            self.state.x1 = flush(self.state.x1);
            self.state.y1 = flush(self.state.y1);
        }
    }

    /// Zero times the memory: NaN if it is not finite.
    pub(super) fn poison(&self) -> f64 {
        self.state.x1 * 0.0 + self.state.y1 * 0.0
    }

    /// Runs the pad over `block` in place.
    pub(super) fn process(&mut self, block: &mut [f64]) {
        let c = self.c;
        let mut start = 0;
        while start < block.len() {
            let end = start + self.segment(block.len() - start);
            let mut state = self.state;
            for v in block[start..end].iter_mut() {
                *v = state.tick::<Unfused>(c, *v);
            }
            self.end_segment(state, end - start);
            start = end;
        }
    }
}
