//! SIMD lanes: the number types the sample loops are written in.
//!
//! A sample loop is written once, generic over its lane type, and runs on
//! one of these:
//!
//! - `f64`: one value (one channel, one sample).
//! - [`F2`]: two `f64` lanes: the two channels of a stereo pair (the tube
//!   preamp's `StereoPreamp`; the reference and the processed signal of a
//!   loudness estimator), two consecutive samples of one channel (the mono
//!   ADAA quotients), or two triode stages' states of one channel side by
//!   side (the preamp's pipelined linear pass).
//! - four `f64` lanes: two consecutive samples of a stereo pair (the
//!   stereo ADAA quotients), two stages' stereo states side by side, two
//!   stereo loudness estimators (`LoudnessQuad`), or both channels' two
//!   polyphase paths of a stereo half-band. Each build has its own type
//!   (the [`Quad`] of the build, `M::F4`): [`F4`], an array, in the
//!   portable build; [`Avx4`], one 256-bit AVX register, in the AVX2 + FMA
//!   build.
//! - two `f64` lanes in a register, per build (the [`Duo`] of the build,
//!   `M::F2`: [`X2`], one SSE2 register, on x86_64): for state carried
//!   through a whole loop two at a time (the mono preamp's two stages in
//!   its pipelined linear pass).
//!
//! `f64`, `F2` and `F4` are plain arrays operated on lane by lane with
//! `#[inline(always)]` operators, no intrinsics: LLVM emits packed SSE2 for
//! `F2` (`addpd`, `mulpd`, `divpd`, `maxpd`) and pairs of SSE2 operations
//! for `F4`. `X2` and `Avx4` are the register types, written in intrinsics
//! (one macro, one instruction per operation), so the loops that carry two
//! or four lanes from end to end run packed by construction rather than by
//! the vectoriser's choice: joined from scalars or from two `F2` in
//! registers, the arrays led LLVM's SLP vectoriser to keep whole loops in
//! scalars or 128-bit halves, and it took `black_box` to stop it, which a
//! compiler update could undo. Every lane computes exactly what the scalar
//! code computes, with the same operations in the same order, so no lane's
//! result depends on how many lanes ran beside it: a stereo preamp is bit
//! for bit two mono ones, and a loop may switch widths between chunks.
//!
//! Traits carry the loops: [`Arith`], what every lane type has (the four
//! operations, fused multiply-add, lane-wise max and abs; enough for the
//! linear recursions); [`Lane`], what a per-channel sample loop needs
//! besides (min, compares and picks, the input guard, the denormal flush);
//! [`PairLane`], a lane type with two of itself side by side in the build
//! `M` (for two samples at a time, `Pair`: `f64` into `F2`, `F2` into
//! `M::F4`; for state carried through a loop, `Wide`: `f64` into `M::F2`,
//! `F2` into `M::F4`); [`Duo`] and [`Quad`], the register types (to and
//! from arrays; a `Quad` joined from and split into two `F2`). [`mad`] is
//! `a·b + c`, fused or not as the loop's build says.
//!
//! Users: every sample loop of the core: the tube preamp (`super::tube`),
//! the loudness estimators (`super::loudness`), the half-band allpass
//! cascades (`super::oversampling`, `F2` for one channel's two polyphase
//! paths, `M::F4` for a stereo pair's) and the headphone loop
//! (`super::headphone`, its states two per `F2`).
//!
//! # Which build runs: [`Isa`], chosen once
//!
//! The loops are compiled twice: a portable build (SSE2 on x86_64, the
//! target's baseline elsewhere; `a·b + c` unfused; four lanes in an `F4`)
//! and, on x86_64, an AVX2 + FMA build (fused multiply-add, see
//! [`super::fma`]; four lanes in an `Avx4`).
//! Which one runs is an [`Isa`] value: [`Isa::detect`] is the only place
//! that asks the CPU, the chain asks once in `prepare` and hands the answer
//! to every stage in its [`super::ProcessSpec`], and every stage runs its
//! loops through [`Isa::run`], the one place where the builds are told
//! apart. A loop is a [`Kernel`]: a value holding its arguments, whose
//! `run::<M>()` is the loop written once, generic over the build `M` (its
//! multiply-add and its four-lane type). Tests force either build through the whole chain
//! (`Chain::prepare_with_isa`) to check that both run and agree.

