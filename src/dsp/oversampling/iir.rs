//! The live stages at run time: polyphase IIR half-bands, each path a
//! cascade of first-order allpasses (the designs are in `design.rs`).
//!
//! Polyphase: the upsampler's even outputs are `A0 x`, the
//! odd ones `A1 x`; the decimator keeps the odd phase, `y = (A0 x_odd + A1
//! x_even) / 2`. With an identity closure up+down is exactly the allpass
//! `A0(w) A1(w)`: no passband ripple at all, only the phase of an allpass.
//!
//! The fused live 4x kernels (one and two channels) run as an AVX2 + FMA
//! build when the CPU has both (`super::fma`); each allpass (and the Thiran
//! pad) is then `y = fma(a, x, fma(−a, y1, x1))`: the input reaches the
//! output through one FMA, which keeps the per-sample chain through the
//! cascade short (see `iir_tick`). The stereo kernels hold
//! both channels' two polyphase paths in the four lanes of one 256-bit
//! register per section (`iir_tick` with four lanes): half the instructions
//! of two 128-bit chains, the same arithmetic per lane (live chain −5 %).
//!
//! The cascade itself is written once, in `iir_tick`, generic over the
//! number of lanes; every loop here (one stage up or down, the fused 4x up
//! and down, one channel or a stereo pair) is a thin use of it that only
//! wires the polyphase paths and the stages.

use super::design::{IirDesign, MAX_IIR_SECTIONS};
use super::flush;
use super::thiran::Thiran;
use crate::dsp::fma::{MulAdd, Unfused};
use crate::dsp::simd::{mad, Arith, Quad, F2};

/// A half-band's IIR state is flushed every this many input samples of its
/// stage. Longer than the Thiran's, because each flush also ends a segment
/// of the fused loops (their recursions drain and their states go through
/// memory): at 128 the live 4× loops run segments of 64 host samples, not
/// 32. Still no denormals: a state just above `FLUSH_BELOW` (1e-30) that
/// decays at the fastest natural rate of a section, its coefficient (≥ 0.02
/// in the live designs), is ≥ 1e-30 · 0.02¹²⁸ ≈ 1e-247 at the next flush,
/// far above the denormal range (< 2.2e-308).
pub(super) const IIR_FLUSH_PERIOD: usize = 128;

/// State of one direction of an IIR stage: two allpass paths in lock-step.
#[derive(Clone, Copy, Debug)]
pub(super) struct IirState {
    /// `s[j]` = previous input of section j in each lane; `s[m]` = previous
    /// output of the last section (`m` = sections per path).
    pub(super) s: [F2; MAX_IIR_SECTIONS + 1],
    /// Input samples processed since the last flush (0..IIR_FLUSH_PERIOD), so the
    /// flush happens at the same absolute sample whatever the block sizes.
    pub(super) phase: usize,
}

impl IirState {
    const ZERO: IirState = IirState {
        s: [F2([0.0; 2]); MAX_IIR_SECTIONS + 1],
        phase: 0,
    };

    /// How many of the next `remaining` input samples a loop may run before
    /// the state is due for its flush.
    fn segment(&self, remaining: usize) -> usize {
        remaining.min(IIR_FLUSH_PERIOD - self.phase)
    }

    /// Ends a segment of `len` input samples: flushes the state every
    /// `IIR_FLUSH_PERIOD` samples of the absolute count.
    fn advance(&mut self, len: usize) {
        self.phase += len;
        if self.phase == IIR_FLUSH_PERIOD {
            self.phase = 0;
            self.flush_state();
        }
    }

    /// The state of `M` sections per path as `iir_tick` takes it.
    #[inline(always)]
    fn load<const M: usize>(&self) -> ([F2; M], F2) {
        (std::array::from_fn(|j| self.s[j]), self.s[M])
    }

    /// Keeps the state `iir_tick` left.
    #[inline(always)]
    fn store<const M: usize>(&mut self, s: &[F2; M], last: F2) {
        self.s[..M].copy_from_slice(s);
        self.s[M] = last;
    }

    fn flush_state(&mut self) {
        for lane in self.s.iter_mut() {
            *lane = F2([flush(lane.0[0]), flush(lane.0[1])]);
        }
    }

    /// Sum of the state times zero: NaN if any state value is not finite.
    pub(super) fn poison(&self) -> f64 {
        self.s.iter().map(|l| l.0[0] * 0.0 + l.0[1] * 0.0).sum()
    }
}

