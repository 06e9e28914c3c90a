//! The lane types in x86 registers: [`X2`] (one `__m128d`) and [`Avx4`]
//! (one `__m256d`), one instruction per lane operation; the AVX2 + FMA
//! build's `MulAdd::F2` / `MulAdd::F4` (see the parent module's header).

use std::arch::x86_64::{
    __m128d, __m256d, _mm256_add_pd, _mm256_andnot_pd, _mm256_div_pd, _mm256_fmadd_pd,
    _mm256_max_pd, _mm256_min_pd, _mm256_mul_pd, _mm256_set1_pd, _mm256_sub_pd, _mm256_xor_pd,
    _mm_add_pd, _mm_andnot_pd, _mm_div_pd, _mm_fmadd_pd, _mm_max_pd, _mm_min_pd, _mm_mul_pd,
    _mm_set1_pd, _mm_sub_pd, _mm_xor_pd,
};

use super::{Arith, Duo, Quad};

/// Two `f64` lanes in one 128-bit SSE2 register: the two-lane register
/// type of both builds (`M::F2`); `FMA` says whether `fused_mul_add`
/// is the packed `vfmadd` (the AVX2 + FMA build) or lane by lane
/// `f64::mul_add` (the portable build, whose loops never fuse). Each
/// operation is the one instruction that computes, lane by lane,
/// exactly what [`super::F2`]'s does.
///
/// Safety: SSE2 is part of every x86_64 CPU. With `FMA`, `fused_mul_add`
/// executes an FMA instruction: `X2<true>` is reached only as the `F2`
/// of the `Fused` build, whose loops run only through `Isa::run` once
/// the CPU reported AVX2 and FMA (`run_avx2_fma`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct X2<const FMA: bool>(__m128d);

/// Four `f64` lanes in one 256-bit register: the four-lane type of the
/// AVX2 + FMA build (`<Fused as MulAdd>::F4`). Each operation is the
/// one AVX instruction that computes, lane by lane, exactly what
/// [`super::F4`]'s does (`vaddpd`, …, `vmaxpd` for `hi`, `vfmadd` for
/// `fused_mul_add`).
///
/// Safety: the operations execute AVX and FMA instructions, so a value
/// must only be operated on where the CPU has them. The type is private
/// to the crate and reached only as the `F4` of the `Fused` build, whose
/// loops run only through `Isa::run` once the CPU reported AVX2 and FMA
/// (`run_avx2_fma`); there they are compiled into that function, each
/// operation one instruction.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx4(__m256d);