use super::fma::{Fused, MulAdd, Unfused};

/// The instruction set the loops run in. Built only by [`Isa::detect`],
/// [`Isa::portable`] and [`Isa::avx2_fma`], so a value that selects the AVX2
/// + FMA build exists only on a CPU that has both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Isa(IsaKind);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum IsaKind {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2Fma,
}

impl Default for Isa {
    /// The portable build.
    fn default() -> Self {
        Self::portable()
    }
}

impl Isa {
    /// The portable build: runs anywhere.
    pub const fn portable() -> Self {
        Isa(IsaKind::Portable)
    }

    /// The AVX2 + FMA build, if this CPU has both.
    pub fn avx2_fma() -> Option<Self> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return Some(Isa(IsaKind::Avx2Fma));
        }
        None
    }

    /// The fastest build this CPU runs: the one place the CPU is asked.
    pub fn detect() -> Self {
        Self::avx2_fma().unwrap_or_default()
    }

    /// Every build this CPU can run, portable first (for tests that run
    /// each one).
    pub fn all_available() -> impl Iterator<Item = Isa> {
        std::iter::once(Self::portable()).chain(Self::avx2_fma())
    }

    /// A short name for reports ("portable", "avx2+fma").
    pub fn name(self) -> &'static str {
        match self.0 {
            IsaKind::Portable => "portable",
            #[cfg(target_arch = "x86_64")]
            IsaKind::Avx2Fma => "avx2+fma",
        }
    }

    /// Runs `kernel` in this build: the one dispatch point of the core.
    #[inline(always)]
    pub(crate) fn run<K: Kernel>(self, kernel: K) -> K::Output {
        match self.0 {
            IsaKind::Portable => kernel.run::<Unfused>(),
            // SAFETY: an `Isa` holding `Avx2Fma` is only made by
            // `Isa::avx2_fma`, after the CPU reported AVX2 and FMA.
            #[cfg(target_arch = "x86_64")]
            IsaKind::Avx2Fma => unsafe { run_avx2_fma(kernel) },
        }
    }
}

/// A loop and its arguments, run in the build an [`Isa`] selects.
pub(crate) trait Kernel {
    /// What the loop returns.
    type Output;
    /// The loop, with `a·b + c` as `M` says. Implementations are
    /// `#[inline(always)]` so the whole loop is compiled into the build's
    /// copy of [`Isa::run`].
    fn run<M: MulAdd>(self) -> Self::Output;
}

/// `kernel` compiled with AVX2 and FMA, fused.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2_fma<K: Kernel>(kernel: K) -> K::Output {
    kernel.run::<Fused>()
}

/// Runs the test function `$f::<M>()` (generic over the build `M`) in
/// every build this CPU runs, through [`Isa::run`] as the core runs its
/// loops.
#[cfg(test)]
macro_rules! in_every_build {
    ($f:ident) => {{
        struct InBuild;
        impl $crate::dsp::simd::Kernel for InBuild {
            type Output = ();
            fn run<M: $crate::dsp::fma::MulAdd>(self) {
                $f::<M>()
            }
        }
        for isa in $crate::dsp::simd::Isa::all_available() {
            isa.run(InBuild);
        }
    }};
}
#[cfg(test)]
pub(crate) use in_every_build;

/// Two f64 lanes (left, right; or two samples) operated on lane by lane.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C, align(16))]
pub struct F2(pub(crate) [f64; 2]);

/// Four f64 lanes operated on lane by lane (see the module header for what
/// they carry).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C, align(32))]
pub struct F4(pub(crate) [f64; 4]);

