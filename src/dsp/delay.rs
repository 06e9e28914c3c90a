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
//!
//! A delay change can jump ([`DelayLine::set_delay`]: for a signal nobody
//! hears, such as a loudness reference) or crossfade from the old tap to the
//! new one ([`DelayLine::set_delay_faded`]): a jump of a heard signal would
//! repeat or skip samples, a click. The history is kept at every delay,
//! including 0, so a new delay always plays what really came that long ago.

/// An integer-sample delay that keeps its input's recent history.
#[derive(Clone, Debug, Default)]
pub struct DelayLine {
    /// The last `max_delay` input samples, oldest first.
    history: Vec<f64>,
    /// Where the next history is assembled (same length; swapped in).
    spare: Vec<f64>,
    /// Current delay in samples (≤ `history.len()`).
    delay: usize,
    /// The delay being faded out while a crossfade to `delay` runs.
    fade_from: usize,
    /// Samples of the crossfade done (`fade_len` when none runs).
    fade_pos: usize,
    /// Length of the crossfade in samples.
    fade_len: usize,
}

impl DelayLine {
    /// Allocate room for delays up to `max_delay` samples.
    pub fn prepare(&mut self, max_delay: usize) {
        self.history = vec![0.0; max_delay];
        self.spare = vec![0.0; max_delay];
        self.delay = self.delay.min(max_delay);
    }

    /// Set the delay (clamped to the capacity) at once. Keeps the history,
    /// so a longer delay plays the samples that really came that long ago.
    pub fn set_delay(&mut self, delay: usize) {
        self.delay = delay.min(self.history.len());
        self.fade_pos = self.fade_len;
    }

    /// Move to a new delay (clamped to the capacity) by crossfading linearly
    /// from the old tap to the new one over `fade_samples` samples. A change
    /// during a crossfade starts a new one from the tap being faded in.
    pub fn set_delay_faded(&mut self, delay: usize, fade_samples: usize) {
        let delay = delay.min(self.history.len());
        if delay == self.delay {
            return;
        }
        self.fade_from = self.delay;
        self.delay = delay;
        self.fade_len = fade_samples.max(1);
        self.fade_pos = 0;
    }

    /// True while a crossfade between two taps runs.
    pub fn fading(&self) -> bool {
        self.fade_pos < self.fade_len
    }

    /// Become a copy of `other` (same capacity) without allocating.
    pub fn copy_from(&mut self, other: &Self) {
        if self.history.len() == other.history.len() {
            self.history.copy_from_slice(&other.history);
        } else {
            self.history.fill(0.0);
        }
        self.delay = other.delay.min(self.history.len());
        self.fade_from = other.fade_from.min(self.history.len());
        (self.fade_pos, self.fade_len) = (other.fade_pos, other.fade_len);
    }

    /// Current delay in samples.
    pub fn delay(&self) -> usize {
        self.delay
    }

    /// Clear the stored history.
    pub fn reset(&mut self) {
        self.reset_to(0.0);
    }

    /// Forget the history: as if `value` had been the input for ever.
    pub fn reset_to(&mut self, value: f64) {
        self.history.fill(value);
        self.fade_pos = self.fade_len;
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
        if self.history.is_empty() {
            return;
        }
        self.fade_pos = (self.fade_pos + block.len()).min(self.fade_len);
        self.next_history(block);
        std::mem::swap(&mut self.history, &mut self.spare);
    }

    /// Delay `block` in place. The input must be finite (the chain's is:
    /// it guards its input once, at the front); as a [`crate::dsp::stage::Stage`]
    /// the line takes a non-finite sample as 0.
    pub fn process(&mut self, block: &mut [f64]) {
        if self.fading() {
            self.process_fading(block);
            return;
        }
        let d = self.delay;
        if d == 0 {
            self.push(block);
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

    /// [`Self::process`] while the taps crossfade. Sample i reads input
    /// i − d of both taps; walking backwards, writing sample i only destroys
    /// input i, which no later (smaller) i reads.
    fn process_fading(&mut self, block: &mut [f64]) {
        self.next_history(block);
        let (m, n) = (self.history.len(), block.len());
        let (from, to) = (self.fade_from, self.delay);
        let (pos, len) = (self.fade_pos, self.fade_len as f64);
        let history = &self.history;
        let tap = |block: &[f64], d: usize, i: usize| {
            if i >= d {
                block[i - d]
            } else {
                history[m - d + i]
            }
        };
        for i in (0..n).rev() {
            let (a, b) = (tap(block, from, i), tap(block, to, i));
            // Past the fade's end exactly `b`, as the settled path gives it
            // (`a + 1·(b − a)` can be 1 ulp off `b`).
            block[i] = if pos + i + 1 >= self.fade_len {
                b
            } else {
                a + (pos + i + 1) as f64 / len * (b - a)
            };
        }
        self.fade_pos = (pos + n).min(self.fade_len);
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

    /// A faded change plays the crossfade of the two taps, sample for
    /// sample, whatever the block partition, and then the new delay.
    #[test]
    fn a_faded_delay_change_crossfades_the_two_taps() {
        let input: Vec<f64> = (0..400)
            .map(|i| (i as f64 * 0.1).sin() + 0.01 * i as f64)
            .collect();
        let (from, to, fade, at) = (3usize, 17usize, 50usize, 120usize);
        let tap = |d: usize, i: usize| if i >= d { input[i - d] } else { 0.0 };
        let expected: Vec<f64> = (0..input.len())
            .map(|i| {
                if i < at {
                    tap(from, i)
                } else {
                    let k = ((i - at + 1) as f64 / fade as f64).min(1.0);
                    tap(from, i) + k * (tap(to, i) - tap(from, i))
                }
            })
            .collect();
        for sizes in [[1usize, 1], [7, 64], [300, 5]] {
            let mut d = DelayLine::default();
            d.prepare(32);
            d.set_delay(from);
            let mut out = input.clone();
            let (mut start, mut k) = (0, 0);
            while start < out.len() {
                if start == at {
                    d.set_delay_faded(to, fade);
                }
                let mut end = (start + sizes[k % 2]).min(out.len());
                if start < at && end > at {
                    end = at;
                }
                d.process(&mut out[start..end]);
                start = end;
                k += 1;
            }
            for (i, (o, e)) in out.iter().zip(&expected).enumerate() {
                assert!((o - e).abs() < 1e-12, "{sizes:?} sample {i}: {o} vs {e}");
            }
        }
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
