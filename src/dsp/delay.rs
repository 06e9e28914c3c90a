//! A fixed-capacity integer delay line.
//!
//! Used to keep the dry signal time-aligned with the wet path's latency and to
//! stand in for the oversampler's latency when no non-linear stage is active.
//! Capacity is allocated in `prepare`; changing the delay never allocates.
//!
//! The line keeps the last `max_delay` input samples (its history), not a
//! ring: delaying a block of `n ≥ d` samples in place is one move of its
//! first `n − d` samples by `d` and a copy of `d` history samples in front,
//! and keeping the history is a copy of `max_delay` samples. A delay that
//! only has to stay ready ([`DelayLine::push`]) costs that last copy alone.
//! The delays here are a few tens of samples and the blocks a few hundred,
//! so this moves about half the memory a ring does (which copies every
//! sample in and out).

/// An integer-sample delay that keeps its input's recent history.
#[derive(Clone, Debug, Default)]
pub struct DelayLine {
    /// The last `max_delay` input samples, oldest first.
    history: Vec<f64>,
    /// Where the next history is assembled (same length; swapped in).
    spare: Vec<f64>,
    /// Current delay in samples (≤ `history.len()`).
    delay: usize,
}

impl DelayLine {
    /// Allocate room for delays up to `max_delay` samples.
    pub fn prepare(&mut self, max_delay: usize) {
        self.history = vec![0.0; max_delay];
        self.spare = vec![0.0; max_delay];
        self.delay = self.delay.min(max_delay);
    }

    /// Set the delay (clamped to the capacity). Keeps the history, so a
    /// longer delay plays the samples that really came that long ago.
    pub fn set_delay(&mut self, delay: usize) {
        self.delay = delay.min(self.history.len());
    }

    /// Current delay in samples.
    pub fn delay(&self) -> usize {
        self.delay
    }

    /// Clear the stored history.
    pub fn reset(&mut self) {
        self.history.fill(0.0);
    }

    /// Assemble the history after `block` in `spare` (swapped in by the
    /// caller once the old history is no longer needed).
    fn next_history(&mut self, block: &[f64]) {
        let (m, n) = (self.history.len(), block.len());
        if n >= m {
            self.spare.copy_from_slice(&block[n - m..]);
        } else {
            self.spare[..m - n].copy_from_slice(&self.history[n..]);
            self.spare[m - n..].copy_from_slice(block);
        }
    }

    /// Feed `block` without reading the delayed signal out: the line's
    /// state afterwards is the one [`Self::process`] leaves (for a path
    /// that must stay ready while its output is not used).
    pub fn push(&mut self, block: &[f64]) {
        if self.delay == 0 {
            return;
        }
        self.next_history(block);
        std::mem::swap(&mut self.history, &mut self.spare);
    }

    /// Delay `block` in place.
    pub fn process(&mut self, block: &mut [f64]) {
        let d = self.delay;
        if d == 0 {
            return;
        }
        self.next_history(block);
        let (m, n) = (self.history.len(), block.len());
        // Sample i becomes input i − d: from the block when i ≥ d, else
        // from the history (whose last sample is input −1).
        if n > d {
            block.copy_within(..n - d, d);
        }
        let k = n.min(d);
        block[..k].copy_from_slice(&self.history[m - d..m - d + k]);
        std::mem::swap(&mut self.history, &mut self.spare);
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

    /// Against a plain per-sample reference, over block sizes below, at
    /// and above the delay and the capacity.
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

    /// A delay changed mid-stream plays the input that came that long ago
    /// (the line keeps its full capacity of history whatever the delay).
    #[test]
    fn a_longer_delay_reads_the_real_history() {
        let mut d = DelayLine::default();
        d.prepare(50);
        d.set_delay(3);
        let input: Vec<f64> = (1..=400).map(f64::from).collect();
        let mut out = input.clone();
        let (a, b) = out.split_at_mut(200);
        for piece in a.chunks_mut(30) {
            d.process(piece);
        }
        d.set_delay(40);
        for piece in b.chunks_mut(7) {
            d.process(piece);
        }
        for (i, y) in out.iter().enumerate() {
            let delay = if i < 200 { 3 } else { 40 };
            let want = if i < delay { 0.0 } else { input[i - delay] };
            assert_eq!(*y, want, "sample {i}");
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
