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
//! - [`F4`]: four `f64` lanes: two consecutive samples of a stereo pair (the
//!   stereo ADAA quotients), two stages' stereo states side by side, or two
//!   stereo loudness estimators (`LoudnessQuad`).
//!
//! The lanes are plain arrays operated on lane by lane with
//! `#[inline(always)]` operators, no intrinsics: LLVM emits packed SSE2 for
//! `F2` (`addpd`, `mulpd`, `divpd`, `maxpd`) and 256-bit AVX for `F4` where
//! the caller is compiled for it (the `avx2,fma` builds of the loops, see
//! [`super::fma`]), pairs of SSE2 operations otherwise. Every lane computes
//! exactly what the scalar code computes, with the same operations in the
//! same order, so no lane's result depends on how many lanes ran beside it:
//! a stereo preamp is bit for bit two mono ones, and a loop may switch
//! widths between chunks.
//!
//! Two traits carry the loops: [`Arith`], what every lane type has (the
//! four operations, fused multiply-add, lane-wise max and abs; enough for
//! the linear recursions), and [`Lane`], what a per-channel sample loop
//! needs besides (min, compares and picks, the input guard, the denormal
//! flush, and a [`Lane::Pair`] of itself: `f64` pairs into `F2`, `F2` into
//! `F4`). [`mad`] is `a·b + c`, fused or not as the loop's build says.
//!
//! Users: every sample loop of the core: the tube preamp (`super::tube`),
//! the loudness estimators (`super::loudness`), the half-band allpass
//! cascades (`super::oversampling`, `F2` for one channel's two polyphase
//! paths, `F4` for a stereo pair's) and the headphone loop
//! (`super::headphone`, its states two per `F2`).
//!
//! Known wart: where two `F2` are joined into an `F4` in registers for a
//! whole loop (the stereo preamp's paired linear pass, `LoudnessQuad`, the
//! stereo half-band loops), the joined state goes through `black_box`, or
//! LLVM's SLP vectoriser keeps the loop in two 128-bit halves (the live
//! preamp chain measured 20 % slower without it). The fix is an `F4` that
//! is a 256-bit register type in the AVX2 build (the build's lane types
//! carried by the `Kernel`'s type parameter instead of the multiply-add
//! flavour alone); not done yet.
//!
//! # Which build runs: [`Isa`], chosen once
//!
//! The loops are compiled twice: a portable build (SSE2 on x86_64, the
//! target's baseline elsewhere; `a·b + c` unfused) and, on x86_64, an
//! AVX2 + FMA build (256-bit `F4`, fused multiply-add, see [`super::fma`]).
//! Which one runs is an [`Isa`] value: [`Isa::detect`] is the only place
//! that asks the CPU, the chain asks once in `prepare` and hands the answer
//! to every stage in its [`super::ProcessSpec`], and every stage runs its
//! loops through [`Isa::run`], the one place where the builds are told
//! apart. A loop is a [`Kernel`]: a value holding its arguments, whose
//! `run::<M>()` is the loop written once, generic over the multiply-add
//! flavour `M`. Tests force either build through the whole chain
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
    /// Lane-wise absolute value.
    fn abs(self) -> Self;
}

/// What a per-channel sample loop needs from a lane type (`f64` or [`F2`]).
pub trait Lane: Arith {
    /// Two of these side by side (two stages' linear passes in one loop,
    /// or two consecutive samples).
    type Pair: Arith;
    /// `a` in the low lanes, `b` in the high ones.
    fn pair(a: Self, b: Self) -> Self::Pair;
    /// The low and high lanes of `p`.
    fn halves(p: Self::Pair) -> (Self, Self);
    /// Lane `i` (the last lane when `i` is beyond them).
    fn lane(self, i: usize) -> f64;
    /// Lane-wise `if self < o { self } else { o }` (one `minpd`).
    fn lo(self, o: Self) -> Self;
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
    fn abs(self) -> Self {
        f64::abs(self)
    }
}

impl Lane for f64 {
    type Pair = F2;
    #[inline(always)]
    fn pair(a: Self, b: Self) -> F2 {
        F2([a, b])
    }
    #[inline(always)]
    fn halves(p: F2) -> (Self, Self) {
        (p.0[0], p.0[1])
    }
    #[inline(always)]
    fn lane(self, _i: usize) -> f64 {
        self
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
    fn abs(self) -> Self {
        F2([self.0[0].abs(), self.0[1].abs()])
    }
}

impl Lane for F2 {
    type Pair = F4;
    #[inline(always)]
    fn pair(a: Self, b: Self) -> F4 {
        F4::join(a, b)
    }
    #[inline(always)]
    fn halves(p: F4) -> (Self, Self) {
        (p.lo_half(), p.hi_half())
    }
    #[inline(always)]
    fn lane(self, i: usize) -> f64 {
        self.0[i.min(1)]
    }
    #[inline(always)]
    fn lo(self, o: Self) -> Self {
        F2([self.0[0].lo(o.0[0]), self.0[1].lo(o.0[1])])
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

impl F4 {
    /// `a` in lanes 0 and 1, `b` in lanes 2 and 3.
    #[inline(always)]
    pub(crate) fn join(a: F2, b: F2) -> Self {
        F4([a.0[0], a.0[1], b.0[0], b.0[1]])
    }
    /// Lanes 0 and 1.
    #[inline(always)]
    pub(crate) fn lo_half(self) -> F2 {
        F2([self.0[0], self.0[1]])
    }
    /// Lanes 2 and 3.
    #[inline(always)]
    pub(crate) fn hi_half(self) -> F2 {
        F2([self.0[2], self.0[3]])
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
    fn abs(self) -> Self {
        F4(self.0.map(f64::abs))
    }
}