/// The allpass cascade: runs one sample in each of `L` lanes through `M`
/// first-order allpass sections. A lane is one polyphase path of one
/// channel: `L = 2` for one channel, `L = 4` for a stereo pair
/// `[a0, a1, b0, b1]` (channel a's two paths, then channel b's). `a[j]` is
/// the coefficient of section `j` in each lane, `s[j]` its previous input
/// (which is the previous output of section `j - 1`), `last` the previous
/// output of the last section.
///
/// Each section is `y = a x + (x1 - a y1)` (the same allpass as
/// `a (x - y1) + x1`): two multiply-adds, the bracket formed from the state
/// first, so the input reaches the output through one multiply-add. The
/// cascade of sections (and, in the fused 4x loops, of both stages) is one
/// long dependency chain per sample; shortening it lets the CPU overlap
/// more samples. That measured faster (live chain −3 %) than the form
/// `−a y1 + (a x + x1)`, whose recursion through `y1` is one operation
/// shorter but whose input path is two longer. The lanes do the same
/// arithmetic, so a channel's output does not depend on how many lanes it
/// shares; with four lanes each section is one 256-bit operation where the
/// caller is built with AVX.
#[inline(always)]
fn iir_tick<F: MulAdd, L: Arith, const M: usize>(
    a: &[L; M],
    s: &mut [L; M],
    last: &mut L,
    mut v: L,
) -> L {
    for j in 0..M {
        let prev_out = if j + 1 < M { s[j + 1] } else { *last };
        let y = mad::<F, L>(a[j], v, mad::<F, L>(-a[j], prev_out, s[j]));
        s[j] = v;
        v = y;
    }
    *last = v;
    v
}

/// Coefficients of one direction for one channel's two paths.
#[inline(always)]
fn lanes2<const M: usize>(c: &[F2; MAX_IIR_SECTIONS]) -> [F2; M] {
    std::array::from_fn(|j| c[j])
}

/// Coefficients of one direction for two channels' paths side by side
/// (channels that share a loop share their designs, see
/// `Oversampler::pair_kernel`).
#[inline(always)]
fn lanes4<Q: Quad, const M: usize>(c: &[F2; MAX_IIR_SECTIONS]) -> [Q; M] {
    std::array::from_fn(|j| Q::join(c[j], c[j]))
}

/// Upsamples `input` into `out` (twice as long) with `M` sections per lane.
fn iir_up_m<const M: usize>(
    coefs: &[F2; MAX_IIR_SECTIONS],
    st: &mut IirState,
    input: &[f64],
    out: &mut [f64],
) {
    let a = lanes2::<M>(coefs);
    let mut start = 0;
    while start < input.len() {
        let end = start + st.segment(input.len() - start);
        let (mut s, mut last) = st.load::<M>();
        for (x, o) in input[start..end]
            .iter()
            .zip(out[2 * start..2 * end].chunks_exact_mut(2))
        {
            let v = iir_tick::<Unfused, F2, M>(&a, &mut s, &mut last, F2::splat(*x));
            o.copy_from_slice(&v.0);
        }
        st.store(&s, last);
        st.advance(end - start);
        start = end;
    }
}

/// Decimates `input` into `out` (half as long) with `M` sections per lane.
fn iir_down_m<const M: usize>(
    coefs: &[F2; MAX_IIR_SECTIONS],
    st: &mut IirState,
    input: &[f64],
    out: &mut [f64],
) {
    let a = lanes2::<M>(coefs);
    let mut start = 0;
    while start < out.len() {
        let end = start + st.segment(out.len() - start);
        let (mut s, mut last) = st.load::<M>();
        for (x, o) in input[2 * start..2 * end]
            .chunks_exact(2)
            .zip(out[start..end].iter_mut())
        {
            let v = iir_tick::<Unfused, F2, M>(&a, &mut s, &mut last, F2([x[0], x[1]]));
            *o = 0.5 * (v.0[0] + v.0[1]);
        }
        st.store(&s, last);
        st.advance(end - start);
        start = end;
    }
}

/// Host samples a fused 4x loop may run before stage 1 (every 128 of its
/// samples) or stage 2 (every 64 host samples) is due for a flush.
fn fused_segment(s1: &IirState, s2: &IirState, remaining: usize) -> usize {
    remaining
        .min(IIR_FLUSH_PERIOD - s1.phase)
        .min((IIR_FLUSH_PERIOD - s2.phase) / 2)
}

