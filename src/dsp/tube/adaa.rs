//! First-order antiderivative anti-aliasing (ADAA) of the stage's static
//! curve: the formula, its pre-emphasis, and the loops that run it over a
//! chunk at each lane width.
//!
//! # Anti-aliasing (ADAA)
//!
//! The static curve is evaluated with first-order antiderivative
//! anti-aliasing (Parker, Zavalishin, Le Bivic, "Reducing the aliasing of
//! nonlinear waveshaping using continuous-time convolution", DAFx 2016;
//! Bilbao, Esqueda, Parker, Välimäki, "Antiderivative antialiasing for
//! memoryless nonlinearities", IEEE SPL 2017):
//! `Vpk[n] = (F(u[n]) − F(u[n−1]))/(u[n] − u[n−1])` ([`adaa_quotient`]),
//! i.e. the curve averaged over the straight line between two samples (a
//! box filter on the continuous-time output, whose nulls sit on the
//! oversampled rate's multiples, where the folding harmonics are). Steps
//! below 1e-4 table segments (5 µV) use the mid-point value instead
//! (identical to 1e-8 V; [`adaa_value`]). Beyond the table F is extended
//! linearly (the curve is held there). On the linear part ADAA is the
//! average `(1 + z⁻¹)/2` (−0.47 dB at 20 kHz at 192 kHz, half a sample of
//! delay); a one-pole pre-emphasis `(1 + b)/(1 + b·z⁻¹)` on the grid drive,
//! with b chosen per rate for ≤ 0.025 dB loss at 20 kHz
//! ([`adaa_compensation`]: b ≈ 0.63 at 192 kHz, ≈ 0.37 at 384 kHz), makes
//! the pair flat; its DC group delay −b/(1 + b) leaves
//! 0.5 − b/(1 + b) ≈ 0.11 oversampled samples per stage (≈ 0.06 host samples
//! for both stages at 4x: part of the stage's phase response, not reported as
//! latency). Both terms are in the stage's `response`. Measured end to end
//! (7 kHz sine at 48 kHz, Gain for 10 % THD at 1 kHz, through the chain,
//! all non-harmonic power re the fundamental once the bias has settled,
//! `tests/aliasing.rs`): −147.4 dB live (4x), −150.0 dB high (16x), the
//! f32 output's floor. Where stage 2 clips on its grid current the box
//! leaves an alias at δ from the oversampled rate fs about δ/fs of its
//! harmonic, and the rate decides (Gain 60: −61.6 dB at 4x, −104.5 dB at
//! 16x). Without ADAA, the live quality measured about 30 dB worse when it
//! was introduced.
//!
//! The formula is written once ([`adaa_quotient`], [`adaa_mid`],
//! [`adaa_value`]), generic over the lane type; the loops of a chunk
//! ([`StageLane`]) run it one sample at a time, or two at a time in the
//! lanes of a wider type, with the same operations per sample.

use super::kernel::StageKernel;
use super::table::{antiderivative, cubic, AntiderivativeLane, TableLane, SEG_LEN};
use crate::dsp::fma::MulAdd;
use crate::dsp::simd::{Arith, Lane, PairLane, F2};
use std::f64::consts::PI;

// ---------------------------------------------------------------------------
// The formula
// ---------------------------------------------------------------------------

/// ADAA switches to the mid-point value below this step of the table
/// coordinate (1e-4 segment ≈ 5 µV at the grid): there the divided
/// difference would lose digits, and the mid-point value equals the ADAA
/// average to within f''·Δ²/24 (< 1e-8 V).
pub(super) const ADAA_MIN_STEP: f64 = 1e-4;

/// First-order ADAA: the curve averaged over the straight line from the
/// previous table coordinate to this one,
/// `(F(q) − F(q_prev))/(q − q_prev)`, from `big_f` = F(q),
/// `f_prev` = F(q_prev) and `dq` = q − q_prev. Ill-conditioned for
/// |dq| ≤ [`ADAA_MIN_STEP`]: see [`adaa_value`].
#[inline(always)]
pub(super) fn adaa_quotient<L: Arith>(big_f: L, f_prev: L, dq: L) -> L {
    (big_f - f_prev) / dq
}

/// The curve at the mid-point of a step `dq` that ends at fraction `t` of
/// the segment `c`: what ADAA takes for steps at most [`ADAA_MIN_STEP`].
#[inline(always)]
pub(super) fn adaa_mid<M: MulAdd, L: Arith>(c: &[L; SEG_LEN], t: L, dq: L) -> L {
    cubic::<M, _>(c, t - dq * L::splat(0.5))
}

