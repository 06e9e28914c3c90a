//! The per-sample update of one triode stage, and the chunked loop that runs
//! it over a block.
//!
//! # The per-sample update
//!
//! For a source voltage x (see `stage.rs` for the circuit and where each
//! coefficient comes from), in table coordinates:
//!
//! 1. the linear part ([`linear_step`]): the grid drive `x − vc` through the
//!    Thevenin divider and the Miller one-pole, then the ADAA pre-emphasis,
//!    less the cathode's rise, gives the table coordinate q; the coupling
//!    capacitor `vc += k·(x − vc) + k·Rg·Ig` takes the previous sample's
//!    grid current; the cathode (`cathode.rs`) follows the grid drive
//!    linearly and takes the curve's remainder of one chunk earlier;
//! 2. the curve ([`StageKernel::adaa`]): the ADAA average of the static
//!    curve from the previous coordinate to q (`adaa.rs`, `table.rs`), less
//!    its value at rest, is the AC plate voltage out;
//! 3. the grid current at q, from the same segment, for the next sample.
//!
//! After the ADAA pass the stage's cathode takes what the chunk left in
//! its [`ChunkTrace`] (coordinates, rises, grid currents) for the samples
//! one chunk later, and adds its share to the plate (`cathode.rs`).
//!
//! [`StageKernel::tick`] does the three for one sample.
//!
//! # The chunked loop
//!
//! The block loop works in chunks of 64 samples aligned to the absolute
//! sample count (denormal flush at the chunk ends): per stage, a first pass
//! runs only the linear recursions (coupling capacitor, Miller, pre-emphasis;
//! each written as `s' = a·s + b·x`, one multiply-add on the loop-carried
//! chain; [`linear_pass`]) and a second pass the ADAA, which is independent
//! per sample, so the CPU overlaps many samples. A chunk in which any sample
//! reaches grid current is redone serially (the grid current charges the
//! coupling capacitor one sample later); the arithmetic is identical either
//! way. In that serial pass stage 2 takes the resistance behind its grid
//! at each sample whose step reaches grid current, from stage 1's plate
//! there ([`Blended`]; `grid_blend.rs`): the step's output and
//! grid current on the two pot tables around it, blended. The ADAA pass
//! picks a loop per chunk by its steps (see
//! [`StageKernel::finish_chunk`]), so silence and decaying tails, where every
//! step is below the mid-point threshold, are the cheapest chunks: they need
//! no division (before, they took the general clamped path and silence cost
//! 30 % more than signal). `StereoPreamp` runs two channels in the two
//! lanes of SSE2 registers (its ADAA quotients two samples at a time, in
//! the build's four lanes, `M::F4`); mono runs its ADAA two samples at a
//! time in the two lanes (`adaa.rs`). On a CPU with AVX2 and FMA (checked in
//! `prepare`) both run an AVX2 + FMA build of the same generic loop
//! (`crate::dsp::fma`): the four-lane quotients in one 256-bit register, and
//! every `a·b + c` fused, which cuts each loop-carried recursion above from
//! a multiply plus an add to one FMA. Measured on the whole live chain:
//! −2 % (AVX2), −2 % (FMA). Mono and stereo always take the same build, so
//! a channel of either is the same bit for bit.
//!
//! The chunks are pipelined: stage 2's linear pass over chunk k runs in the
//! same loop as stage 1's over chunk k + 1 (when both are as long), in the
//! lanes of one register ([`StageKernel::linear_chunk_pair`]: stereo in the
//! build's four lanes, one 256-bit register in the AVX2 build; mono in the
//! build's two-lane register, `M::F2`). The linear passes are bound by
//! their instructions, not by the width of the registers, so the pair
//! costs about one pass: 30 instructions for both stages of a stereo
//! sample (the inputs joined and the coordinates split inside the loop),
//! where the two passes took 29 each (live chain −9 %, then −5 % for joining
//! and splitting in the loop instead of in packing loops). Lanes do not
//! mix, so the output is the same bit for bit.
//!
//! # Cost
//!
//! Profile (perf, chain with the preamp in, live, stereo, noise at 48 kHz,
//! with the pipeline): the two stages take about 59 % of the time, the live
//! 4x half-bands 15 %, the host-rate loop (K-weighting of the auto-gain and
//! the compare) 15 %. Within the stages, the two ADAA quotient passes take
//! about 55 % and the pipelined linear pass about 17 %; the quotient pass
//! (about 70 instructions per 256-bit quotient, unrolled four times) is
//! bound by its table fetches (four segments, five coefficients each) and
//! their shuffles into lanes. Not by its divider: a reciprocal estimate
//! (`vrcpps`) with three Newton steps in place of the division, more
//! instructions and no divide, made the live chain 7 % slower. Silence,
//! which has no ADAA work, still costs about 60 % of signal.
//! Cost per oversampled sample per channel (release, baseline x86-64,
//! callgrind instructions; timings on this loaded 2-core machine are only
//! indicative): mono ≈ 170 instr on a −40 dB sine, ≈ 168 on a decaying
//! tail, ≈ 115 on silence (was 194 / 238 / 255); stereo ≈ 128 on a sine and
//! ≈ 78 on silence (was 135 / 169).