/// Advances the flush phases of a fused 4x loop by `len` host samples.
fn fused_advance(s1: &mut IirState, s2: &mut IirState, len: usize) {
    s1.advance(len);
    s2.advance(2 * len);
}

/// Live 4x upsampler with stages 1 and 2 in one loop, so the recursions of
/// both stages overlap in the CPU instead of running one pass after the
/// other. Same arithmetic, in the same order, as two `iir_up_m` passes.
#[inline(always)]
fn iir_up4_m<F: MulAdd, const M1: usize, const M2: usize>(
    st1: &mut IirStage,
    st2: &mut IirStage,
    input: &[f64],
    out: &mut [f64],
) {
    let a1 = lanes2::<M1>(&st1.up_coefs);
    let a2 = lanes2::<M2>(&st2.up_coefs);
    let mut start = 0;
    while start < input.len() {
        let end = start + fused_segment(&st1.up, &st2.up, input.len() - start);
        let (mut s1, mut l1) = st1.up.load::<M1>();
        let (mut s2, mut l2) = st2.up.load::<M2>();
        for (x, o) in input[start..end]
            .iter()
            .zip(out[4 * start..4 * end].chunks_exact_mut(4))
        {
            let v = iir_tick::<F, F2, M1>(&a1, &mut s1, &mut l1, F2::splat(*x));
            let w0 = iir_tick::<F, F2, M2>(&a2, &mut s2, &mut l2, F2::splat(v.0[0]));
            let w1 = iir_tick::<F, F2, M2>(&a2, &mut s2, &mut l2, F2::splat(v.0[1]));
            o.copy_from_slice(&[w0.0[0], w0.0[1], w1.0[0], w1.0[1]]);
        }
        st1.up.store(&s1, l1);
        st2.up.store(&s2, l2);
        fused_advance(&mut st1.up, &mut st2.up, end - start);
        start = end;
    }
}

/// Live 4x decimator: stage 2, stage 1 and the Thiran pad in one loop.
#[inline(always)]
fn iir_down4_m<F: MulAdd, const M1: usize, const M2: usize>(
    st1: &mut IirStage,
    st2: &mut IirStage,
    thiran: &mut Thiran,
    input: &[f64],
    out: &mut [f64],
) {
    let a1 = lanes2::<M1>(&st1.down_coefs);
    let a2 = lanes2::<M2>(&st2.down_coefs);
    let c = thiran.c;
    let mut start = 0;
    while start < out.len() {
        let fused = fused_segment(&st1.down, &st2.down, out.len() - start);
        let end = start + thiran.segment(fused);
        let (mut s1, mut l1) = st1.down.load::<M1>();
        let (mut s2, mut l2) = st2.down.load::<M2>();
        let mut pad = thiran.state;
        for (x, o) in input[4 * start..4 * end]
            .chunks_exact(4)
            .zip(out[start..end].iter_mut())
        {
            let w0 = iir_tick::<F, F2, M2>(&a2, &mut s2, &mut l2, F2([x[0], x[1]]));
            let u0 = 0.5 * (w0.0[0] + w0.0[1]);
            let w1 = iir_tick::<F, F2, M2>(&a2, &mut s2, &mut l2, F2([x[2], x[3]]));
            let u1 = 0.5 * (w1.0[0] + w1.0[1]);
            let v = iir_tick::<F, F2, M1>(&a1, &mut s1, &mut l1, F2([u0, u1]));
            let d = 0.5 * (v.0[0] + v.0[1]);
            *o = pad.tick::<F>(c, d);
        }
        st1.down.store(&s1, l1);
        st2.down.store(&s2, l2);
        thiran.end_segment(pad, end - start);
        fused_advance(&mut st1.down, &mut st2.down, end - start);
        start = end;
    }
}

/// Two channels' allpass states of one direction in the four lanes of
/// `iir_tick`: `(s, last)` built from channel a's and b's states.
#[inline(always)]
fn join_states<Q: Quad, const M: usize>(a: &IirState, b: &IirState) -> ([Q; M], Q) {
    (
        std::array::from_fn(|j| Q::join(a.s[j], b.s[j])),
        Q::join(a.s[M], b.s[M]),
    )
}