/// The arithmetic every lane type has: what the linear recursions need.
pub trait Arith:
    Copy
    + Default
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::Neg<Output = Self>
{
    /// Every lane set to `v`.
    fn splat(v: f64) -> Self;
    /// Lane-wise `self·b + c` with one rounding (`f64::mul_add`).
    fn fused_mul_add(self, b: Self, c: Self) -> Self;
    /// Lane-wise `if self > o { self } else { o }` (one `maxpd`).
    fn hi(self, o: Self) -> Self;
    /// Lane-wise `if self < o { self } else { o }` (one `minpd`).
    fn lo(self, o: Self) -> Self;
    /// Lane-wise absolute value.
    fn abs(self) -> Self;
}

/// What a per-channel sample loop needs from a lane type (`f64` or [`F2`]).
pub trait Lane: Arith {
    /// Lane `i` (the last lane when `i` is beyond them).
    fn lane(self, i: usize) -> f64;
    /// Lane-wise `if |d| > thr { a } else { b }`.
    fn pick_abs_gt(d: Self, thr: f64, a: Self, b: Self) -> Self;
    /// Whether any lane exceeds `thr`.
    fn any_gt(self, thr: f64) -> bool;
    /// Whether every lane exceeds `thr`.
    fn all_gt(self, thr: f64) -> bool;
    /// Lane-wise input guard: finite values clamped to ±limit, NaN to 0.
    fn sanitize(self, limit: f64) -> Self;
    /// Whether every lane is finite.
    fn finite(self) -> bool;
    /// Lane-wise denormal flush: |v| < 1e-30 becomes 0.
    fn flush(self) -> Self;
}

/// Four `f64` lanes as a build has them: [`F4`] (an array) in the portable
/// build, [`Avx4`] (one 256-bit register) in the AVX2 + FMA build. Loops
/// that carry four lanes name it as `M::F4` for their build `M`.
pub(crate) trait Quad: Arith {
    /// The lanes of `a`, in order.
    fn from_array(a: [f64; 4]) -> Self;
    /// The lanes, in order.
    fn to_array(self) -> [f64; 4];
    /// `a` in lanes 0 and 1, `b` in lanes 2 and 3.
    #[inline(always)]
    fn join(a: F2, b: F2) -> Self {
        Self::from_array([a.0[0], a.0[1], b.0[0], b.0[1]])
    }
    /// Lanes 0 and 1, and lanes 2 and 3.
    #[inline(always)]
    fn halves(self) -> (F2, F2) {
        let [a, b, c, d] = self.to_array();
        (F2([a, b]), F2([c, d]))
    }
}

/// Two `f64` lanes as a build has them in a register (see [`PairLane::Wide`]):
/// on x86_64 one SSE2 register ([`X2`], with `vfmadd` in the AVX2 + FMA
/// build), elsewhere [`F2`].
pub(crate) trait Duo: Arith {
    /// The lanes of `a`, in order.
    fn from_array(a: [f64; 2]) -> Self;
    /// The lanes, in order.
    fn to_array(self) -> [f64; 2];
}

impl Duo for F2 {
    #[inline(always)]
    fn from_array(a: [f64; 2]) -> Self {
        F2(a)
    }
    #[inline(always)]
    fn to_array(self) -> [f64; 2] {
        self.0
    }
}

/// A lane type and two of it side by side, in the lanes of build `M`:
/// `f64` pairs into [`F2`], `F2` into the build's four lanes `M::F4` (two
/// stages' linear passes in one loop, or two consecutive samples).
pub(crate) trait PairLane: Lane {
    /// Two of `Self` side by side.
    type Pair<M: MulAdd>: Arith;
    /// `a` in the low lanes, `b` in the high ones.
    fn pair<M: MulAdd>(a: Self, b: Self) -> Self::Pair<M>;
    /// The low and high lanes of `p`.
    fn halves<M: MulAdd>(p: Self::Pair<M>) -> (Self, Self);
    /// Two of `Self` side by side in one register of build `M`, for state
    /// carried through a whole loop (two stages' linear passes): `f64`
    /// into `M::F2`, `F2` into `M::F4`. A register type, so the loop runs
    /// in packed instructions whatever the vectoriser would make of two
    /// values joined in registers.
    type Wide<M: MulAdd>: Arith;
    /// `a` in the low lanes, `b` in the high ones.
    fn widen<M: MulAdd>(a: Self, b: Self) -> Self::Wide<M>;
    /// The low and high lanes of `w`.
    fn narrow<M: MulAdd>(w: Self::Wide<M>) -> (Self, Self);
}