use super::adaa::{adaa_mid, adaa_value, StageLane, ADAA_MIN_STEP};
use super::grid_blend::GridBlend;
use super::table::{antiderivative, grid_cubic, Segments, TableLane, SEG_LEN};
use crate::dsp::fma::MulAdd;
use crate::dsp::simd::{mad, Arith, Lane, PairLane};

/// Samples per chunk of the block loop (stack buffers).
pub(super) const CHUNK: usize = 64;

/// Length of the next chunk of at most `len` samples that ends at or before
/// the next multiple of `CHUNK` of `counter`.
pub(super) fn chunk_len(len: usize, counter: u64) -> usize {
    len.min(CHUNK - (counter % CHUNK as u64) as usize)
}

/// What a stage's passes over a chunk leave for the cathode
/// (`cathode.rs`), per sample and lane: table coordinate, cathode rise and
/// grid current.
#[derive(Clone, Copy, Debug)]
pub(super) struct ChunkTrace<L> {
    /// Table coordinates.
    pub(super) q: [L; CHUNK],
    /// The cathode's rise (volts).
    pub(super) vk: [L; CHUNK],
    /// Grid currents (amperes).
    pub(super) ig: [L; CHUNK],
}

impl<L: Copy + Default> Default for ChunkTrace<L> {
    fn default() -> Self {
        Self {
            q: [L::default(); CHUNK],
            vk: [L::default(); CHUNK],
            ig: [L::default(); CHUNK],
        }
    }
}

/// The per-sample state of one stage (per lane).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct StageLanes<L> {
    /// Coupling capacitor voltage (source volts).
    pub(super) vc: L,
    /// Miller low-pass integrator state (table units, pre-emphasised).
    pub(super) ms: L,
    /// ADAA compensation state: pre-emphasised grid drive relative to rest (table units).
    pub(super) e: L,
    /// Grid current of the previous sample.
    pub(super) ig_prev: L,
    /// Table coordinate of the previous sample (ADAA).
    pub(super) q_prev: L,
    /// Cathode voltage above rest (volts; `cathode.rs`).
    pub(super) vk: L,
}

impl<L: Lane> StageLanes<L> {
    /// At rest for a kernel (capacitors uncharged, previous sample at rest).
    pub(super) fn rest<M>(k: &StageKernel<'_, M>) -> Self {
        Self {
            q_prev: L::splat(k.off),
            ..Self::default()
        }
    }

    /// Whether the state is finite.
    #[inline]
    pub(super) fn finite(&self) -> bool {
        self.vc.finite()
            && self.vk.finite()
            && self.ms.finite()
            && self.e.finite()
            && self.ig_prev.finite()
            && self.q_prev.finite()
    }

    /// Flush denormals of the decaying states.
    #[inline]
    pub(super) fn flush(&mut self) {
        self.vc = self.vc.flush();
        self.vk = self.vk.flush();
        self.ms = self.ms.flush();
        self.e = self.e.flush();
        self.ig_prev = self.ig_prev.flush();
    }
}

impl<L: PairLane> StageLanes<L> {
    /// `self` in the low lanes of a pair, `o` in the high ones.
    #[inline(always)]
    fn widen<M: MulAdd>(&self, o: &Self) -> StageLanes<L::Wide<M>> {
        let p = L::widen::<M>;
        StageLanes {
            vc: p(self.vc, o.vc),
            ms: p(self.ms, o.ms),
            e: p(self.e, o.e),
            ig_prev: p(self.ig_prev, o.ig_prev),
            q_prev: p(self.q_prev, o.q_prev),
            vk: p(self.vk, o.vk),
        }
    }