/// Writes the lanes of `join_states` back to the two channels.
#[inline(always)]
fn split_states<Q: Quad, const M: usize>(s: &[Q; M], last: Q, a: &mut IirState, b: &mut IirState) {
    for (j, v) in s.iter().enumerate() {
        (a.s[j], b.s[j]) = v.halves();
    }
    (a.s[M], b.s[M]) = last.halves();
}

/// Two channels' live 4x upsamplers in one loop (stereo): the same
/// arithmetic, in the same order per channel, as `iir_up4_m` on each, with
/// both channels' paths in the four lanes of `iir_tick`. Both channels
/// must have the same designs and flush phases.
#[inline(always)]
fn iir_up4_pair_m<F: MulAdd, const M1: usize, const M2: usize>(a: UpPair, b: UpPair) {
    let (a1st, a2st, in_a, out_a) = a;
    let (b1st, b2st, in_b, out_b) = b;
    let a1 = lanes4::<F::F4, M1>(&a1st.up_coefs);
    let a2 = lanes4::<F::F4, M2>(&a2st.up_coefs);
    let len = in_a.len().min(in_b.len());
    let mut start = 0;
    while start < len {
        let end = start + fused_segment(&a1st.up, &a2st.up, len - start);
        let (mut s1, mut l1) = join_states::<F::F4, M1>(&a1st.up, &b1st.up);
        let (mut s2, mut l2) = join_states::<F::F4, M2>(&a2st.up, &b2st.up);
        for (((xa, oa), xb), ob) in in_a[start..end]
            .iter()
            .zip(out_a[4 * start..4 * end].chunks_exact_mut(4))
            .zip(&in_b[start..end])
            .zip(out_b[4 * start..4 * end].chunks_exact_mut(4))
        {
            let q = F::F4::from_array;
            let v = iir_tick::<F, _, M1>(&a1, &mut s1, &mut l1, q([*xa, *xa, *xb, *xb])).to_array();
            let w0 = iir_tick::<F, _, M2>(&a2, &mut s2, &mut l2, q([v[0], v[0], v[2], v[2]]));
            let w1 = iir_tick::<F, _, M2>(&a2, &mut s2, &mut l2, q([v[1], v[1], v[3], v[3]]));
            let (w0, w1) = (w0.to_array(), w1.to_array());
            oa.copy_from_slice(&[w0[0], w0[1], w1[0], w1[1]]);
            ob.copy_from_slice(&[w0[2], w0[3], w1[2], w1[3]]);
        }
        split_states(&s1, l1, &mut a1st.up, &mut b1st.up);
        split_states(&s2, l2, &mut a2st.up, &mut b2st.up);
        fused_advance(&mut a1st.up, &mut a2st.up, end - start);
        fused_advance(&mut b1st.up, &mut b2st.up, end - start);
        start = end;
    }
}

/// Two channels' live 4x decimators in one loop (see `iir_up4_pair_m`):
/// per channel the same arithmetic as `iir_down4_m`.
#[inline(always)]
fn iir_down4_pair_m<F: MulAdd, const M1: usize, const M2: usize>(a: DownPair, b: DownPair) {
    let (a1st, a2st, ta, in_a, out_a) = a;
    let (b1st, b2st, tb, in_b, out_b) = b;
    let a1 = lanes4::<F::F4, M1>(&a1st.down_coefs);
    let a2 = lanes4::<F::F4, M2>(&a2st.down_coefs);
    let c = ta.c;
    let len = out_a.len().min(out_b.len());
    let mut start = 0;
    while start < len {
        let fused = fused_segment(&a1st.down, &a2st.down, len - start);
        let end = start + ta.segment(fused);
        let (mut s1, mut l1) = join_states::<F::F4, M1>(&a1st.down, &b1st.down);
        let (mut s2, mut l2) = join_states::<F::F4, M2>(&a2st.down, &b2st.down);
        let (mut pad_a, mut pad_b) = (ta.state, tb.state);
        for (((xa, oa), xb), ob) in in_a[4 * start..4 * end]
            .chunks_exact(4)
            .zip(out_a[start..end].iter_mut())
            .zip(in_b[4 * start..4 * end].chunks_exact(4))
            .zip(out_b[start..end].iter_mut())
        {
            let q = F::F4::from_array;
            let x0 = q([xa[0], xa[1], xb[0], xb[1]]);
            let w0 = iir_tick::<F, _, M2>(&a2, &mut s2, &mut l2, x0).to_array();
            let (ua0, ub0) = (0.5 * (w0[0] + w0[1]), 0.5 * (w0[2] + w0[3]));
            let x1 = q([xa[2], xa[3], xb[2], xb[3]]);
            let w1 = iir_tick::<F, _, M2>(&a2, &mut s2, &mut l2, x1).to_array();
            let (ua1, ub1) = (0.5 * (w1[0] + w1[1]), 0.5 * (w1[2] + w1[3]));
            let v = iir_tick::<F, _, M1>(&a1, &mut s1, &mut l1, q([ua0, ua1, ub0, ub1]));
            let v = v.to_array();
            let da = 0.5 * (v[0] + v[1]);
            let db = 0.5 * (v[2] + v[3]);
            *oa = pad_a.tick::<F>(c, da);
            *ob = pad_b.tick::<F>(c, db);
        }
        split_states(&s1, l1, &mut a1st.down, &mut b1st.down);
        split_states(&s2, l2, &mut a2st.down, &mut b2st.down);
        ta.end_segment(pad_a, end - start);
        tb.end_segment(pad_b, end - start);
        fused_advance(&mut a1st.down, &mut a2st.down, end - start);
        fused_advance(&mut b1st.down, &mut b2st.down, end - start);
        start = end;
    }
}