impl PairLane for f64 {
    type Pair<M: MulAdd> = F2;
    #[inline(always)]
    fn pair<M: MulAdd>(a: Self, b: Self) -> F2 {
        F2([a, b])
    }
    #[inline(always)]
    fn halves<M: MulAdd>(p: F2) -> (Self, Self) {
        (p.0[0], p.0[1])
    }
    type Wide<M: MulAdd> = M::F2;
    #[inline(always)]
    fn widen<M: MulAdd>(a: Self, b: Self) -> M::F2 {
        M::F2::from_array([a, b])
    }
    #[inline(always)]
    fn narrow<M: MulAdd>(w: M::F2) -> (Self, Self) {
        let [a, b] = w.to_array();
        (a, b)
    }
}

impl PairLane for F2 {
    type Pair<M: MulAdd> = M::F4;
    #[inline(always)]
    fn pair<M: MulAdd>(a: Self, b: Self) -> M::F4 {
        M::F4::join(a, b)
    }
    #[inline(always)]
    fn halves<M: MulAdd>(p: M::F4) -> (Self, Self) {
        p.halves()
    }
    type Wide<M: MulAdd> = M::F4;
    #[inline(always)]
    fn widen<M: MulAdd>(a: Self, b: Self) -> M::F4 {
        M::F4::join(a, b)
    }
    #[inline(always)]
    fn narrow<M: MulAdd>(w: M::F4) -> (Self, Self) {
        w.halves()
    }
}

/// The channels of one run in the lanes of `Self`: `f64` for one, [`F2`]
/// for a stereo pair; stored interleaved (sample by sample, channel by
/// channel) in a flat array.
pub(crate) trait Channels: Lane {
    /// Channels carried.
    const N: usize;
    /// The lanes from `s[..N]`.
    fn load(s: &[f64]) -> Self;
    /// The lanes into `s[..N]`.
    fn store(self, s: &mut [f64]);
    /// Sample `i` of each channel's block, lane `c` from `blocks[c]`.
    #[inline(always)]
    fn gather(blocks: &[&mut [f64]; 2], i: usize) -> Self {
        let mut v = [0.0; 2];
        for (c, b) in blocks.iter().enumerate().take(Self::N) {
            v[c] = b[i];
        }
        Self::load(&v)
    }
    /// The lanes into sample `i` of each channel's block.
    #[inline(always)]
    fn scatter(self, blocks: &mut [&mut [f64]; 2], i: usize) {
        let mut v = [0.0; 2];
        self.store(&mut v);
        for (c, b) in blocks.iter_mut().enumerate().take(Self::N) {
            b[i] = v[c];
        }
    }
    /// The type a sample loop carries the lanes in, in build `M`: `f64`
    /// as it is, [`F2`] (an array) in the build's register type `M::F2`
    /// (one SSE register). A loop written in `F2` with its states in
    /// `F2` can compile to scalar instructions with the states spilled to
    /// the stack (the transformer's cascade did: `vmulsd` and stack loads
    /// throughout), the array lanes defeating the vectoriser as the module
    /// header describes. The same operations on the same lanes: bit for
    /// bit the same results.
    type Reg<M: MulAdd>: Arith;
    /// The lanes in the register type.
    fn to_reg<M: MulAdd>(self) -> Self::Reg<M>;
    /// The lanes back from the register type.
    fn from_reg<M: MulAdd>(r: Self::Reg<M>) -> Self;
}

impl Channels for f64 {
    const N: usize = 1;
    #[inline(always)]
    fn load(s: &[f64]) -> Self {
        s[0]
    }
    #[inline(always)]
    fn store(self, s: &mut [f64]) {
        s[0] = self;
    }
    type Reg<M: MulAdd> = f64;
    #[inline(always)]
    fn to_reg<M: MulAdd>(self) -> f64 {
        self
    }
    #[inline(always)]
    fn from_reg<M: MulAdd>(r: f64) -> Self {
        r
    }
}