    /// The low and high lanes of a pair.
    #[inline(always)]
    fn narrow<M: MulAdd>(p: StageLanes<L::Wide<M>>) -> (Self, Self) {
        let h = L::narrow::<M>;
        let (vc, ms, e, ig, q, vk) = (h(p.vc), h(p.ms), h(p.e), h(p.ig_prev), h(p.q_prev), h(p.vk));
        let half = |i: usize| {
            let pick = |v: (L, L)| if i == 0 { v.0 } else { v.1 };
            StageLanes {
                vc: pick(vc),
                ms: pick(ms),
                e: pick(e),
                ig_prev: pick(ig),
                q_prev: pick(q),
                vk: pick(vk),
            }
        };
        (half(0), half(1))
    }
}

// ---------------------------------------------------------------------------
// The linear part
// ---------------------------------------------------------------------------

/// The coefficients of the linear part of a stage (see `linear_step`), in
/// lanes: all the same for one stage, or two stages' side by side.
#[derive(Clone, Copy, Debug)]
struct LinearCoefs<W> {
    /// Miller output per unit of (x − vc).
    kg: W,
    /// Miller state update per unit of (x − vc).
    kg2: W,
    /// Miller output per unit of state.
    m_y: W,
    /// Miller state decay.
    m_s: W,
    /// Minus the pre-emphasis pole b.
    neg_b: W,
    /// Coupling capacitor decay.
    v_a: W,
    /// Coupling capacitor pole step.
    k_lin: W,
    /// Grid-current charging coefficient.
    k_ig: W,
    /// Table coordinate at rest.
    off: W,
    /// Cathode decay per sample.
    vk_a: W,
    /// Cathode rise per table unit of grid drive.
    vk_u: W,
    /// Table units per volt of cathode rise (negative).
    vk_q: W,
}

/// The linear part of one sample: coupling capacitor, Miller one-pole,
/// ADAA pre-emphasis and the cathode (`cathode.rs`: its linear response to
/// the grid drive, plus `d`, the drive of its nonlinear remainder one chunk
/// late); `igk` is the previous sample's grid current times `k_ig`.
/// Returns the table coordinate q and the cathode's rise. The recursions
/// are written as `state' = a·state + b·input` so each loop-carried chain
/// is one multiply and one add (one FMA when fused).
#[inline(always)]
fn linear_step<M: MulAdd, W: Arith>(
    c: &LinearCoefs<W>,
    st: &mut StageLanes<W>,
    x: W,
    igk: W,
    d: W,
) -> (W, W) {
    let m = mad::<M, W>;
    let dx = x - st.vc;
    let y = m(st.ms, c.m_y, dx * c.kg);
    st.ms = m(st.ms, c.m_s, dx * c.kg2);
    st.e = m(st.e, c.neg_b, y);
    st.vc = m(st.vc, c.v_a, m(x, c.k_lin, igk));
    st.vk = m(st.vk, c.vk_a, m(st.e, c.vk_u, d));
    (m(st.vk, c.vk_q, st.e + c.off), st.vk)
}

/// What the linear pass records of a chunk, per lane: its largest and
/// smallest table coordinate and step.
#[derive(Clone, Copy, Debug)]
pub(super) struct ChunkStats<W> {
    /// Largest coordinate.
    q_max: W,
    /// Smallest coordinate.
    q_min: W,
    /// Smallest step.
    step_min: W,
    /// Largest step.
    step_max: W,
}

impl<W: Arith> ChunkStats<W> {
    /// The record of no coordinates.
    #[inline(always)]
    fn empty() -> Self {
        let big = W::splat(f64::MAX);
        ChunkStats {
            q_max: -big,
            q_min: big,
            step_min: big,
            step_max: W::default(),
        }
    }

    /// Take coordinate `v`, which follows `q_prev`.
    #[inline(always)]
    fn take(&mut self, v: W, q_prev: W) {
        self.q_max = self.q_max.hi(v);
        self.q_min = self.q_min.lo(v);
        let step = (v - q_prev).abs();
        self.step_min = self.step_min.lo(step);
        self.step_max = self.step_max.hi(step);
    }