/// The ADAA output of a step `dq` ending at fraction `t` of the segment `c`:
/// [`adaa_quotient`], or [`adaa_mid`] where the step is at most
/// [`ADAA_MIN_STEP`] (both computed, one picked: branch-free).
#[inline(always)]
pub(super) fn adaa_value<M: MulAdd, L: Lane>(
    big_f: L,
    f_prev: L,
    dq: L,
    t: L,
    c: &[L; SEG_LEN],
) -> L {
    let f_mid = adaa_mid::<M, _>(c, t, dq);
    L::pick_abs_gt(dq, ADAA_MIN_STEP, adaa_quotient(big_f, f_prev, dq), f_mid)
}

/// Pre-emphasis pole b that makes (1 + z⁻¹)/2 · (1 + b)/(1 + b·z⁻¹) (the
/// linear response of first-order ADAA times its compensation) lose at most
/// `loss_db` at `f_hz`; 0 if no compensation is needed, at most 0.9.
/// |H|² = 1 − (1 − cos ω)(1 − b)² / (2(1 + 2b·cos ω + b²)), monotone in b.
pub(crate) fn adaa_compensation(f_hz: f64, fs: f64, loss_db: f64) -> f64 {
    let c = (2.0 * PI * (f_hz / fs).min(0.5)).cos();
    let target = 1.0 - 10f64.powf(-loss_db / 10.0);
    let deficit = |b: f64| (1.0 - c) * (1.0 - b) * (1.0 - b) / (2.0 * (1.0 + 2.0 * b * c + b * b));
    if deficit(0.0) <= target {
        return 0.0;
    }
    let (mut lo, mut hi) = (0.0, 0.9);
    if deficit(hi) > target {
        return hi;
    }
    for _ in 0..60 {
        let m = 0.5 * (lo + hi);
        if deficit(m) > target {
            lo = m;
        } else {
            hi = m;
        }
    }
    hi
}

// ---------------------------------------------------------------------------
// The ADAA loops of a chunk, per lane width
// ---------------------------------------------------------------------------

/// A lane type the stage kernel runs in: a table lane with its ADAA loops
/// for a chunk that stays inside the table (so the clamps and extensions
/// are identities). Each loop calls `post(j, y)` for each sample j of `qs`
/// and returns the last q (and F(q)). The quotients of a chunk are
/// independent given the previous F, so a lane type may run two samples at
/// a time in its [`PairLane::Pair`]: `f64` runs all three loops so (in an
/// `F2`), `F2` its quotients (in an `F4`). The same operations per sample
/// whichever runs.
pub(super) trait StageLane: TableLane + PairLane {
    /// Every step above `ADAA_MIN_STEP`: the quotients only.
    #[inline(always)]
    fn adaa_quotients<M: MulAdd>(
        k: &StageKernel<'_, M>,
        qs: &[Self],
        q_prev: Self,
        f_prev: Self,
        post: &mut impl FnMut(usize, Self),
    ) -> (Self, Self) {
        quotients(k, qs, q_prev, f_prev, post)
    }

    /// Small and large steps mixed (near the peaks of a sine, during a
    /// tail's fade): both candidates and a branch-free pick.
    #[inline(always)]
    fn adaa_mixed<M: MulAdd>(
        k: &StageKernel<'_, M>,
        qs: &[Self],
        q_prev: Self,
        f_prev: Self,
        post: &mut impl FnMut(usize, Self),
    ) -> (Self, Self) {
        mixed(k, qs, q_prev, f_prev, post)
    }

    /// Every step at most `ADAA_MIN_STEP`: the mid-point values only (no
    /// antiderivative, no division).
    #[inline(always)]
    fn adaa_mids<M: MulAdd>(
        k: &StageKernel<'_, M>,
        qs: &[Self],
        q_prev: Self,
        post: &mut impl FnMut(usize, Self),
    ) -> Self {
        mids(k, qs, q_prev, post)
    }
}

impl StageLane for f64 {
    #[inline(always)]
    fn adaa_quotients<M: MulAdd>(
        k: &StageKernel<'_, M>,
        qs: &[Self],
        q_prev: Self,
        f_prev: Self,
        post: &mut impl FnMut(usize, Self),
    ) -> (Self, Self) {
        quotients_in_pairs(k, qs, q_prev, f_prev, post)
    }

