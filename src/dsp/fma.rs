//! Multiply-add for the sample loops, fused or not, picked per build of a
//! loop.
//!
//! The hot loops are generic over [`MulAdd`]. The portable build uses
//! [`Unfused`]: `a·b + c` as a multiply and an add (two roundings). A copy of
//! the same loop compiled with `#[target_feature(enable = "avx2,fma")]` (the
//! AVX2 + FMA build an `Isa` selects, see `super::simd`) uses [`Fused`]: `f64::mul_add`, one
//! instruction with one rounding. Besides saving an instruction, it
//! shortens every loop-carried recursion `s' = a·s + u` from a multiply
//! plus an add (6 cycles on current x86) to one FMA (4 cycles), which is
//! what bounds the one-pole filters and the half-band allpasses.
//!
//! A build also names its register lane types (see `super::simd`): two
//! lanes, `MulAdd::F2` (one SSE2 register, `X2`, in both builds on x86_64)
//! and four, `MulAdd::F4` (`F4`, an array, in the portable build; `Avx4`,
//! one 256-bit register, in the AVX2 + FMA build).
//!
//! Every path of one build uses the same flavour, so a loop's output does
//! not depend on the block partition or on which of its loops a chunk takes;
//! the two builds differ in the last bits (different machines, not different
//! runs). `f64::mul_add` must only be reached through [`Fused`] inside code
//! compiled with the `fma` feature: elsewhere it is a slow library call.

#[cfg(not(target_arch = "x86_64"))]
use super::simd::F2;
#[cfg(target_arch = "x86_64")]
use super::simd::{Avx4, X2};
use super::simd::{Duo, Quad, F4};

/// A build of the loops: how `a·b + c` is evaluated, and its register
/// lane types.
pub(crate) trait MulAdd: Copy + Default + std::fmt::Debug {
    /// The build's two `f64` lanes in a register (see `super::simd::Duo`).
    type F2: Duo;
    /// The build's four `f64` lanes (see `super::simd::Quad`).
    type F4: Quad;
    /// 0 for [`Unfused`], 1 for [`Fused`] (an index into values precomputed
    /// per flavour).
    const INDEX: usize;
    /// `a·b + c`.
    fn mad1(a: f64, b: f64, c: f64) -> f64;
}

/// Multiply, then add.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Unfused;

impl MulAdd for Unfused {
    #[cfg(target_arch = "x86_64")]
    type F2 = X2<false>;
    #[cfg(not(target_arch = "x86_64"))]
    type F2 = F2;
    type F4 = F4;
    const INDEX: usize = 0;
    #[inline(always)]
    fn mad1(a: f64, b: f64, c: f64) -> f64 {
        a * b + c
    }
}

/// One fused multiply-add.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Fused;

impl MulAdd for Fused {
    #[cfg(target_arch = "x86_64")]
    type F2 = X2<true>;
    #[cfg(not(target_arch = "x86_64"))]
    type F2 = F2;
    #[cfg(target_arch = "x86_64")]
    type F4 = Avx4;
    #[cfg(not(target_arch = "x86_64"))]
    type F4 = F4;
    const INDEX: usize = 1;
    #[inline(always)]
    fn mad1(a: f64, b: f64, c: f64) -> f64 {
        a.mul_add(b, c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fused_rounds_once_and_unfused_twice() {
        // (1 + 2^-30)² = 1 + 2^-29 + 2^-60: the product alone rounds the
        // 2^-60 away, the fused form keeps it once 1 + 2^-29 is subtracted.
        let a = 1.0 + 2f64.powi(-30);
        let c = -(1.0 + 2f64.powi(-29));
        assert_eq!(Unfused::mad1(a, a, c), 0.0);
        assert_eq!(Fused::mad1(a, a, c), 2f64.powi(-60));
    }
}