    /// The record of the coordinates `qs` after `q_prev` (what the linear
    /// pass records of them).
    #[inline(always)]
    pub(super) fn of(qs: &[W], mut q_prev: W) -> Self {
        let mut r = Self::empty();
        for &v in qs {
            r.take(v, q_prev);
            q_prev = v;
        }
        r
    }
}

/// The linear recursions over a chunk, with the grid current of the sample
/// before it fed into its first sample only (a chunk that reaches grid
/// current is redone serially, see `finish_chunk`): `put(q, v)` takes the
/// table coordinate `v` of each input of `xs` with an item of `qs`; `st`
/// ends at the chunk's end with no grid current (its `q_prev` is left for
/// the ADAA). `xs` yields each input with its cathode drive `d` (see
/// `linear_step`); `put` takes the table coordinate and the cathode's rise.
/// Returns the chunk's record.
#[inline(always)]
fn linear_pass<M: MulAdd, W: Arith, Q: Iterator>(
    c: &LinearCoefs<W>,
    st: &mut StageLanes<W>,
    xs: impl Iterator<Item = (W, W)>,
    qs: Q,
    mut put: impl FnMut(Q::Item, (W, W)),
) -> ChunkStats<W> {
    let mut r = ChunkStats::empty();
    let mut s = *st;
    let mut q_prev = s.q_prev;
    let no_ig = W::default() * c.k_ig;
    let mut igk = s.ig_prev * c.k_ig;
    for (q, (x, d)) in qs.zip(xs) {
        let (v, vk) = linear_step::<M, W>(c, &mut s, x, igk, d);
        igk = no_ig;
        r.take(v, q_prev);
        q_prev = v;
        put(q, (v, vk));
    }
    s.ig_prev = W::default();
    *st = s;
    r
}

/// A pot-fed stage's grid current blended per sample (see
/// [`GridBlend`]), for `finish_chunk`: the blend, the wiper's division of
/// each sample of the chunk, and what it leaves.
pub(super) struct Blended<'a, 'b, L> {
    /// The tables to blend and how.
    pub(super) grid: GridBlend<'a>,
    /// The wiper's division of each sample.
    pub(super) gains: &'b [f64; CHUNK],
    /// The blended output less the table's in use, per sample (zeros
    /// where no step reaches grid current).
    pub(super) out: &'b mut [L; CHUNK],
    /// Whether any sample of the chunk was blended.
    pub(super) any: bool,
}

// ---------------------------------------------------------------------------
// The kernel
// ---------------------------------------------------------------------------

/// Borrowed table and copied coefficients of one stage for the sample loop,
/// all in table units (segments) where possible.
#[derive(Clone, Copy, Debug)]
pub(super) struct StageKernel<'a, M> {
    /// Segments of the selected tube.
    pub(super) seg: &'a Segments,
    /// How `a·b + c` is evaluated.
    pub(super) mad: std::marker::PhantomData<M>,
    /// Miller output per unit of (x − vc): g·kth·(segments per volt)·(1 + b),
    /// with the Thevenin divider, table scaling and pre-emphasis gain folded in.
    pub(super) kg: f64,
    /// Miller state update per unit of (x − vc): 2·kg.
    pub(super) kg2: f64,
    /// Miller output per unit of state: 1 − g.
    pub(super) m_y: f64,
    /// Miller state decay: 1 − 2g.
    pub(super) m_s: f64,
    /// Coupling capacitor decay 1 − k_lin.
    pub(super) v_a: f64,
    /// Pre-emphasis pole b.
    pub(super) comp_b: f64,
    /// Table coordinate at rest (operating point).
    pub(super) off: f64,
    /// Segment count as f64 (the clamp).
    pub(super) last: f64,
    /// Curve value below the table (for the antiderivative's extension).
    pub(super) f_lo: f64,
    /// Curve value above the table.
    pub(super) f_hi: f64,
    /// Lowest table coordinate with any grid current (below: Ig = 0 exactly).
    pub(super) ig_start: f64,
    /// dIg per table unit beyond the table end.
    pub(super) ig_slope: f64,
    /// Coupling capacitor pole step.
    pub(super) k_lin: f64,
    /// Grid-current charging coefficient.
    pub(super) k_ig: f64,
    /// Curve value at rest, subtracted from the output.
    pub(super) dc: f64,
    /// Cathode decay per sample (`cathode.rs`).
    pub(super) vk_a: f64,
    /// Cathode rise per table unit of grid drive.
    pub(super) vk_u: f64,
    /// Table units per volt of cathode rise (negative).
    pub(super) vk_q: f64,
}