impl Channels for F2 {
    const N: usize = 2;
    #[inline(always)]
    fn load(s: &[f64]) -> Self {
        F2([s[0], s[1]])
    }
    #[inline(always)]
    fn store(self, s: &mut [f64]) {
        s[0] = self.0[0];
        s[1] = self.0[1];
    }
    type Reg<M: MulAdd> = M::F2;
    #[inline(always)]
    fn to_reg<M: MulAdd>(self) -> M::F2 {
        M::F2::from_array(self.0)
    }
    #[inline(always)]
    fn from_reg<M: MulAdd>(r: M::F2) -> Self {
        F2(r.to_array())
    }
}

/// `a·b + c` lane-wise, fused or not as `M` says (see [`super::fma`]).
#[inline(always)]
pub(crate) fn mad<M: MulAdd, L: Arith>(a: L, b: L, c: L) -> L {
    if M::INDEX == Fused::INDEX {
        a.fused_mul_add(b, c)
    } else {
        a * b + c
    }
}

/// NaN to 0, everything else clamped to ±limit (branch-free: the NaN test
/// is a mask, the clamps are `maxsd`/`minsd`).
#[inline(always)]
fn sanitize1(v: f64, limit: f64) -> f64 {
    let v = if v.is_nan() { 0.0 } else { v };
    v.hi(-limit).lo(limit)
}

/// |v| < 1e-30 to 0 (denormals and what decays into them).
#[inline(always)]
fn flush1(v: f64) -> f64 {
    if v.abs() < 1e-30 {
        0.0
    } else {
        v
    }
}

// ---------------------------------------------------------------------------
// f64: one lane
// ---------------------------------------------------------------------------

