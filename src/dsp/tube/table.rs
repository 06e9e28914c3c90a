//! The static curve of a triode stage as a table of cubic segments, its
//! antiderivative, and the first-order ADAA formula that averages it.
//!
//! # Solution method
//!
//! With the cathode bypassed, Vk is constant (the DC operating point) and the
//! plate is unloaded at DC (plate load Ra only), so the stage reduces to a
//! static curve of one variable plus linear filters. The grid network is
//! reduced to its Thevenin equivalent: with the coupling capacitor voltage vc
//! treated as a source over one sample,
//! `Vth = (x − vc)·Rg/(Rsrc + Rg)`, `Rth = Rsrc ‖ Rg`. With `u = Vth − Vk`
//! (grid drive relative to the cathode) the two implicit equations
//!
//! ```text
//!   Vd + (Rth + Rs + RGI)·Ig(Vd) = u,   Ig(Vd) = IS·(exp(Vd/Vt) − 1)⁺   (grid diode)
//!   Vgk = u − (Rth + Rs)·Ig
//!   Vpk + Ra·Ip(Vgk, Vpk) = B+ − Vk                                       (plate)
//! ```
//!
//! are solved with safeguarded Newton in `prepare` (`koren.rs`) on a uniform
//! grid of u and stored as piecewise cubic Hermite segments (value and exact
//! slope at each node from the implicit function theorem), giving `Vpk(u)`
//! and `Ig(u)`, plus the exact antiderivative `F(u) = ∫Vpk du` of the cubic
//! (a quartic per segment, anchored at 0 at the nominal operating point).
//! Per sample: one segment fetch per stage, no transcendental functions. The
//! table is built at the nominal cathode voltage; the Bias control moves Vk
//! (and so the operating point u_q = −Vk along the same curve); the
//! neglected change of effective supply (B+ − Vk) is < 0.4 %.
//!
//! Table: 1024 cubic segments per curve (4096 changes nothing measurable:
//! H3 at −95 dBc moves < 0.01 dB). The sample loop works in table
//! coordinates (segments from the table's bottom): a segment index and the
//! fraction t within it ([`split_index`]). The ADAA that averages the
//! curve is in `adaa.rs`.

use super::koren::KorenTriode;
use crate::dsp::fma::{MulAdd, Unfused};
use crate::dsp::simd::{mad, Arith, Lane, Quad, F2};

/// Number of cubic segments per curve table.
pub(super) const TABLE_SEGMENTS: usize = 1024;

/// Index mask of a segment number: indices in range are unchanged, and the
/// mask lets the compiler drop the bounds check of the table lookup.
const SEG_MASK: usize = TABLE_SEGMENTS - 1;

/// A whole curve table's segments (fixed size, so a masked index is always
/// in bounds).
pub(super) type Segments = [Segment; TABLE_SEGMENTS];

/// Coefficients per segment, see [`Segment`] (the last four are padding).
pub(super) const SEG_LEN: usize = 16;

/// One table segment in its local coordinate t ∈ [0, 1]:
/// `[c0, c1, c2, c3, F0, c1/2, c2/3, c3/4 | g0, g1, g2, g3, 0, 0, 0, 0]` with
/// `Vpk − Vpk_ref = c0 + c1·t + c2·t² + c3·t³` (cubic Hermite),
/// its antiderivative in table units `F = F0 + c0·t + c1·t²/2 + c2·t³/3 + c3·t⁴/4`
/// (F0 accumulated over the segments below, zero at the nominal operating
/// point, so small signals difference small numbers), and
/// `Ig = g0 + g1·t + g2·t² + g3·t³`. `c1/2, c2/3, c3/4` are the
/// antiderivative's coefficients, stored pre-divided (the same products the
/// sample loop would form, so nothing changes but two multiplies per
/// lookup). A segment is two cache lines, aligned: the curve and its
/// antiderivative, all that the ADAA of every sample reads, are the first;
/// the grid current, read only in grid current, the second (with 12
/// coefficients unaligned, each lookup touched two lines).
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(64))]
pub(super) struct Segment(pub(super) [f64; SEG_LEN]);

