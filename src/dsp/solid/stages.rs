//! The solid-state preamp's two op-amp stages over a block: one channel
//! (`f64`) or a stereo pair in the two lanes of [`F2`], run through
//! [`Isa::run`](crate::dsp::Isa::run) (the pre-emphasis recursion fused in
//! the AVX2 + FMA build).
//!
//! A chunk (up to `CHUNK` samples, ending where the sample count reaches a
//! multiple of it) runs stage by stage, each in two passes:
//!
//! 1. the ADAA pre-emphasis `u[n] = (1 + b)·x[n] − b·u[n−1]`, the one
//!    loop-carried recursion (`mad(−b, u[n−1], (1 + b)·x[n])`: one fused
//!    multiply-add of latency per sample in the FMA build; both channels
//!    of a pair in the lanes of one chain);
//! 2. the curve averaged from u[n−1] to u[n], which carries nothing from
//!    sample to sample: over sub-chunks of `SUB` samples, a sub-chunk whose
//!    every u (and the one before it) is below the knee takes the exact
//!    average `(u[n] + u[n−1])/2`, any other the general ADAA step
//!    ([`RailCurve::average`]), its antiderivatives computed first. Both
//!    passes run over the channels' samples side by side (interleaved in
//!    one array), so the compiler vectorises them across channels and
//!    samples.
//!
//! Between the stages, Level (smoothed per sample while it moves) and the
//! output stage's gain, applied in stage 2's pre-emphasis loop (the same
//! products, one pass less).
//!
//! The stages run a chunk apart: stage 1's pre-emphasis of a chunk runs in
//! the loop of stage 2's pre-emphasis of the chunk before (two independent
//! recursions, each a dependent multiply-add per sample, side by side: their
//! latencies overlap instead of adding up), then stage 2's curve of the
//! chunk before (to the blocks) and stage 1's curve of this one (kept for
//! stage 2 next time round); the last chunk's stage 2 runs on its own.
//! Each stage's state is flushed where its own chunk ends, and each
//! recursion sees the same inputs in the same order, so the output is the
//! chunk-by-chunk one bit for bit. Stage 1's pre-emphasis reads the channels'
//! blocks directly and stage 2's curve pass is copied straight back to
//! them: the chunk's own array holds only the stages' work (the earlier
//! layout, a pass that interleaved the blocks, one that scaled, one that
//! de-interleaved, took about 14 % of the stages' time in a profile of
//! the chain). Both passes give, sample for sample, what
//! [`RailCurve::adaa`] gives for the plain per-sample recursion (the
//! average is the same expression whichever pass takes it), so where a
//! sub-chunk ends changes nothing, and a pair is bit for bit two monos.
//! The portable build is bit-identical to the recursion `(1 + b)·x − b·u`
//! (two roundings); the FMA build rounds the pre-emphasis once (a
//! difference of an ulp of u, tested against the same recursion fused).

use super::curve::RailCurve;
use crate::dsp::fma::MulAdd;
use crate::dsp::simd::{mad, Channels, Kernel};
use crate::dsp::tube::smooth;

/// Samples per chunk; the states are flushed of denormals where the
/// absolute sample count reaches a multiple of it.
pub(super) const CHUNK: usize = 64;
/// Samples per sub-chunk of the curve pass (the knee test's grain: only a
/// sub-chunk near the knee pays for the general ADAA step).
const SUB: usize = 8;

/// What the stages run with (the same for every channel of a run).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct StageParams {
    /// Both stages' curve.
    pub curve: RailCurve,
    /// Pole b of the pre-emphasis.
    pub b: f64,
    /// The output stage's fixed gain.
    pub g2: f64,
    /// Level's one-pole smoothing coefficient at the stages' rate.
    pub smooth_a: f64,
    /// Level's target.
    pub target: f64,
}