impl Arith for f64 {
    #[inline(always)]
    fn fused_mul_add(self, b: Self, c: Self) -> Self {
        self.mul_add(b, c)
    }
    #[inline(always)]
    fn splat(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn hi(self, o: Self) -> Self {
        if self > o {
            self
        } else {
            o
        }
    }
    #[inline(always)]
    fn lo(self, o: Self) -> Self {
        if self < o {
            self
        } else {
            o
        }
    }
    #[inline(always)]
    fn abs(self) -> Self {
        f64::abs(self)
    }
}

impl Lane for f64 {
    #[inline(always)]
    fn lane(self, _i: usize) -> f64 {
        self
    }
    #[inline(always)]
    fn pick_abs_gt(d: Self, thr: f64, a: Self, b: Self) -> Self {
        if d.abs() > thr {
            a
        } else {
            b
        }
    }
    #[inline(always)]
    fn any_gt(self, thr: f64) -> bool {
        self > thr
    }
    #[inline(always)]
    fn all_gt(self, thr: f64) -> bool {
        self > thr
    }
    #[inline(always)]
    fn sanitize(self, limit: f64) -> Self {
        sanitize1(self, limit)
    }
    #[inline(always)]
    fn finite(self) -> bool {
        self.is_finite()
    }
    #[inline(always)]
    fn flush(self) -> Self {
        flush1(self)
    }
}

// ---------------------------------------------------------------------------
// F2: two lanes
// ---------------------------------------------------------------------------

impl std::ops::Add for F2 {
    type Output = F2;
    #[inline(always)]
    fn add(self, o: F2) -> F2 {
        F2([self.0[0] + o.0[0], self.0[1] + o.0[1]])
    }
}

impl std::ops::Sub for F2 {
    type Output = F2;
    #[inline(always)]
    fn sub(self, o: F2) -> F2 {
        F2([self.0[0] - o.0[0], self.0[1] - o.0[1]])
    }
}

impl std::ops::Mul for F2 {
    type Output = F2;
    #[inline(always)]
    fn mul(self, o: F2) -> F2 {
        F2([self.0[0] * o.0[0], self.0[1] * o.0[1]])
    }
}

impl std::ops::Neg for F2 {
    type Output = F2;
    #[inline(always)]
    fn neg(self) -> F2 {
        F2([-self.0[0], -self.0[1]])
    }
}

impl std::ops::Div for F2 {
    type Output = F2;
    #[inline(always)]
    fn div(self, o: F2) -> F2 {
        F2([self.0[0] / o.0[0], self.0[1] / o.0[1]])
    }
}

impl Arith for F2 {
    #[inline(always)]
    fn fused_mul_add(self, b: Self, c: Self) -> Self {
        F2([
            self.0[0].mul_add(b.0[0], c.0[0]),
            self.0[1].mul_add(b.0[1], c.0[1]),
        ])
    }
    #[inline(always)]
    fn splat(v: f64) -> Self {
        F2([v, v])
    }
    #[inline(always)]
    fn hi(self, o: Self) -> Self {
        F2([self.0[0].hi(o.0[0]), self.0[1].hi(o.0[1])])
    }
    #[inline(always)]
    fn lo(self, o: Self) -> Self {
        F2([self.0[0].lo(o.0[0]), self.0[1].lo(o.0[1])])
    }
    #[inline(always)]
    fn abs(self) -> Self {
        F2([self.0[0].abs(), self.0[1].abs()])
    }
}

impl Lane for F2 {
    #[inline(always)]
    fn lane(self, i: usize) -> f64 {
        self.0[i.min(1)]
    }
    #[inline(always)]
    fn pick_abs_gt(d: Self, thr: f64, a: Self, b: Self) -> Self {
        F2([
            f64::pick_abs_gt(d.0[0], thr, a.0[0], b.0[0]),
            f64::pick_abs_gt(d.0[1], thr, a.0[1], b.0[1]),
        ])
    }
    #[inline(always)]
    fn any_gt(self, thr: f64) -> bool {
        (self.0[0] > thr) | (self.0[1] > thr)
    }
    #[inline(always)]
    fn all_gt(self, thr: f64) -> bool {
        (self.0[0] > thr) & (self.0[1] > thr)
    }
    #[inline(always)]
    fn sanitize(self, limit: f64) -> Self {
        F2([sanitize1(self.0[0], limit), sanitize1(self.0[1], limit)])
    }
    #[inline(always)]
    fn finite(self) -> bool {
        self.0[0].is_finite() && self.0[1].is_finite()
    }
    #[inline(always)]
    fn flush(self) -> Self {
        F2([flush1(self.0[0]), flush1(self.0[1])])
    }
}

// ---------------------------------------------------------------------------
// F4: four lanes
// ---------------------------------------------------------------------------

impl Quad for F4 {
    #[inline(always)]
    fn from_array(a: [f64; 4]) -> Self {
        F4(a)
    }
    #[inline(always)]
    fn to_array(self) -> [f64; 4] {
        self.0
    }
}

macro_rules! f4_op {
    ($tr:ident, $f:ident, $op:tt) => {
        impl std::ops::$tr for F4 {
            type Output = F4;
            #[inline(always)]
            fn $f(self, o: F4) -> F4 {
                F4(std::array::from_fn(|i| self.0[i] $op o.0[i]))
            }
        }
    };
}

f4_op!(Add, add, +);
f4_op!(Sub, sub, -);
f4_op!(Mul, mul, *);
f4_op!(Div, div, /);

impl std::ops::Neg for F4 {
    type Output = F4;
    #[inline(always)]
    fn neg(self) -> F4 {
        F4(self.0.map(|v| -v))
    }
}

impl Arith for F4 {
    #[inline(always)]
    fn splat(v: f64) -> Self {
        F4([v; 4])
    }
    #[inline(always)]
    fn fused_mul_add(self, b: Self, c: Self) -> Self {
        F4(std::array::from_fn(|i| self.0[i].mul_add(b.0[i], c.0[i])))
    }
    #[inline(always)]
    fn hi(self, o: Self) -> Self {
        F4(std::array::from_fn(|i| self.0[i].hi(o.0[i])))
    }
    #[inline(always)]
    fn lo(self, o: Self) -> Self {
        F4(std::array::from_fn(|i| self.0[i].lo(o.0[i])))
    }
    #[inline(always)]
    fn abs(self) -> Self {
        F4(self.0.map(f64::abs))
    }
}

// ---------------------------------------------------------------------------
// X2, Avx4: lanes in x86 registers
// ---------------------------------------------------------------------------

#[cfg(target_arch = "x86_64")]
pub(crate) use x86::{Avx4, X2};

#[cfg(target_arch = "x86_64")]
mod x86;

#[cfg(test)]
mod tests {
    use super::*;

