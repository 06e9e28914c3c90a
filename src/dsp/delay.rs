//! A fixed-capacity integer delay line (ring buffer).
//!
//! Used to keep the dry signal time-aligned with the wet path's latency and to
//! stand in for the oversampler's latency when no non-linear stage is active.
//! Capacity is allocated in `prepare`; changing the delay never allocates.

/// An integer-sample delay with a preallocated ring buffer.
#[derive(Clone, Debug, Default)]
pub struct DelayLine {
    /// Ring buffer; its length is the largest delay + 1.
    buffer: Vec<f64>,
    /// Next write position in `buffer`.
    write: usize,
    /// Current delay in samples.
    delay: usize,
}

impl DelayLine {
    /// Allocate room for delays up to `max_delay` samples.
    pub fn prepare(&mut self, max_delay: usize) {
        self.buffer = vec![0.0; max_delay + 1];
        self.write = 0;
        self.delay = self.delay.min(max_delay);
    }

    /// Set the delay (clamped to the capacity). Does not clear the buffer.
    pub fn set_delay(&mut self, delay: usize) {
        self.delay = delay.min(self.buffer.len().saturating_sub(1));
    }

    /// Current delay in samples.
    pub fn delay(&self) -> usize {
        self.delay
    }

    /// Clear the stored history.
    pub fn reset(&mut self) {
        self.buffer.fill(0.0);
        self.write = 0;
    }

    /// Delay `block` in place.
    pub fn process(&mut self, block: &mut [f64]) {
        if self.delay == 0 || self.buffer.is_empty() {
            return;
        }
        let len = self.buffer.len();
        let mut write = self.write;
        let mut read = if write >= self.delay {
            write - self.delay
        } else {
            write + len - self.delay
        };
        for x in block.iter_mut() {
            self.buffer[write] = *x;
            *x = self.buffer[read];
            write += 1;
            if write == len {
                write = 0;
            }
            read += 1;
            if read == len {
                read = 0;
            }
        }
        self.write = write;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_by_exactly_n_samples() {
        let mut d = DelayLine::default();
        d.prepare(10);
        d.set_delay(3);
        let mut x: Vec<f64> = (1..=8).map(f64::from).collect();
        d.process(&mut x);
        assert_eq!(x, [0.0, 0.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    }

    #[test]
    fn zero_delay_is_identity() {
        let mut d = DelayLine::default();
        d.prepare(4);
        let mut x = [1.0, -2.0, 3.0];
        d.process(&mut x);
        assert_eq!(x, [1.0, -2.0, 3.0]);
    }
}