/// `Vpk(u)` and `Ig(u)` of one stage as piecewise cubic Hermite segments on a
/// uniform grid of u = Vth − Vk, plus the antiderivative of Vpk for ADAA.
#[derive(Clone, Debug, Default)]
pub(super) struct CurveTable {
    /// Lowest u in the table (deep cut-off); below it the curve is held.
    pub(super) lo_volts: f64,
    /// Highest u in the table (hard grid conduction); above it Vpk is held and
    /// Ig is extended linearly.
    pub(super) hi_volts: f64,
    /// Segments per volt.
    pub(super) inv_h: f64,
    /// Number of segments as f64 (minus 1e-9), the clamp for the segment coordinate.
    pub(super) last: f64,
    /// The segments.
    pub(super) seg: Vec<Segment>,
    /// dIg/du at `hi_volts`, for the linear extension beyond the table.
    pub(super) ig_slope_hi: f64,
    /// Supply minus nominal cathode voltage the table was built for.
    pub(super) vs_volts: f64,
    /// Start of the first segment with non-zero grid-current coefficients.
    pub(super) ig_start_volts: f64,
    /// Vpk at the nominal operating point, subtracted from the stored curve.
    pub(super) vpk_ref_volts: f64,
    /// The curve's value at the table's lowest u (where its first segment
    /// starts), kept here so that a chunk's kernel need not reach into the
    /// segments (a cache miss per chunk, seen in a profile).
    pub(super) f_lo: f64,
    /// The curve's value at its highest u (where its last segment ends).
    pub(super) f_hi: f64,
}

impl CurveTable {
    /// Build by Newton at each node. `r_grid_ohms` is Rth + Rs (RGI is added
    /// here); `u_ref` is the nominal operating point (−Vk at bias 0).
    pub(super) fn build(
        t: &KorenTriode,
        vs: f64,
        ra: f64,
        r_grid_ohms: f64,
        lo: f64,
        hi: f64,
        u_ref: f64,
    ) -> Self {
        let n = TABLE_SEGMENTS;
        let h = (hi - lo) / n as f64;
        let rt = r_grid_ohms + t.rgi_ohms;
        let mut nodes = Vec::with_capacity(n + 1);
        let mut guess = vs;
        for j in 0..=n {
            let u = lo + h * j as f64;
            let (_, ig, dig) = t.solve_grid(u, rt);
            let vgk = u - r_grid_ohms * ig;
            let (vpk, dvp_dvg) = t.solve_plate(vgk, vs, ra, guess);
            guess = vpk;
            let dvgk = 1.0 - r_grid_ohms * dig;
            nodes.push((vpk, dvp_dvg * dvgk, ig, dig));
        }
        // Reference Vpk at u_ref from the exact solver (not the cubic).
        let (_, ig_ref, _) = t.solve_grid(u_ref, rt);
        let vpk_ref = t.solve_plate(u_ref - r_grid_ohms * ig_ref, vs, ra, vs).0;
        let mut big_f = 0.0;
        let mut seg: Vec<Segment> = nodes
            .windows(2)
            .map(|w| {
                let (y0, d0, g0, e0) = w[0];
                let (y1, d1, g1, e1) = w[1];
                let (a, b, c, d) = hermite(y0 - vpk_ref, y1 - vpk_ref, d0 * h, d1 * h);
                let (p, q, r, s) = hermite(g0, g1, e0 * h, e1 * h);
                let s0 = Segment([
                    a,
                    b,
                    c,
                    d,
                    big_f,
                    b * 0.5,
                    c * (1.0 / 3.0),
                    d * 0.25,
                    p,
                    q,
                    r,
                    s,
                    0.0,
                    0.0,
                    0.0,
                    0.0,
                ]);
                big_f += a + b / 2.0 + c / 3.0 + d / 4.0;
                s0
            })
            .collect();
        let first_ig = seg
            .iter()
            .position(|c| c.0[8..12].iter().any(|v| *v != 0.0))
            .unwrap_or(n);
        let mut table = CurveTable {
            ig_start_volts: lo + h * first_ig as f64,
            lo_volts: lo,
            hi_volts: hi,
            inv_h: 1.0 / h,
            last: n as f64 - 1e-9,
            seg: Vec::new(),
            ig_slope_hi: nodes[n].3,
            vs_volts: vs,
            vpk_ref_volts: vpk_ref,
            f_lo: 0.0,
            f_hi: 0.0,
        };
        // Anchor F at the operating point: F(u_ref) = 0.
        let x_ref = ((u_ref - lo) * table.inv_h).clamp(0.0, table.last);
        let (i, tt) = split_index(x_ref);
        let f_ref = antiderivative::<Unfused, _>(&seg[i].0, tt);
        for s in seg.iter_mut() {
            s.0[4] -= f_ref;
        }
        let last = &seg[n - 1].0;
        table.f_lo = seg[0].0[0];
        table.f_hi = last[0] + last[1] + last[2] + last[3];
        table.seg = seg;
        table
    }