impl<M: MulAdd> StageKernel<'_, M> {
    /// Antiderivative of the curve at table coordinate q, extended linearly
    /// beyond both ends (where the curve is held constant).
    #[inline(always)]
    pub(super) fn big_f<L: TableLane>(&self, q: L) -> L {
        self.eval(q).0
    }

    /// (F(q), t, segment): the antiderivative at q from one segment fetch.
    #[inline(always)]
    fn eval<L: TableLane>(&self, q: L) -> (L, L, [L; SEG_LEN], L) {
        let s = L::splat;
        let qc = q.hi(s(0.0)).lo(s(self.last));
        let (t, c) = L::lookup(qc, self.seg);
        let over = (q - s(self.last)).hi(s(0.0));
        let big_f =
            antiderivative::<M, _>(&c, t) + q.lo(s(0.0)) * s(self.f_lo) + over * s(self.f_hi);
        (big_f, t, c, over)
    }

    /// The coefficients of `linear`, every lane the same.
    #[inline(always)]
    fn coefs<W: Arith>(&self) -> LinearCoefs<W> {
        let s = W::splat;
        LinearCoefs {
            kg: s(self.kg),
            kg2: s(self.kg2),
            m_y: s(self.m_y),
            m_s: s(self.m_s),
            neg_b: s(-self.comp_b),
            v_a: s(self.v_a),
            k_lin: s(self.k_lin),
            k_ig: s(self.k_ig),
            off: s(self.off),
            vk_a: s(self.vk_a),
            vk_u: s(self.vk_u),
            vk_q: s(self.vk_q),
        }
    }

    /// The linear part of one sample (see `linear_step`, `d` the cathode's
    /// delayed drive): returns the table coordinate q and the cathode's rise.
    #[inline(always)]
    fn linear<L: Lane>(&self, st: &mut StageLanes<L>, x: L, d: L) -> (L, L) {
        let c = self.coefs();
        let igk = st.ig_prev * c.k_ig;
        linear_step::<M, L>(&c, st, x, igk, d)
    }

    /// First-order ADAA at q given the previous coordinate and antiderivative:
    /// `(F(q) − F(q_prev))/(q − q_prev)`, or the mid-point value for tiny
    /// steps. Returns (output, F(q), t, segment, overshoot beyond the table).
    #[inline(always)]
    fn adaa<L: TableLane>(&self, q: L, q_prev: L, f_prev: L) -> (L, L, L, [L; SEG_LEN], L) {
        let (big_f, t, c, over) = self.eval(q);
        let out = adaa_value::<M, _>(big_f, f_prev, q - q_prev, t, &c);
        (out - L::splat(self.dc), big_f, t, c, over)
    }

    /// One sample, serially (grid current coupled): source voltage in, AC
    /// plate-to-cathode voltage out. `f_prev` is the antiderivative at
    /// `st.q_prev`; `d` the cathode's delayed drive. Leaves the sample's grid
    /// current in `st.ig_prev` and the cathode's rise in `st.vk`.
    #[inline(always)]
    pub(super) fn tick<L: TableLane>(
        &self,
        st: &mut StageLanes<L>,
        f_prev: &mut L,
        x: L,
        d: L,
    ) -> L {
        let s = L::splat;
        let (q, _) = self.linear(st, x, d);
        let (out, big_f, t, c, over) = self.adaa(q, st.q_prev, *f_prev);
        st.q_prev = q;
        *f_prev = big_f;
        // Grid current is exactly zero below the diode's knee: skip its cubic
        // (a well-predicted branch; most samples never reach the knee). Below
        // the knee the segment's Ig coefficients are exactly zero, so the
        // cubic of a lane below the knee is exactly 0 as well.
        st.ig_prev = if q.any_gt(self.ig_start) {
            grid_cubic::<M, _>(&c, t) + over * s(self.ig_slope)
        } else {
            s(0.0)
        };
        out
    }

    /// The linear pass over a chunk (see `finish_chunk`) of inputs `xs`
    /// with the cathode's delayed drives `ds`: `tr` takes the table
    /// coordinates and the cathode's rise; returns the chunk's record.
    #[inline(always)]
    pub(super) fn linear_chunk<L: Lane>(
        &self,
        st: &mut StageLanes<L>,
        xs: &[L],
        ds: &[L],
        tr: &mut ChunkTrace<L>,
    ) -> ChunkStats<L> {
        let xs = xs.iter().copied().zip(ds.iter().copied());
        let qs = tr.q.iter_mut().zip(tr.vk.iter_mut());
        linear_pass::<M, L, _>(&self.coefs(), st, xs, qs, |(q, v), (a, b)| {
            (*q, *v) = (a, b);
        })
    }

    /// The linear passes of two stages over chunks of the same length in
    /// one loop, in the lanes of [`PairLane::Wide`] (the build's register
    /// of twice the lanes): `self` over `xs` (inputs and cathode drives,
    /// state `st`, into `tr`), `k2` over `xs2` (state `st2`, into `tr2`).
    /// The same arithmetic per lane
    /// as two `linear_chunk`s: about the cost of one, as each is bound by
    /// its instructions, not by the width of the registers.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn linear_chunk_pair<L: PairLane>(
        &self,
        k2: &StageKernel<'_, M>,
        st: &mut StageLanes<L>,
        st2: &mut StageLanes<L>,
        xs: (&[L], &[L]),
        xs2: (&[L], &[L]),
        tr: &mut ChunkTrace<L>,
        tr2: &mut ChunkTrace<L>,
    ) -> (ChunkStats<L>, ChunkStats<L>) {
        let ((xs, ds), (xs2, ds2)) = (xs, xs2);
        let n = xs.len().min(xs2.len()).min(CHUNK);
        let (a, b): (LinearCoefs<L>, LinearCoefs<L>) = (self.coefs(), k2.coefs());
        let p = |f: fn(&LinearCoefs<L>) -> L| L::widen::<M>(f(&a), f(&b));
        let c = LinearCoefs {
            kg: p(|c| c.kg),
            kg2: p(|c| c.kg2),
            m_y: p(|c| c.m_y),
            m_s: p(|c| c.m_s),
            neg_b: p(|c| c.neg_b),
            v_a: p(|c| c.v_a),
            k_lin: p(|c| c.k_lin),
            k_ig: p(|c| c.k_ig),
            off: p(|c| c.off),
            vk_a: p(|c| c.vk_a),
            vk_u: p(|c| c.vk_u),
            vk_q: p(|c| c.vk_q),
        };
        let mut sw = st.widen::<M>(st2);
        let w = L::widen::<M>;
        let xw = (xs[..n].iter().zip(&ds[..n]))
            .zip(xs2[..n].iter().zip(&ds2[..n]))
            .map(|((x, d), (x2, d2))| (w(*x, *x2), w(*d, *d2)));
        let qw =
            (tr.q.iter_mut().zip(tr.vk.iter_mut())).zip(tr2.q.iter_mut().zip(tr2.vk.iter_mut()));
        let stats =
            linear_pass::<M, L::Wide<M>, _>(&c, &mut sw, xw, qw, |((q, v), (q2, v2)), (a, b)| {
                (*q, *q2) = L::narrow::<M>(a);
                (*v, *v2) = L::narrow::<M>(b);
            });
        (*st, *st2) = StageLanes::narrow::<M>(sw);
        let h = L::narrow::<M>;
        let ((a1, a2), (b1, b2), (c1, c2), (d1, d2)) = (
            h(stats.q_max),
            h(stats.q_min),
            h(stats.step_min),
            h(stats.step_max),
        );
        (
            ChunkStats {
                q_max: a1,
                q_min: b1,
                step_min: c1,
                step_max: d1,
            },
            ChunkStats {
                q_max: a2,
                q_min: b2,
                step_min: c2,
                step_max: d2,
            },
        )
    }

    /// A chunk of at most `CHUNK` input samples `xs` with cathode drives
    /// `ds` (`tr` is scratch): `linear_chunk`, then `finish_chunk`.
    #[cfg(test)]
    pub(super) fn process_chunk<L: StageLane>(
        &self,
        st: &mut StageLanes<L>,
        f_prev: &mut L,
        (xs, ds): (&[L], &[L]),
        tr: &mut ChunkTrace<L>,
        post: impl FnMut(usize, L),
    ) -> L {
        let n = xs.len().min(CHUNK);
        let saved = *st;
        let stats = self.linear_chunk(st, &xs[..n], &ds[..n], tr);
        self.finish_chunk(
            st,
            &saved,
            stats,
            f_prev,
            (&xs[..n], &ds[..n]),
            tr,
            post,
            None,
        )
    }

    /// Finish a chunk of at most `CHUNK` input samples after its linear
    /// pass (`linear_chunk`, or `linear_chunk_pair`), which left `st` at the
    /// chunk's end, its record in `stats` and its table coordinates and
    /// cathode in `tr`; `saved` is the state before it, `xs` the inputs
    /// and their cathode drives. `tr` ends with the chunk's coordinates,
    /// cathode and grid currents (zeros when none). `post(j, y)` takes output
    /// sample j (a store: a sample may be posted twice, `mixed_by_patch` in
    /// `adaa.rs`; fused into this stage's ADAA loop; keep it free of
    /// recursions: one there, such as the output coupling, serialises the
    /// stereo quotient loop into 128-bit halves). When no sample of the
    /// chunk reaches grid current, the ADAA runs over `qs` as independent
    /// per-sample work; otherwise the chunk is redone serially from `saved`
    /// (the grid current charges the coupling capacitor one sample later).
    /// A chunk that stays inside the
    /// table skips the clamps and takes one of four ADAA loops by its steps:
    /// all exactly zero (silence: one value for the chunk), all at most
    /// `ADAA_MIN_STEP` (quiet tails: mid-point values only, no division),
    /// all above it (quotients only), or mixed (both and a pick). Silence and
    /// tails are therefore the cheapest chunks, not the dearest. All paths
    /// do identical arithmetic for each sample (bit-identical output).
    /// Returns the chunk's largest table coordinate per lane (the grid
    /// drive's peak, for the meters: Vgk rises monotonically with q).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn finish_chunk<L: StageLane>(
        &self,
        st: &mut StageLanes<L>,
        saved: &StageLanes<L>,
        stats: ChunkStats<L>,
        f_prev: &mut L,
        (xs, ds): (&[L], &[L]),
        tr: &mut ChunkTrace<L>,
        mut post: impl FnMut(usize, L),
        mut blend: Option<&mut Blended<'_, '_, L>>,
    ) -> L {
        let n = xs.len().min(ds.len()).min(CHUNK);
        let (xs, ds) = (&xs[..n], &ds[..n]);
        let big = L::splat(f64::MAX);
        let q_max = stats.q_max;
        // (With a blend, a chunk whose first step starts in grid current
        // takes the serial path too: that step is blended.)
        let from_ig = blend.is_some() && saved.q_prev.any_gt(self.ig_start);
        if q_max.any_gt(self.ig_start) || from_ig {
            *st = *saved;
            let mut q_peak = -big;
            if let Some(b) = blend.as_deref_mut() {
                b.out[..n].fill(L::default());
            }
            for (j, (x, d)) in xs.iter().zip(ds).enumerate() {
                let j = j & (CHUNK - 1);
                let q_before = st.q_prev;
                let y = self.tick(st, f_prev, *x, *d);
                if let Some(b) = blend.as_deref_mut() {
                    self.blend_sample(b, j, q_before, st, *x, y);
                }
                post(j, y);
                (tr.q[j], tr.vk[j], tr.ig[j]) = (st.q_prev, st.vk, st.ig_prev);
                q_peak = q_peak.hi(st.q_prev);
            }
            return q_peak;
        }
        tr.ig[..n].fill(L::default());
        let (q_prev, fp) = self.average_chunk(&tr.q[..n], st.q_prev, *f_prev, &stats, &mut post);
        st.q_prev = q_prev;
        *f_prev = fp;
        q_max
    }

    /// The grid-current blend of serial sample `j` (see [`Blended`]):
    /// `q_before` the coordinate before it, `st` the state after its
    /// `tick`, `x` its input and `y` its output. A lane whose step reaches
    /// grid current gets the step's ADAA and grid current on the two pot
    /// tables around its grid's resistance, blended; its output's
    /// difference from `y` goes to `b.out`, its grid current to `st`.
    #[inline(always)]
    fn blend_sample<L: StageLane>(
        &self,
        b: &mut Blended<'_, '_, L>,
        j: usize,
        q_before: L,
        st: &mut StageLanes<L>,
        x: L,
        y: L,
    ) {
        if !q_before.hi(st.q_prev).any_gt(self.ig_start) {
            return;
        }
        let a = b.gains[j & (CHUNK - 1)];
        for l in 0..L::LANES {
            let (qp, q) = (q_before.lane(l), st.q_prev.lane(l));
            if qp.max(q) > self.ig_start {
                let (k0, k1, w) = b.grid.curves::<M>(a, x.lane(l));
                let ((y0, g0), (y1, g1)) = (k0.step(q, qp), k1.step(q, qp));
                let m = mad::<M, f64>;
                let o = &mut b.out[j & (CHUNK - 1)];
                *o = o.with_lane(l, m(w, y1 - y0, y0) - y.lane(l));
                st.ig_prev = st.ig_prev.with_lane(l, m(w, g1 - g0, g0));
                b.any = true;
            }
        }
    }

    /// One step from `q_prev` to `q` on this kernel's curve alone: its
    /// ADAA output and the grid current at `q`.
    #[inline(always)]
    fn step(&self, q: f64, q_prev: f64) -> (f64, f64) {
        let (out, _, t, c, over) = self.adaa(q, q_prev, self.big_f(q_prev));
        (out, grid_cubic::<M, _>(&c, t) + over * self.ig_slope)
    }

    /// The ADAA over a chunk's coordinates `qs` from `q_prev` (its
    /// antiderivative `fp`), given the chunk's record `stats` (its
    /// extremes and steps: they pick the loop, see `finish_chunk`);
    /// `post(j, y)` takes output sample j. Returns the last coordinate and
    /// its antiderivative.
    #[inline(always)]
    pub(super) fn average_chunk<L: StageLane>(
        &self,
        qs: &[L],
        mut q_prev: L,
        mut fp: L,
        stats: &ChunkStats<L>,
        mut post: impl FnMut(usize, L),
    ) -> (L, L) {
        let n = qs.len();
        let ChunkStats {
            q_max,
            q_min,
            step_min,
            step_max,
        } = *stats;
        let in_range = !(-q_min).any_gt(0.0) && !q_max.any_gt(self.last);
        if in_range && !step_max.any_gt(ADAA_MIN_STEP) {
            // Silence and quiet tails: every step is below `ADAA_MIN_STEP`,
            // so every sample takes the mid-point value (no quotient, no
            // antiderivative except at the chunk's end). The same arithmetic
            // as `adaa` for each sample.
            if !step_max.any_gt(0.0) {
                // Every q equals the previous one: one value for the chunk.
                let q = q_prev;
                let (t, c) = L::lookup(q, self.seg);
                let out = adaa_mid::<M, _>(&c, t, q - q_prev) - L::splat(self.dc);
                for j in 0..n {
                    post(j, out);
                }
                fp = antiderivative::<M, _>(&c, t);
            } else {
                q_prev = L::adaa_mids(self, qs, q_prev, &mut post);
                let (t, c) = L::lookup(q_prev, self.seg);
                fp = antiderivative::<M, _>(&c, t);
            }
        } else if in_range && step_min.all_gt(ADAA_MIN_STEP) {
            // In range: the clamps and extensions are identities (adding
            // exact zeros), and |dq| > ADAA_MIN_STEP picks the quotient.
            (q_prev, fp) = L::adaa_quotients(self, qs, q_prev, fp, &mut post);
        } else if in_range {
            (q_prev, fp) = L::adaa_mixed(self, qs, q_prev, fp, &mut post);
        } else {
            for (j, q) in qs.iter().enumerate() {
                let (out, big_f, ..) = self.adaa(*q, q_prev, fp);
                post(j, out);
                q_prev = *q;
                fp = big_f;
            }
        }
        (q_prev, fp)
    }

    /// Output at rest, computed exactly as `adaa` does for a zero step (so
    /// rest gives exactly 0).
    pub(super) fn rest_value(&self) -> f64 {
        let q = 0.0 + self.off;
        let (_, t, c, _) = self.eval(q);
        adaa_mid::<M, _>(&c, t, 0.0)
    }
}