    #[inline(always)]
    fn adaa_mixed<M: MulAdd>(
        k: &StageKernel<'_, M>,
        qs: &[Self],
        q_prev: Self,
        f_prev: Self,
        post: &mut impl FnMut(usize, Self),
    ) -> (Self, Self) {
        mixed_in_pairs(k, qs, q_prev, f_prev, post)
    }

    #[inline(always)]
    fn adaa_mids<M: MulAdd>(
        k: &StageKernel<'_, M>,
        qs: &[Self],
        q_prev: Self,
        post: &mut impl FnMut(usize, Self),
    ) -> Self {
        mids_in_pairs(k, qs, q_prev, post)
    }
}

impl StageLane for F2 {
    #[inline(always)]
    fn adaa_quotients<M: MulAdd>(
        k: &StageKernel<'_, M>,
        qs: &[Self],
        q_prev: Self,
        f_prev: Self,
        post: &mut impl FnMut(usize, Self),
    ) -> (Self, Self) {
        quotients_in_pairs(k, qs, q_prev, f_prev, post)
    }

    #[inline(always)]
    fn adaa_mixed<M: MulAdd>(
        k: &StageKernel<'_, M>,
        qs: &[Self],
        q_prev: Self,
        f_prev: Self,
        post: &mut impl FnMut(usize, Self),
    ) -> (Self, Self) {
        mixed_by_patch(k, qs, q_prev, f_prev, post)
    }
}

/// [`StageLane::adaa_quotients`], one sample at a time.
#[inline(always)]
fn quotients<M: MulAdd, L: TableLane>(
    k: &StageKernel<'_, M>,
    qs: &[L],
    mut q_prev: L,
    mut f_prev: L,
    post: &mut impl FnMut(usize, L),
) -> (L, L) {
    let dc = L::splat(k.dc);
    for (j, q) in qs.iter().enumerate() {
        let big_f = L::antiderivative_at::<M>(*q, k.seg);
        post(j, adaa_quotient(big_f, f_prev, *q - q_prev) - dc);
        q_prev = *q;
        f_prev = big_f;
    }
    (q_prev, f_prev)
}

/// [`StageLane::adaa_mixed`], one sample at a time.
#[inline(always)]
fn mixed<M: MulAdd, L: TableLane>(
    k: &StageKernel<'_, M>,
    qs: &[L],
    mut q_prev: L,
    mut f_prev: L,
    post: &mut impl FnMut(usize, L),
) -> (L, L) {
    let dc = L::splat(k.dc);
    for (j, q) in qs.iter().enumerate() {
        let (t, c) = L::lookup(*q, k.seg);
        let big_f = antiderivative::<M, _>(&c, t);
        let out = adaa_value::<M, _>(big_f, f_prev, *q - q_prev, t, &c);
        post(j, out - dc);
        q_prev = *q;
        f_prev = big_f;
    }
    (q_prev, f_prev)
}

/// [`StageLane::adaa_mids`], one sample at a time.
#[inline(always)]
fn mids<M: MulAdd, L: TableLane>(
    k: &StageKernel<'_, M>,
    qs: &[L],
    mut q_prev: L,
    post: &mut impl FnMut(usize, L),
) -> L {
    let dc = L::splat(k.dc);
    for (j, q) in qs.iter().enumerate() {
        let (t, c) = L::lookup(*q, k.seg);
        post(j, adaa_mid::<M, _>(&c, t, *q - q_prev) - dc);
        q_prev = *q;
    }
    q_prev
}

/// [`quotients`] two samples at a time in the lanes of `L::Pair`, the odd
/// one at the end alone.
#[inline(always)]
fn quotients_in_pairs<M: MulAdd, L: TableLane + PairLane>(
    k: &StageKernel<'_, M>,
    qs: &[L],
    mut q_prev: L,
    mut f_prev: L,
    post: &mut impl FnMut(usize, L),
) -> (L, L)
where
    L::Pair<M>: AntiderivativeLane,
{
    let dc = <L::Pair<M>>::splat(k.dc);
    let pairs = qs.chunks_exact(2);
    let rest = pairs.remainder();
    for (j, p) in pairs.enumerate() {
        let q = L::pair::<M>(p[0], p[1]);
        let big_f = <L::Pair<M>>::antiderivative_at::<M>(q, k.seg);
        let (f0, f1) = L::halves::<M>(big_f);
        let dq = q - L::pair::<M>(q_prev, p[0]);
        let (y0, y1) = L::halves::<M>(adaa_quotient(big_f, L::pair::<M>(f_prev, f0), dq) - dc);
        post(2 * j, y0);
        post(2 * j + 1, y1);
        q_prev = p[1];
        f_prev = f1;
    }
    let j0 = qs.len() - rest.len();
    quotients(k, rest, q_prev, f_prev, &mut |j, y| post(j0 + j, y))
}