    /// (Vpk, Ig) at u (static curve, no ADAA).
    pub(super) fn eval(&self, u: f64) -> (f64, f64) {
        let x = ((u - self.lo_volts) * self.inv_h).clamp(0.0, self.last);
        let (i, t) = split_index(x);
        let c = &self.seg[i].0;
        let vp = c[0] + t * (c[1] + t * (c[2] + t * c[3]));
        let ig = c[8] + t * (c[9] + t * (c[10] + t * c[11]));
        (
            vp + self.vpk_ref_volts,
            ig + (u - self.hi_volts).max(0.0) * self.ig_slope_hi,
        )
    }

    /// The segments as a fixed-size array (the table always has
    /// `TABLE_SEGMENTS` once built).
    #[inline]
    pub(super) fn segments(&self) -> &Segments {
        match <&Segments>::try_from(self.seg.as_slice()) {
            Ok(s) => s,
            Err(_) => unreachable!("curve tables have TABLE_SEGMENTS segments"),
        }
    }

    /// dVpk/du at u (for small-signal gain).
    pub(super) fn slope(&self, u: f64) -> f64 {
        let x = ((u - self.lo_volts) * self.inv_h).clamp(0.0, self.last);
        let (i, t) = split_index(x);
        let c = &self.seg[i].0;
        (c[1] + t * (2.0 * c[2] + 3.0 * t * c[3])) * self.inv_h
    }
}

/// Cubic Hermite coefficients in t for values y0, y1 and slopes (already × h).
fn hermite(y0: f64, y1: f64, m0: f64, m1: f64) -> (f64, f64, f64, f64) {
    (
        y0,
        m0,
        3.0 * (y1 - y0) - 2.0 * m0 - m1,
        2.0 * (y0 - y1) + m0 + m1,
    )
}

// ---------------------------------------------------------------------------
// Evaluating a segment
// ---------------------------------------------------------------------------

/// 1.5 · 2^52: adding it to a small f64 leaves its rounded integer part in the
/// low mantissa bits (the sum stays in the binade where one ulp is 1).
const ROUND_MAGIC: f64 = 6_755_399_441_055_744.0;

/// Segment index and fraction of a segment coordinate `x` in [0, n − 1e-9]:
/// floor without the saturating float-to-int cast (which costs ~15
/// instructions on baseline x86-64). For integer x the rounding may pick the
/// segment below with t = 1, which evaluates to the same value.
#[inline(always)]
pub(super) fn split_index(x: f64) -> (usize, f64) {
    let m = (x - 0.5) + ROUND_MAGIC;
    let fi = m - ROUND_MAGIC;
    ((m.to_bits() & 0xFFFF_FFFF) as usize, x - fi)
}

/// The antiderivative polynomial of one segment at t (table units).
#[inline(always)]
pub(super) fn antiderivative<M: MulAdd, L: Arith>(c: &[L; SEG_LEN], t: L) -> L {
    let m = mad::<M, L>;
    m(t, m(t, m(t, m(t, c[7], c[6]), c[5]), c[0]), c[4])
}