/// The fused live 4x kernels that exist: stage 1 with one to four allpass
/// sections per path, stage 2 with two (what the designs give at the usual
/// host rates; other section counts run stage by stage).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fused4 {
    /// Stage 1 has 1 section per path.
    One,
    /// Stage 1 has 2 sections per path.
    Two,
    /// Stage 1 has 3 sections per path.
    Three,
    /// Stage 1 has 4 sections per path.
    Four,
}

impl Fused4 {
    /// The kernel for stages 1 and 2, if there is one for their section
    /// counts.
    pub(super) fn for_stages(stage1: &IirStage, stage2: &IirStage) -> Option<Self> {
        match (stage1.sections, stage2.sections) {
            (1, 2) => Some(Fused4::One),
            (2, 2) => Some(Fused4::Two),
            (3, 2) => Some(Fused4::Three),
            (4, 2) => Some(Fused4::Four),
            _ => None,
        }
    }
}

/// Runs the fused 4x live upsampler `kernel` (which `Fused4::for_stages`
/// chose for `st[0]` and `st[1]`).
#[inline(always)]
pub(super) fn live_up4<F: MulAdd>(
    kernel: Fused4,
    st: &mut [IirStage],
    input: &[f64],
    out: &mut [f64],
) {
    let (s1, rest) = st.split_at_mut(1);
    let (s1, s2) = (&mut s1[0], &mut rest[0]);
    match kernel {
        Fused4::One => iir_up4_m::<F, 1, 2>(s1, s2, input, out),
        Fused4::Two => iir_up4_m::<F, 2, 2>(s1, s2, input, out),
        Fused4::Three => iir_up4_m::<F, 3, 2>(s1, s2, input, out),
        Fused4::Four => iir_up4_m::<F, 4, 2>(s1, s2, input, out),
    }
}

/// Fused 4x live decimator (see `live_up4`).
#[inline(always)]
pub(super) fn live_down4<F: MulAdd>(
    kernel: Fused4,
    st: &mut [IirStage],
    thiran: &mut Thiran,
    input: &[f64],
    out: &mut [f64],
) {
    let (s1, rest) = st.split_at_mut(1);
    let (s1, s2) = (&mut s1[0], &mut rest[0]);
    match kernel {
        Fused4::One => iir_down4_m::<F, 1, 2>(s1, s2, thiran, input, out),
        Fused4::Two => iir_down4_m::<F, 2, 2>(s1, s2, thiran, input, out),
        Fused4::Three => iir_down4_m::<F, 3, 2>(s1, s2, thiran, input, out),
        Fused4::Four => iir_down4_m::<F, 4, 2>(s1, s2, thiran, input, out),
    }
}

/// One channel's part in a fused 4x pair upsampler: (stage 1, stage 2,
/// input, output).
pub(super) type UpPair<'a> = (&'a mut IirStage, &'a mut IirStage, &'a [f64], &'a mut [f64]);