/// The stages' running state, in lanes `L`.
#[derive(Clone, Copy, Debug)]
pub(super) struct StagesState<L> {
    /// Stage 1's last pre-emphasised input.
    pub u1: L,
    /// Stage 2's.
    pub u2: L,
    /// Level, smoothed.
    pub level: f64,
    /// Samples through the stages since reset.
    pub counter: u64,
}

/// The stages over `blocks[..L::N]` (equal lengths) in place from
/// `state`: a [`Kernel`], run in the build an `Isa` selects.
pub(super) struct StagesRun<'a, L> {
    pub params: StageParams,
    pub state: &'a mut StagesState<L>,
    pub blocks: [&'a mut [f64]; 2],
}

impl<L: Channels> Kernel for StagesRun<'_, L> {
    type Output = ();
    #[inline(always)]
    fn run<M: MulAdd>(self) {
        let StagesRun {
            params: p,
            state,
            mut blocks,
        } = self;
        let k = L::N;
        let len = blocks[0].len();
        let mut st = *state;
        // Stage 1's curve output of the chunk waiting for stage 2 ...
        let mut xs1 = [0.0; 2 * CHUNK];
        // ... that chunk: (start in the blocks, length); and the curve's
        // output of stage 2.
        // (and whether stage 1's state was restarted at its end: stage 2's
        // is then too, as when both stages ran chunk by chunk).
        let mut pending = (0, 0, false);
        let mut out = [0.0; 2 * CHUNK];
        let mut us1 = [0.0; 2 * (CHUNK + 1)];
        let mut us2 = [0.0; 2 * (CHUNK + 1)];
        let (c, nb) = (L::splat(1.0 + p.b), L::splat(-p.b));
        // Stage 1's sample count runs a chunk ahead of stage 2's.
        let mut counter1 = st.counter;
        let mut i0 = 0;
        while i0 < len || pending.1 > 0 {
            let n = (len - i0).min(CHUNK - (counter1 % CHUNK as u64) as usize);
            let (start, m, restarted) = pending;
            let (us1, us2) = (&mut us1[..(n + 1) * k], &mut us2[..(m + 1) * k]);
            st.u1.store(us1);
            st.u2.store(us2);
            // Stage 1's pre-emphasis of this chunk, straight from the
            // blocks, and stage 2's of the chunk before (Level and the
            // stage's gain on its input), side by side: two independent
            // recursions in one loop. A held and a moving Level each have
            // their own copy of the loops: written once over a per-sample
            // gain (a trait or a closure, inlined), the solid-state chain
            // measured 8–9 % slower (`cargo bench --bench ratios`, min
            // 3.55…3.71 against 3.29…3.33 ms, alternated, same build).
            let (mut e1, mut e2) = (st.u1, st.u2);
            let both = n.min(m);
            let g = L::splat(st.level * p.g2);
            let moving = st.level != p.target;
            let mut level = st.level;
            let (head1, tail1) = us1[k..].split_at_mut(both * k);
            let (head2, tail2) = us2[k..].split_at_mut(both * k);
            let (x2, x2_rest) = xs1[..m * k].split_at(both * k);
            if moving {
                for (i, ((v1, v2), x)) in head1
                    .chunks_exact_mut(k)
                    .zip(head2.chunks_exact_mut(k))
                    .zip(x2.chunks_exact(k))
                    .enumerate()
                {
                    e1 = mad::<M, L>(nb, e1, c * L::gather(&blocks, i0 + i));
                    e1.store(v1);
                    level = smooth(level, p.target, p.smooth_a);
                    let g = L::splat(level * p.g2);
                    e2 = mad::<M, L>(nb, e2, c * (L::load(x) * g));
                    e2.store(v2);
                }
            } else {
                for (i, ((v1, v2), x)) in head1
                    .chunks_exact_mut(k)
                    .zip(head2.chunks_exact_mut(k))
                    .zip(x2.chunks_exact(k))
                    .enumerate()
                {
                    e1 = mad::<M, L>(nb, e1, c * L::gather(&blocks, i0 + i));
                    e1.store(v1);
                    e2 = mad::<M, L>(nb, e2, c * (L::load(x) * g));
                    e2.store(v2);
                }
            }
            for (i, v1) in tail1.chunks_exact_mut(k).enumerate() {
                e1 = mad::<M, L>(nb, e1, c * L::gather(&blocks, i0 + both + i));
                e1.store(v1);
            }
            if moving {
                for (x, v2) in x2_rest.chunks_exact(k).zip(tail2.chunks_exact_mut(k)) {
                    level = smooth(level, p.target, p.smooth_a);
                    let g = L::splat(level * p.g2);
                    e2 = mad::<M, L>(nb, e2, c * (L::load(x) * g));
                    e2.store(v2);
                }
            } else {
                for (x, v2) in x2_rest.chunks_exact(k).zip(tail2.chunks_exact_mut(k)) {
                    e2 = mad::<M, L>(nb, e2, c * (L::load(x) * g));
                    e2.store(v2);
                }
            }
            st.level = level;
            // Stage 2's curve of the chunk before, to the blocks ...
            if m > 0 {
                let out = &mut out[..m * k];
                average_pass(&p.curve, us2, out);
                for (i, x) in out.chunks_exact(k).enumerate() {
                    L::load(x).scatter(&mut blocks, start + i);
                }
                st.counter += m as u64;
                st.u2 = end_of_chunk(e2, st.counter);
                if restarted {
                    st.u2 = L::default();
                }
            }
            // ... and stage 1's of this chunk, for stage 2 next time round.
            let mut restarted = false;
            if n > 0 {
                average_pass(&p.curve, us1, &mut xs1[..n * k]);
                counter1 += n as u64;
                st.u1 = end_of_chunk(e1, counter1);
                restarted = !e1.finite();
            }
            pending = (i0, n, restarted);
            i0 += n;
        }
        *state = st;
    }
}