/// The curve's cubic of one segment at t (table units).
#[inline(always)]
pub(super) fn cubic<M: MulAdd, L: Arith>(c: &[L; SEG_LEN], t: L) -> L {
    let m = mad::<M, L>;
    m(t, m(t, m(t, c[3], c[2]), c[1]), c[0])
}

/// The grid current's cubic of one segment at t (table units).
#[inline(always)]
pub(super) fn grid_cubic<M: MulAdd, L: Arith>(c: &[L; SEG_LEN], t: L) -> L {
    let m = mad::<M, L>;
    m(t, m(t, m(t, c[11], c[10]), c[9]), c[8])
}

/// A lane type whose lanes each fetch a whole table segment.
pub(super) trait TableLane: Lane + AntiderivativeLane {
    /// Number of lanes.
    const LANES: usize;
    /// Segment lookup at a table coordinate `x` in [0, n − 1e-9]: the
    /// fraction t and the segment's coefficients.
    fn lookup(x: Self, seg: &Segments) -> (Self, [Self; SEG_LEN]);
    /// The same lanes with lane `i` set to `v`.
    fn with_lane(self, i: usize, v: f64) -> Self;
}

/// A lane type whose lanes each read the antiderivative from a table: all
/// the quotient-only ADAA loop needs.
pub(super) trait AntiderivativeLane: Arith {
    /// `antiderivative` at table coordinate `x` in [0, n − 1e-9]: for each
    /// lane the same operations as `antiderivative(&lookup(x))`.
    fn antiderivative_at<M: MulAdd>(x: Self, seg: &Segments) -> Self;
}

impl TableLane for f64 {
    const LANES: usize = 1;

    #[inline(always)]
    fn with_lane(self, _i: usize, v: f64) -> Self {
        v
    }

    #[inline(always)]
    fn lookup(x: Self, seg: &Segments) -> (Self, [Self; SEG_LEN]) {
        let (i, t) = split_index(x);
        (t, seg[i & SEG_MASK].0)
    }
}

impl TableLane for F2 {
    const LANES: usize = 2;

    #[inline(always)]
    fn with_lane(mut self, i: usize, v: f64) -> Self {
        self.0[i & 1] = v;
        self
    }

    #[inline(always)]
    fn lookup(x: Self, seg: &Segments) -> (Self, [Self; SEG_LEN]) {
        let (i0, t0) = split_index(x.0[0]);
        let (i1, t1) = split_index(x.0[1]);
        let (a, b) = (&seg[i0 & SEG_MASK].0, &seg[i1 & SEG_MASK].0);
        (F2([t0, t1]), std::array::from_fn(|k| F2([a[k], b[k]])))
    }
}

impl AntiderivativeLane for f64 {
    #[inline(always)]
    fn antiderivative_at<M: MulAdd>(x: Self, seg: &Segments) -> Self {
        let (t, c) = Self::lookup(x, seg);
        antiderivative::<M, _>(&c, t)
    }
}

impl AntiderivativeLane for F2 {
    #[inline(always)]
    fn antiderivative_at<M: MulAdd>(x: Self, seg: &Segments) -> Self {
        let (t, c) = Self::lookup(x, seg);
        antiderivative::<M, _>(&c, t)
    }
}

impl<Q: Quad> AntiderivativeLane for Q {
    /// One segment fetch per lane, only the five coefficients the
    /// antiderivative uses.
    #[inline(always)]
    fn antiderivative_at<M: MulAdd>(x: Self, seg: &Segments) -> Self {
        // `split_index` in the lanes: the fractions stay in the register
        // (built from four scalars they went through the stack, and the
        // wide load of four narrow stores stalls store forwarding).
        let magic = Q::splat(ROUND_MAGIC);
        let m = (x - Q::splat(0.5)) + magic;
        let t = x - (m - magic);
        let c: [&[f64; SEG_LEN]; 4] = m
            .to_array()
            .map(|v| &seg[(v.to_bits() & 0xFFFF_FFFF) as usize & SEG_MASK].0);
        let g = |k: usize| Q::from_array(c.map(|c| c[k]));
        let m = mad::<M, Q>;
        m(t, m(t, m(t, m(t, g(7), g(6)), g(5)), g(0)), g(4))
    }
}
