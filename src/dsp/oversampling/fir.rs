//! The high-quality stages at run time: linear-phase FIR half-bands (the
//! Kaiser designs are in `design.rs`).
//!
//! Every other tap of a half-band is zero: the upsampler computes one
//! dense symmetric output and one pure delay per input; the decimator one
//! dense symmetric sum on one phase plus the centre tap on the other.

use super::design::{FirDesign, MAX_FIR_PAIRS};
use super::{flush, MAX_FACTOR};

/// `out[n] = sum_i c[i] (buf[n + count + i] + buf[n + count - 1 - i])`: the
/// symmetric dense phase of a half-band, eight outputs at a time so the
/// compiler keeps the accumulators in vector registers. The scalar tail adds
/// in the same order, so every output is bit-identical whatever the split.
fn symmetric_fir(buf: &[f64], c: &[f64], out: &mut [f64]) {
    const W: usize = 8;
    let count = c.len();
    let len = out.len();
    let mut n = 0;
    while n + W <= len {
        // Every window this output chunk reads, sliced once so the inner
        // loop indexes within known bounds.
        let hi_all = &buf[n + count..n + 2 * count + W - 1];
        let lo_all = &buf[n..n + count + W - 1];
        let mut acc = [0.0f64; W];
        for ((&ci, hi), lo) in c.iter().zip(hi_all.windows(W)).zip(lo_all.windows(W).rev()) {
            for j in 0..W {
                acc[j] += ci * (hi[j] + lo[j]);
            }
        }
        out[n..n + W].copy_from_slice(&acc);
        n += W;
    }
    while n < len {
        let mut acc = 0.0;
        for (i, &ci) in c.iter().enumerate() {
            acc += ci * (buf[n + count + i] + buf[n + count - 1 - i]);
        }
        out[n] = acc;
        n += 1;
    }
}

/// One 2x linear-phase FIR stage: coefficients and history of both
/// directions.
#[derive(Clone, Debug)]
pub(super) struct FirStage {
    /// Off-centre tap pairs `h[D +- (2i+1)]`.
    pairs: [f64; MAX_FIR_PAIRS],
    /// The same pairs doubled: the upsampler's gain of 2 restores the level
    /// lost to zero-stuffing.
    up_pairs: [f64; MAX_FIR_PAIRS],
    /// Number of used pairs.
    count: usize,
    /// Delay of the decimator in high-rate samples (>= `D`; larger only on
    /// the last stage, to make the total latency an integer).
    pub(super) down_delay: usize,
    /// Upsampler input history (`D` samples) followed by the current input.
    pub(super) up_buf: Vec<f64>,
    /// Dense upsampler outputs of the current block.
    pub(super) scratch: Vec<f64>,
    /// Decimator history + current input, even-indexed high-rate samples.
    pub(super) down_even: Vec<f64>,
    /// Decimator history + current input, odd-indexed high-rate samples.
    pub(super) down_odd: Vec<f64>,
}

impl FirStage {
    pub(super) fn new(d: &FirDesign, max_in: usize) -> Self {
        let count = d.count;
        let half = d.half_length();
        let up_pairs = d.pairs.map(|p| 2.0 * p);
        // The decimator delay can grow by up to MAX_FACTOR - 1 samples.
        let down_hist = (half + MAX_FACTOR) / 2 + count;
        FirStage {
            pairs: d.pairs,
            up_pairs,
            count,
            down_delay: half,
            up_buf: vec![0.0; half + max_in],
            scratch: vec![0.0; max_in],
            down_even: vec![0.0; down_hist + max_in],
            down_odd: vec![0.0; down_hist + max_in],
        }
    }

    pub(super) fn half_length(&self) -> usize {
        2 * self.count - 1
    }

    /// History length of the decimator streams for the current delay.
    fn down_hist(&self) -> usize {
        self.down_delay / 2 + self.count
    }

    pub(super) fn reset(&mut self) {
        self.up_buf.fill(0.0);
        self.down_even.fill(0.0);
        self.down_odd.fill(0.0);
    }

    pub(super) fn up(&mut self, input: &[f64], out: &mut [f64]) {
        let len = input.len();
        let hist = self.half_length();
        let count = self.count;
        for (b, &x) in self.up_buf[hist..hist + len].iter_mut().zip(input) {
            *b = flush(x);
        }
        symmetric_fir(
            &self.up_buf[..hist + len],
            &self.up_pairs[..count],
            &mut self.scratch[..len],
        );
        let centre = &self.up_buf[count..count + len];
        for ((o, &d), &c) in out
            .chunks_exact_mut(2)
            .zip(&self.scratch[..len])
            .zip(centre)
        {
            o[0] = d;
            o[1] = c;
        }
        self.up_buf.copy_within(len..len + hist, 0);
    }

    pub(super) fn down(&mut self, input: &[f64], out: &mut [f64]) {
        let len = out.len();
        let hist = self.down_hist();
        let count = self.count;
        for ((e, o), x) in self.down_even[hist..hist + len]
            .iter_mut()
            .zip(self.down_odd[hist..hist + len].iter_mut())
            .zip(input.chunks_exact(2))
        {
            *e = flush(x[0]);
            *o = flush(x[1]);
        }
        // Even delay: dense taps on the odd stream, centre on the even one.
        let (dense, centre, centre_at) = if self.down_delay.is_multiple_of(2) {
            (&self.down_odd, &self.down_even, count)
        } else {
            (&self.down_even, &self.down_odd, count - 1)
        };
        symmetric_fir(&dense[..hist + len], &self.pairs[..count], out);
        for (o, &c) in out.iter_mut().zip(&centre[centre_at..centre_at + len]) {
            *o += 0.5 * c;
        }
        self.down_even.copy_within(len..len + hist, 0);
        self.down_odd.copy_within(len..len + hist, 0);
    }
}