/// A stage's state where a chunk ends at the sample count `counter`:
/// flushed of denormals where the count reaches a multiple of `CHUNK`,
/// and a non-finite state restarted at 0 (only stage 1's can be: stage
/// 2's input is stage 1's curve, within ±V; where stage 1's restarts,
/// stage 2's does too at the end of the same chunk).
#[inline(always)]
fn end_of_chunk<L: Channels>(u: L, counter: u64) -> L {
    let u = if counter.is_multiple_of(CHUNK as u64) {
        u.flush()
    } else {
        u
    };
    if u.finite() {
        u
    } else {
        L::default()
    }
}

/// One stage's curve over a chunk: `us` holds the stage's last
/// pre-emphasised input before the chunk and then the chunk's
/// (interleaved, `k` values a sample, `k = (us.len() − xs.len())`), `xs`
/// takes the curve averaged over each step (see the module header).
#[inline(always)]
fn average_pass(curve: &RailCurve, us: &[f64], xs: &mut [f64]) {
    let k = us.len() - xs.len();
    let knee = curve.knee();
    let mut s0 = 0;
    while s0 < xs.len() {
        let s1 = (s0 + SUB * k).min(xs.len());
        let (out, win) = (&mut xs[s0..s1], &us[s0..s1 + k]);
        s0 = s1;
        let linear = win.iter().fold(true, |l, v| l & (v.abs() <= knee));
        if linear {
            for (y, (v, prev)) in out.iter_mut().zip(win[k..].iter().zip(win)) {
                *y = 0.5 * (*v + *prev);
            }
        } else {
            let mut big_f = [0.0; 2 * (SUB + 1)];
            let big_f = &mut big_f[..win.len()];
            for (f, v) in big_f.iter_mut().zip(win) {
                *f = curve.antiderivative(*v);
            }
            for (y, ((v, prev), (f, f_prev))) in out.iter_mut().zip(
                win[k..]
                    .iter()
                    .zip(win)
                    .zip(big_f[k..].iter().zip(big_f.iter())),
            ) {
                *y = curve.average(*v, *prev, *f, *f_prev);
            }
        }
    }
}