/// The operators, `Arith` and the array conversions of a register lane
/// type: `$ty` wraps `$reg` (`$n` lanes); the operations are `$add`,
/// `$sub`, `$mul`, `$div`, `$max`, `$xor`, `$andnot` and `$set1`.
macro_rules! register_lanes {
    (
        [$($gen:tt)*] $ty:ty, $reg:ty, $n:literal, $add:ident, $sub:ident, $mul:ident,
        $div:ident, $max:ident, $min:ident, $xor:ident, $andnot:ident, $set1:ident,
        fused: |$a:ident, $b:ident, $c:ident| $fused:expr
    ) => {
        impl<$($gen)*> Default for $ty {
            #[inline(always)]
            fn default() -> Self {
                Self::from_array([0.0; $n])
            }
        }

        impl<$($gen)*> std::ops::Add for $ty {
            type Output = Self;
            #[inline(always)]
            fn add(self, o: Self) -> Self {
                // SAFETY: the CPU has the instruction (see the type).
                Self(unsafe { $add(self.0, o.0) })
            }
        }

        impl<$($gen)*> std::ops::Sub for $ty {
            type Output = Self;
            #[inline(always)]
            fn sub(self, o: Self) -> Self {
                // SAFETY: the CPU has the instruction (see the type).
                Self(unsafe { $sub(self.0, o.0) })
            }
        }

        impl<$($gen)*> std::ops::Mul for $ty {
            type Output = Self;
            #[inline(always)]
            fn mul(self, o: Self) -> Self {
                // SAFETY: the CPU has the instruction (see the type).
                Self(unsafe { $mul(self.0, o.0) })
            }
        }

        impl<$($gen)*> std::ops::Div for $ty {
            type Output = Self;
            #[inline(always)]
            fn div(self, o: Self) -> Self {
                // SAFETY: the CPU has the instruction (see the type).
                Self(unsafe { $div(self.0, o.0) })
            }
        }

        impl<$($gen)*> std::ops::Neg for $ty {
            type Output = Self;
            #[inline(always)]
            fn neg(self) -> Self {
                // The sign bit flipped, as `-v` does (NaNs included).
                // SAFETY: the CPU has the instruction (see the type).
                Self(unsafe { $xor(self.0, $set1(-0.0)) })
            }
        }

        impl<$($gen)*> Arith for $ty {
            #[inline(always)]
            fn splat(v: f64) -> Self {
                Self::from_array([v; $n])
            }
            #[inline(always)]
            fn fused_mul_add(self, b: Self, c: Self) -> Self {
                let ($a, $b, $c) = (self, b, c);
                $fused
            }
            #[inline(always)]
            fn hi(self, o: Self) -> Self {
                // `maxpd a, b` is `if a > b { a } else { b }` lane by
                // lane, exactly `f64::hi`.
                // SAFETY: the CPU has the instruction (see the type).
                Self(unsafe { $max(self.0, o.0) })
            }
            #[inline(always)]
            fn lo(self, o: Self) -> Self {
                // `minpd a, b` is `if a < b { a } else { b }`, exactly
                // `f64::lo`.
                // SAFETY: the CPU has the instruction (see the type).
                Self(unsafe { $min(self.0, o.0) })
            }
            #[inline(always)]
            fn abs(self) -> Self {
                // SAFETY: the CPU has the instruction (see the type).
                Self(unsafe { $andnot($set1(-0.0), self.0) })
            }
        }
    };
}

register_lanes!(
    [const FMA: bool] X2<FMA>, __m128d, 2, _mm_add_pd, _mm_sub_pd, _mm_mul_pd, _mm_div_pd,
    _mm_max_pd, _mm_min_pd, _mm_xor_pd, _mm_andnot_pd, _mm_set1_pd,
    fused: |a, b, c| if FMA {
        // SAFETY: `X2<true>` only runs where the CPU has FMA (see the type).
        X2(unsafe { _mm_fmadd_pd(a.0, b.0, c.0) })
    } else {
        let (a, b, c) = (a.to_array(), b.to_array(), c.to_array());
        X2::from_array([a[0].mul_add(b[0], c[0]), a[1].mul_add(b[1], c[1])])
    }
);

register_lanes!(
    [] Avx4, __m256d, 4, _mm256_add_pd, _mm256_sub_pd, _mm256_mul_pd, _mm256_div_pd,
    _mm256_max_pd, _mm256_min_pd, _mm256_xor_pd, _mm256_andnot_pd, _mm256_set1_pd,
    // SAFETY: the CPU has AVX and FMA (see the type).
    fused: |a, b, c| Avx4(unsafe { _mm256_fmadd_pd(a.0, b.0, c.0) })
);

impl<const FMA: bool> Duo for X2<FMA> {
    #[inline(always)]
    fn from_array(a: [f64; 2]) -> Self {
        // SAFETY: both are two f64s; every bit pattern is valid.
        X2(unsafe { std::mem::transmute::<[f64; 2], __m128d>(a) })
    }
    #[inline(always)]
    fn to_array(self) -> [f64; 2] {
        // SAFETY: both are two f64s; every bit pattern is valid.
        unsafe { std::mem::transmute::<__m128d, [f64; 2]>(self.0) }
    }
}

impl Quad for Avx4 {
    #[inline(always)]
    fn from_array(a: [f64; 4]) -> Self {
        // SAFETY: both are four f64s; every bit pattern is valid.
        Avx4(unsafe { std::mem::transmute::<[f64; 4], __m256d>(a) })
    }
    #[inline(always)]
    fn to_array(self) -> [f64; 4] {
        // SAFETY: both are four f64s; every bit pattern is valid.
        unsafe { std::mem::transmute::<__m256d, [f64; 4]>(self.0) }
    }
}