    /// Values that tell IEEE operations apart: signed zeros, infinities,
    /// NaN, subnormals, and ordinary numbers of both signs.
    const SPECIAL: [f64; 12] = [
        0.0,
        -0.0,
        1.0,
        -2.5,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        f64::MIN_POSITIVE / 8.0,
        -1e-300,
        3.0e300,
        0.1,
        -7.0 / 3.0,
    ];

    /// Every operation of a lane type, in build `M`, on `a`, `b`, `c`.
    fn ops<M: MulAdd, T: Arith>(a: T, b: T, c: T, v: f64) -> [(&'static str, T); 9] {
        [
            ("add", a + b),
            ("sub", a - b),
            ("mul", a * b),
            ("div", a / b),
            ("neg", -a),
            ("hi", a.hi(b)),
            ("abs", a.abs()),
            ("mad", mad::<M, _>(a, b, c)),
            ("splat", T::splat(v)),
        ]
    }

    /// Every operation of the build's register lane types gives, bit for
    /// bit (signed zeros included), what the arrays `F2` and `F4` (lane-wise scalar
    /// arithmetic) give, over all triples of the special values.
    fn registers_match_arrays<M: MulAdd>() {
        let n = SPECIAL.len();
        for i in 0..n * n * n {
            let pick = |k: usize| std::array::from_fn(|l| SPECIAL[(i / n.pow(k as u32) + l) % n]);
            let (a, b, c): ([f64; 4], [f64; 4], [f64; 4]) = (pick(0), pick(1), pick(2));
            let q = M::F4::from_array;
            let wide = ops::<M, _>(q(a), q(b), q(c), a[1]);
            let arrays = ops::<M, _>(F4(a), F4(b), F4(c), a[1]);
            let d = |v: [f64; 4]| M::F2::from_array([v[0], v[1]]);
            let two = ops::<M, _>(d(a), d(b), d(c), a[1]);
            let e = |v: [f64; 4]| F2([v[0], v[1]]);
            let two_arrays = ops::<M, _>(e(a), e(b), e(c), a[1]);
            for (((name, w), (_, f)), ((_, t), (_, g))) in
                wide.iter().zip(&arrays).zip(two.iter().zip(&two_arrays))
            {
                // Bits, but any NaN as one (its sign and payload are not
                // specified across instructions: a software `mul_add`
                // outside the FMA build picks another than `vfmadd`).
                let canon = |v: f64| if v.is_nan() { u64::MAX } else { v.to_bits() };
                let bits4 = |v: [f64; 4]| v.map(canon);
                let bits2 = |v: [f64; 2]| v.map(canon);
                assert_eq!(
                    bits4(w.to_array()),
                    bits4(f.0),
                    "{name} of {a:?}, {b:?}, {c:?}"
                );
                assert_eq!(
                    bits2(t.to_array()),
                    bits2(g.0),
                    "{name} of {a:?}, {b:?}, {c:?}"
                );
            }
            let (lo, hi) = M::F4::join(F2([a[0], a[1]]), F2([a[2], a[3]])).halves();
            let joined = [lo.0[0], lo.0[1], hi.0[0], hi.0[1]];
            assert_eq!(joined.map(f64::to_bits), a.map(f64::to_bits), "join");
        }
    }

    #[test]
    fn every_builds_registers_compute_what_the_arrays_compute() {
        in_every_build!(registers_match_arrays);
    }
}
