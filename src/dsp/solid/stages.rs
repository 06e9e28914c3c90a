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
//! products, one pass less). Stage 1's pre-emphasis reads the channels'
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
        let mut buf = [0.0; 2 * CHUNK];
        let mut us = [0.0; 2 * (CHUNK + 1)];
        let (c, nb) = (L::splat(1.0 + p.b), L::splat(-p.b));
        let mut i0 = 0;
        while i0 < len {
            let n = (len - i0).min(CHUNK - (st.counter % CHUNK as u64) as usize);
            let (xs, us) = (&mut buf[..n * k], &mut us[..(n + 1) * k]);
            // Stage 1: the pre-emphasis straight from the blocks ...
            st.u1.store(us);
            let mut e = st.u1;
            for (i, v) in us[k..].chunks_exact_mut(k).enumerate() {
                e = mad::<M, L>(nb, e, c * L::gather(&blocks, i0 + i));
                e.store(v);
            }
            st.u1 = e;
            // ... and the curve averaged.
            average_pass(&p.curve, us, xs);
            // Stage 2: Level and the stage's gain on its input, in the loop
            // of its pre-emphasis ...
            st.u2.store(us);
            let mut e = st.u2;
            if st.level != p.target {
                let mut level = st.level;
                for (x, v) in xs.chunks_exact(k).zip(us[k..].chunks_exact_mut(k)) {
                    level = smooth(level, p.target, p.smooth_a);
                    let g = L::splat(level * p.g2);
                    e = mad::<M, L>(nb, e, c * (L::load(x) * g));
                    e.store(v);
                }
                st.level = level;
            } else {
                let g = L::splat(st.level * p.g2);
                for (x, v) in xs.chunks_exact(k).zip(us[k..].chunks_exact_mut(k)) {
                    e = mad::<M, L>(nb, e, c * (L::load(x) * g));
                    e.store(v);
                }
            }
            st.u2 = e;
            // ... and its curve, to the blocks.
            average_pass(&p.curve, us, xs);
            for (i, x) in xs.chunks_exact(k).enumerate() {
                L::load(x).scatter(&mut blocks, i0 + i);
            }
            st.counter += n as u64;
            if st.counter.is_multiple_of(CHUNK as u64) {
                st.u1 = st.u1.flush();
                st.u2 = st.u2.flush();
            }
            if !(st.u1.finite() && st.u2.finite()) {
                st.u1 = L::default();
                st.u2 = L::default();
            }
            i0 += n;
        }
        *state = st;
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
