//! The steady block loop of the headphone amp: a built-in load with no
//! parameter moving (the common case, and the hot one).
//!
//! A block is run in chunks of 64: the closed loop for the chunk
//! (`Loop::step` per sample; the swing limit skipped when a vectorised
//! test shows the whole chunk below the knee), then the correction FIR
//! over the chunk vectorised across samples, while the double pole and
//! the voltage meter of a chunk run interleaved with the next chunk's
//! loop. Every sum is taken in the same order as in `Path::tick`, so the
//! output is bit-identical to the general per-sample loop. On x86_64 CPUs
//! with AVX the steady loop runs an AVX build of the same code (no fused
//! multiply-add, so the same bits). Measured at 48 kHz, 33 ohm,
//! 512-sample blocks, stereo (timed best of 300 runs, 2-core EPYC, busy):
//! 32 ohm closed-back 6.1..7.9 ns and IEM 8.0..8.3 ns per sample per
//! channel (>= 1000x real time; was 12.6 and 15.0), 88 and 114
//! instructions per sample per channel under callgrind (was 170 and 188).

use super::super::fit::TAPS;
use super::super::path::MAX_STATES;
use super::{meter, soft_rail, HeadphoneAmp, KNEE_FRACTION};
use crate::dsp::divider::double_pole;
use crate::dsp::fma::MulAdd;
use crate::dsp::simd::Kernel;

/// Samples per chunk of the steady loop (stack buffers).
const CHUNK: usize = 64;

/// Outputs per step of the steady loop's block FIR (vector width).
const FIR_LANES: usize = 8;

/// The steady loop's output tail in locals: the fixed double pole (same
/// arithmetic as `Path::pole`), the normalisation gain and the voltage
/// meter.
struct PoleTail {
    /// Normalisation gain.
    post: f64,
    /// Meter coefficients (see `meter`).
    mc: (f64, f64),
    /// Mean square output voltage.
    ms_v: f64,
    /// Double-pole states (previous two outputs).
    p: [f64; 2],
}

impl PoleTail {
    #[inline(always)]
    fn out(&mut self, acc: f64) -> f64 {
        let out = double_pole(acc, &mut self.p) * self.post;
        self.ms_v = meter(self.ms_v, out * out, self.mc);
        out
    }
}