/// Runs the fused 4x live upsampler `kernel` on two channels at once (both
/// designed alike: see `Oversampler::pair_kernel`).
#[inline(always)]
pub(super) fn live_up4_pair<F: MulAdd>(kernel: Fused4, a: UpPair, b: UpPair) {
    match kernel {
        Fused4::One => iir_up4_pair_m::<F, 1, 2>(a, b),
        Fused4::Two => iir_up4_pair_m::<F, 2, 2>(a, b),
        Fused4::Three => iir_up4_pair_m::<F, 3, 2>(a, b),
        Fused4::Four => iir_up4_pair_m::<F, 4, 2>(a, b),
    }
}

/// One channel's part in a fused 4x pair decimator: (stage 1, stage 2,
/// Thiran pad, input, output).
pub(super) type DownPair<'a> = (
    &'a mut IirStage,
    &'a mut IirStage,
    &'a mut Thiran,
    &'a [f64],
    &'a mut [f64],
);

/// Runs the fused 4x live decimator `kernel` on two channels at once (see
/// `live_up4_pair`).
#[inline(always)]
pub(super) fn live_down4_pair<F: MulAdd>(kernel: Fused4, a: DownPair, b: DownPair) {
    match kernel {
        Fused4::One => iir_down4_pair_m::<F, 1, 2>(a, b),
        Fused4::Two => iir_down4_pair_m::<F, 2, 2>(a, b),
        Fused4::Three => iir_down4_pair_m::<F, 3, 2>(a, b),
        Fused4::Four => iir_down4_pair_m::<F, 4, 2>(a, b),
    }
}

/// One 2x polyphase IIR stage: its coefficients and the state of both
/// directions.
#[derive(Clone, Copy, Debug)]
pub(super) struct IirStage {
    /// Upsampler coefficients per section: lane 0 = `A0`, lane 1 = `A1`.
    pub(super) up_coefs: [F2; MAX_IIR_SECTIONS],
    /// Decimator coefficients: lane 0 (even input) = `A1`, lane 1 = `A0`.
    down_coefs: [F2; MAX_IIR_SECTIONS],
    /// Allpass sections per path.
    pub(super) sections: usize,
    /// Upsampler state.
    pub(super) up: IirState,
    /// Decimator state.
    pub(super) down: IirState,
}

impl IirStage {
    pub(super) fn new(d: &IirDesign) -> Self {
        let sections = d.count / 2;
        let mut up_coefs = [F2([0.0; 2]); MAX_IIR_SECTIONS];
        let mut down_coefs = [F2([0.0; 2]); MAX_IIR_SECTIONS];
        for j in 0..sections {
            up_coefs[j] = F2([d.coefs[2 * j], d.coefs[2 * j + 1]]);
            down_coefs[j] = F2([d.coefs[2 * j + 1], d.coefs[2 * j]]);
        }
        IirStage {
            up_coefs,
            down_coefs,
            sections,
            up: IirState::ZERO,
            down: IirState::ZERO,
        }
    }

    pub(super) fn reset(&mut self) {
        self.up = IirState::ZERO;
        self.down = IirState::ZERO;
    }

    pub(super) fn up(&mut self, input: &[f64], out: &mut [f64]) {
        let c = &self.up_coefs;
        let st = &mut self.up;
        match self.sections {
            1 => iir_up_m::<1>(c, st, input, out),
            2 => iir_up_m::<2>(c, st, input, out),
            3 => iir_up_m::<3>(c, st, input, out),
            4 => iir_up_m::<4>(c, st, input, out),
            5 => iir_up_m::<5>(c, st, input, out),
            6 => iir_up_m::<6>(c, st, input, out),
            7 => iir_up_m::<7>(c, st, input, out),
            8 => iir_up_m::<8>(c, st, input, out),
            n => unreachable!("{n} sections: a design has 1..=MAX_IIR_SECTIONS"),
        }
    }

    pub(super) fn down(&mut self, input: &[f64], out: &mut [f64]) {
        let c = &self.down_coefs;
        let st = &mut self.down;
        match self.sections {
            1 => iir_down_m::<1>(c, st, input, out),
            2 => iir_down_m::<2>(c, st, input, out),
            3 => iir_down_m::<3>(c, st, input, out),
            4 => iir_down_m::<4>(c, st, input, out),
            5 => iir_down_m::<5>(c, st, input, out),
            6 => iir_down_m::<6>(c, st, input, out),
            7 => iir_down_m::<7>(c, st, input, out),
            8 => iir_down_m::<8>(c, st, input, out),
            n => unreachable!("{n} sections: a design has 1..=MAX_IIR_SECTIONS"),
        }
    }
}