/// [`mixed`] as [`quotients_in_pairs`] over the whole chunk, then, for
/// each sample whose step is at most [`ADAA_MIN_STEP`] in any lane,
/// [`mixed`]'s value of that sample posted again over the quotient. Bit
/// for bit `mixed` (the same operations per lane for each value, and a
/// quotient where `mixed` picks it), at about the cost of the quotients
/// where a chunk has few small steps (they come where the signal turns).
/// `mixed` ran one sample at a time where the quotients run two: in a
/// profile of the dynamic-mic + transformer chain it took 3.5 % of the
/// samples (the quotients 18.6 %), and this took 0.5–1 % off that chain
/// (`cargo bench --bench ratios`). `post` must be a store (a sample may be
/// posted twice).
#[inline(always)]
fn mixed_by_patch<M: MulAdd, L: TableLane + PairLane>(
    k: &StageKernel<'_, M>,
    qs: &[L],
    q_prev: L,
    f_prev: L,
    post: &mut impl FnMut(usize, L),
) -> (L, L)
where
    L::Pair<M>: AntiderivativeLane,
{
    let end = quotients_in_pairs(k, qs, q_prev, f_prev, post);
    let dc = L::splat(k.dc);
    let mut before = q_prev;
    for (j, q) in qs.iter().enumerate() {
        let dq = *q - before;
        if !dq.abs().all_gt(ADAA_MIN_STEP) {
            let (t, c) = L::lookup(*q, k.seg);
            let big_f = antiderivative::<M, _>(&c, t);
            let f_before = match j {
                0 => f_prev,
                _ => L::antiderivative_at::<M>(before, k.seg),
            };
            post(j, adaa_value::<M, _>(big_f, f_before, dq, t, &c) - dc);
        }
        before = *q;
    }
    end
}

/// [`mixed`] two samples at a time in the lanes of `L::Pair`.
#[inline(always)]
fn mixed_in_pairs<M: MulAdd, L: TableLane + PairLane>(
    k: &StageKernel<'_, M>,
    qs: &[L],
    mut q_prev: L,
    mut f_prev: L,
    post: &mut impl FnMut(usize, L),
) -> (L, L)
where
    L::Pair<M>: TableLane,
{
    let dc = <L::Pair<M>>::splat(k.dc);
    let pairs = qs.chunks_exact(2);
    let rest = pairs.remainder();
    for (j, p) in pairs.enumerate() {
        let q = L::pair::<M>(p[0], p[1]);
        let (t, c) = <L::Pair<M>>::lookup(q, k.seg);
        let big_f = antiderivative::<M, _>(&c, t);
        let (f0, f1) = L::halves::<M>(big_f);
        let dq = q - L::pair::<M>(q_prev, p[0]);
        let y = adaa_value::<M, _>(big_f, L::pair::<M>(f_prev, f0), dq, t, &c) - dc;
        let (y0, y1) = L::halves::<M>(y);
        post(2 * j, y0);
        post(2 * j + 1, y1);
        q_prev = p[1];
        f_prev = f1;
    }
    let j0 = qs.len() - rest.len();
    mixed(k, rest, q_prev, f_prev, &mut |j, y| post(j0 + j, y))
}

/// [`mids`] two samples at a time in the lanes of `L::Pair`.
#[inline(always)]
fn mids_in_pairs<M: MulAdd, L: TableLane + PairLane>(
    k: &StageKernel<'_, M>,
    qs: &[L],
    mut q_prev: L,
    post: &mut impl FnMut(usize, L),
) -> L
where
    L::Pair<M>: TableLane,
{
    let dc = <L::Pair<M>>::splat(k.dc);
    let pairs = qs.chunks_exact(2);
    let rest = pairs.remainder();
    for (j, p) in pairs.enumerate() {
        let q = L::pair::<M>(p[0], p[1]);
        let (t, c) = <L::Pair<M>>::lookup(q, k.seg);
        let (y0, y1) = L::halves::<M>(adaa_mid::<M, _>(&c, t, q - L::pair::<M>(q_prev, p[0])) - dc);
        post(2 * j, y0);
        post(2 * j + 1, y1);
        q_prev = p[1];
    }
    let j0 = qs.len() - rest.len();
    mids(k, rest, q_prev, &mut |j, y| post(j0 + j, y))
}