impl HeadphoneAmp {
    /// Built-in load, no parameter moving: the tight loop, dispatched
    /// once per block on the loop's state count.
    pub(super) fn process_steady(&mut self, block: &mut [f64]) {
        struct Steady<'a>(&'a mut HeadphoneAmp, &'a mut [f64]);
        impl Kernel for Steady<'_> {
            type Output = ();
            #[inline(always)]
            fn run<M: MulAdd>(self) {
                self.0.process_steady_any(self.1);
            }
        }
        self.isa.run(Steady(self, block));
    }

    #[inline(always)]
    fn process_steady_any(&mut self, block: &mut [f64]) {
        match self.active.m {
            0 => self.steady_m::<0>(block),
            1 => self.steady_m::<1>(block),
            2 => self.steady_m::<2>(block),
            3 => self.steady_m::<3>(block),
            4 => self.steady_m::<4>(block),
            5 => self.steady_m::<5>(block),
            6 => self.steady_m::<6>(block),
            7 => self.steady_m::<7>(block),
            _ => self.steady_m::<MAX_STATES>(block),
        }
    }

    /// The steady loop in chunks of `CHUNK`: the closed loop for a chunk
    /// (its serial chain, with the swing limit and the current and power
    /// meters alongside), then the correction FIR over the chunk
    /// (vectorised across samples, each output summed in the same order
    /// as `Path::tick_m`). The double pole and the voltage meter of a
    /// chunk run interleaved with the next chunk's loop, so the two
    /// serial chains overlap; the last chunk's are finished at the end.
    #[inline(always)]
    fn steady_m<const M: usize>(&mut self, block: &mut [f64]) {
        let (gain, rail, post) = (self.gain, self.rail, self.post);
        let mc = self.meter_coeff;
        let knee = KNEE_FRACTION * rail;
        let mut ms_i = self.ms_i;
        let mut mean_p = self.mean_p;
        let mut tail = PoleTail {
            post,
            mc,
            ms_v: self.ms_v,
            p: self.active.post,
        };
        let path = &mut self.active;
        let lp = path.lp;
        let mut s = path.state;
        let taps = path.taps;
        // vb[TAPS - 1 + n] is the loop voltage of chunk sample n; the
        // first TAPS - 1 entries hold the history, oldest first.
        let mut vb = [0.0; TAPS - 1 + CHUNK];
        for k in 0..TAPS - 1 {
            vb[TAPS - 2 - k] = path.hist[k];
        }
        // FIR output of the previous chunk, waiting for its double pole.
        let mut fir_prev = [0.0; CHUNK];
        let mut prev_len = 0;
        let mut start = 0;
        while start < block.len() {
            let len = (block.len() - start).min(CHUNK);
            let (done, rest) = block.split_at_mut(start);
            let prev = &mut done[start - prev_len..];
            let chunk = &mut rest[..len];
            // Below the knee `soft_rail` is the identity (and the input is
            // finite): one vectorised test per chunk skips it per sample.
            let linear = chunk
                .iter()
                .fold(true, |ok, x| ok & ((x * gain).abs() <= knee));
            let both = len.min(prev_len);
            let vslots = &mut vb[TAPS - 1..TAPS - 1 + len];
            if linear {
                for n in 0..both {
                    let (v, i) = lp.step::<M>(&mut s, chunk[n] * gain);
                    ms_i = meter(ms_i, i * i, mc);
                    mean_p = meter(mean_p, v * i, mc);
                    vslots[n] = v;
                    prev[n] = tail.out(fir_prev[n]);
                }
                for n in both..len {
                    let (v, i) = lp.step::<M>(&mut s, chunk[n] * gain);
                    ms_i = meter(ms_i, i * i, mc);
                    mean_p = meter(mean_p, v * i, mc);
                    vslots[n] = v;
                }
            } else {
                for n in 0..len {
                    let x = chunk[n];
                    let input = if x.is_finite() { x } else { 0.0 };
                    let drive = soft_rail(input * gain, rail);
                    let (v, i) = lp.step::<M>(&mut s, drive);
                    ms_i = meter(ms_i, i * i, mc);
                    mean_p = meter(mean_p, v * i, mc);
                    vslots[n] = v;
                    if n < prev_len {
                        prev[n] = tail.out(fir_prev[n]);
                    }
                }
            }
            for n in len.max(both)..prev_len {
                prev[n] = tail.out(fir_prev[n]);
            }
            // FIR_LANES outputs at a time (vectorised across samples); each
            // output summed in the same order as `tick_m`.
            let groups = len.div_ceil(FIR_LANES);
            for (q, fo) in fir_prev[..FIR_LANES * groups]
                .chunks_exact_mut(FIR_LANES)
                .enumerate()
            {
                let base = TAPS - 1 + FIR_LANES * q;
                let mut a0 = [0.0; FIR_LANES];
                let mut a1 = [0.0; FIR_LANES];
                for k in (0..TAPS).step_by(2) {
                    let (t0, t1) = (taps[k], taps[k + 1]);
                    let w0 = &vb[base - k..base - k + FIR_LANES];
                    let w1 = &vb[base - k - 1..base - k - 1 + FIR_LANES];
                    for l in 0..FIR_LANES {
                        a0[l] += t0 * w0[l];
                        a1[l] += t1 * w1[l];
                    }
                }
                for l in 0..FIR_LANES {
                    fo[l] = a0[l] + a1[l];
                }
            }
            vb.copy_within(len..len + TAPS - 1, 0);
            prev_len = len;
            start += len;
        }
        let end = block.len();
        for (x, f) in block[end - prev_len..].iter_mut().zip(fir_prev.iter()) {
            *x = tail.out(*f);
        }
        for k in 0..TAPS - 1 {
            path.hist[k] = vb[TAPS - 2 - k];
        }
        path.state = s;
        path.post = tail.p;
        self.ms_v = tail.ms_v;
        self.ms_i = ms_i;
        self.mean_p = mean_p;
    }
}
