//! Pairs of f64 lanes for the headphone loop (`headphone/path.rs`): SSE2
//! registers on x86_64 (baseline there), plain arrays elsewhere. Lane-wise
//! IEEE multiply and add either way, so every build computes the same
//! bits.

#[cfg(not(target_arch = "x86_64"))]
pub(super) use portable::P2;
#[cfg(target_arch = "x86_64")]
pub(super) use sse2::P2;

#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::*;

    /// Two f64 lanes (low, high).
    #[derive(Clone, Copy, Debug)]
    pub struct P2(__m128d);

    impl P2 {
        #[inline(always)]
        pub fn new(lo: f64, hi: f64) -> Self {
            // SAFETY: SSE2 is part of the x86_64 baseline.
            unsafe { P2(_mm_set_pd(hi, lo)) }
        }
        #[inline(always)]
        pub fn splat(x: f64) -> Self {
            // SAFETY: SSE2 is part of the x86_64 baseline.
            unsafe { P2(_mm_set1_pd(x)) }
        }
        #[inline(always)]
        pub fn mul(self, o: Self) -> Self {
            // SAFETY: SSE2 is part of the x86_64 baseline.
            unsafe { P2(_mm_mul_pd(self.0, o.0)) }
        }
        #[inline(always)]
        pub fn add(self, o: Self) -> Self {
            // SAFETY: SSE2 is part of the x86_64 baseline.
            unsafe { P2(_mm_add_pd(self.0, o.0)) }
        }
        /// Both lanes set to the low lane.
        #[inline(always)]
        pub fn dup_lo(self) -> Self {
            // SAFETY: SSE2 is part of the x86_64 baseline.
            unsafe { P2(_mm_unpacklo_pd(self.0, self.0)) }
        }
        /// Both lanes set to the high lane.
        #[inline(always)]
        pub fn dup_hi(self) -> Self {
            // SAFETY: SSE2 is part of the x86_64 baseline.
            unsafe { P2(_mm_unpackhi_pd(self.0, self.0)) }
        }
        #[inline(always)]
        pub fn lo(self) -> f64 {
            // SAFETY: SSE2 is part of the x86_64 baseline.
            unsafe { _mm_cvtsd_f64(self.0) }
        }
        #[inline(always)]
        pub fn hi(self) -> f64 {
            // SAFETY: SSE2 is part of the x86_64 baseline.
            unsafe { _mm_cvtsd_f64(_mm_unpackhi_pd(self.0, self.0)) }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod portable {
    /// Two f64 lanes (low, high).
    #[derive(Clone, Copy, Debug)]
    pub struct P2([f64; 2]);

    impl P2 {
        #[inline(always)]
        pub fn new(lo: f64, hi: f64) -> Self {
            P2([lo, hi])
        }
        #[inline(always)]
        pub fn splat(x: f64) -> Self {
            P2([x, x])
        }
        #[inline(always)]
        pub fn mul(self, o: Self) -> Self {
            P2([self.0[0] * o.0[0], self.0[1] * o.0[1]])
        }
        #[inline(always)]
        pub fn add(self, o: Self) -> Self {
            P2([self.0[0] + o.0[0], self.0[1] + o.0[1]])
        }
        #[inline(always)]
        pub fn dup_lo(self) -> Self {
            P2([self.0[0], self.0[0]])
        }
        #[inline(always)]
        pub fn dup_hi(self) -> Self {
            P2([self.0[1], self.0[1]])
        }
        #[inline(always)]
        pub fn lo(self) -> f64 {
            self.0[0]
        }
        #[inline(always)]
        pub fn hi(self) -> f64 {
            self.0[1]
        }
    }
}
