//! A fixed-capacity integer delay line (ring buffer).
//!
//! Used to keep the dry signal time-aligned with the wet path's latency and to
//! stand in for the oversampler's latency when no non-linear stage is active.
//! Capacity is allocated in `prepare`; changing the delay never allocates.

/// Extra ring room beyond the largest delay: a block of up to this many
/// samples is written whole and then read whole (two copies each) instead
/// of sample by sample. The chain's chunks (`MAX_BLOCK`) fit in one piece.
const SLACK: usize = super::MAX_BLOCK;

/// An integer-sample delay with a preallocated ring buffer.
#[derive(Clone, Debug, Default)]
pub struct DelayLine {
    /// Ring buffer; its length is the largest delay + 1 + `SLACK`.
    buffer: Vec<f64>,
    /// Largest delay `set_delay` accepts.
    max_delay: usize,
    /// Next write position in `buffer`.
    write: usize,
    /// Current delay in samples.
    delay: usize,
}

impl DelayLine {
    /// Allocate room for delays up to `max_delay` samples.
    pub fn prepare(&mut self, max_delay: usize) {
        self.buffer = vec![0.0; max_delay + 1 + SLACK];
        self.max_delay = max_delay;
        self.write = 0;
        self.delay = self.delay.min(max_delay);
    }

    /// Set the delay (clamped to the capacity). Does not clear the buffer.
    pub fn set_delay(&mut self, delay: usize) {
        self.delay = delay.min(self.max_delay);
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

    /// Feed `block` without reading the delayed signal out: the line's
    /// state afterwards is the one [`Self::process`] leaves (for a path
    /// that must stay ready while its output is not used).
    pub fn push(&mut self, block: &[f64]) {
        if self.delay == 0 || self.buffer.is_empty() {
            return;
        }
        let len = self.buffer.len();
        // Only the last `len` samples can stay in the ring.
        let skip = block.len().saturating_sub(len);
        let block = &block[skip..];
        let w = (self.write + skip) % len;
        let n = block.len();
        let first = n.min(len - w);
        self.buffer[w..w + first].copy_from_slice(&block[..first]);
        self.buffer[..n - first].copy_from_slice(&block[first..]);
        self.write = (w + n) % len;
    }

    /// Delay `block` in place.
    ///
    /// Works in pieces of at most `len − delay` samples (≥ `SLACK` + 1): a
    /// piece is copied into the ring, then the delayed piece copied out. The
    /// read window starts `delay` positions behind the write window and is
    /// as long, so the only ring positions the write overwrites before they
    /// are read are those whose new value is the one wanted.
    pub fn process(&mut self, block: &mut [f64]) {
        if self.delay == 0 || self.buffer.is_empty() {
            return;
        }
        let len = self.buffer.len();
        let piece = len - self.delay;
        for chunk in block.chunks_mut(piece) {
            let n = chunk.len();
            let w = self.write;
            let first = n.min(len - w);
            self.buffer[w..w + first].copy_from_slice(&chunk[..first]);
            self.buffer[..n - first].copy_from_slice(&chunk[first..]);
            let r = (w + len - self.delay) % len;
            let first = n.min(len - r);
            chunk[..first].copy_from_slice(&self.buffer[r..r + first]);
            let rest = n - first;
            chunk[first..].copy_from_slice(&self.buffer[..rest]);
            self.write = (w + n) % len;
        }
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

    /// Against a plain per-sample reference (history in a Vec), over block
    /// sizes that cross the ring's wrap and exceed its slack.
    #[test]
    fn any_block_partition_matches_a_plain_delay() {
        for delay in [1usize, 5, 17, 100] {
            let mut d = DelayLine::default();
            d.prepare(100);
            d.set_delay(delay);
            let input: Vec<f64> = (0..2000)
                .map(|i| (i as f64 * 0.37).sin() + i as f64)
                .collect();
            let expected: Vec<f64> = (0..input.len())
                .map(|i| if i >= delay { input[i - delay] } else { 0.0 })
                .collect();
            let mut out = input.clone();
            let mut start = 0;
            for (k, size) in [1usize, 3, 64, 65, 7, 300, 2, 170]
                .iter()
                .cycle()
                .enumerate()
            {
                if start >= out.len() || k > 1000 {
                    break;
                }
                let end = (start + size).min(out.len());
                d.process(&mut out[start..end]);
                start = end;
            }
            assert_eq!(out, expected, "delay {delay}");
        }
    }

    /// Pushing some blocks instead of processing them leaves the same
    /// state: the output of the blocks that are processed is that of a
    /// plain delay of the whole input.
    #[test]
    fn push_leaves_the_state_process_leaves() {
        for delay in [0usize, 1, 5, 100] {
            let mut d = DelayLine::default();
            d.prepare(100);
            d.set_delay(delay);
            let input: Vec<f64> = (0..3000).map(|i| (i as f64 * 0.21).cos() + 1.0).collect();
            let mut start = 0;
            for (k, size) in [7usize, 300, 1, 64, 200, 33].iter().cycle().enumerate() {
                if start >= input.len() {
                    break;
                }
                let end = (start + size).min(input.len());
                if k % 2 == 0 {
                    d.push(&input[start..end]);
                } else {
                    let mut out = input[start..end].to_vec();
                    d.process(&mut out);
                    for (i, y) in (start..end).zip(&out) {
                        let want = if i >= delay { input[i - delay] } else { 0.0 };
                        assert_eq!(*y, want, "delay {delay}, sample {i}");
                    }
                }
                start = end;
            }
        }
    }

    #[test]
    fn delay_is_clamped_to_the_capacity() {
        let mut d = DelayLine::default();
        d.prepare(4);
        d.set_delay(50);
        assert_eq!(d.delay(), 4);
    }
}
