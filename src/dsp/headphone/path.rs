//! One running headphone load: the delay-free loop v = x - Zo Y_b v
//! between the amplifier and the load's admittance, then the correction
//! FIR and its fixed double pole (`headphone/loads.rs` designs both).
//!
//! Run time: the loop runs in closed-loop state-space form on the
//! cascade's own states (s' = (Ao - k bo co) s + bo x / (1 + Zo d), rebuilt
//! when Zo moves), with the states packed two per SIMD register (`F2`,
//! `crate::dsp::simd`) and each row summed as a tree, so the per-sample
//! dependency chain is one multiply and a few adds. `Loop::step` is that
//! per-sample update; `Path::tick` adds the correction for one sample,
//! and the steady block loop (`headphone/amp/steady.rs`) runs the same
//! step and the same sums over a block.

use super::fit::TAPS;
use super::loads::{LoadDesign, MAX_SECTIONS};
use crate::dsp::divider::double_pole;
use crate::dsp::simd::{Arith, Lane, F2};

/// Largest number of loop states (two per biquad).
pub(super) const MAX_STATES: usize = 2 * MAX_SECTIONS;

/// One running load: the delay-free loop v = x - Zo Y_b v, then the
/// correction N(z) / (1 + BETA z^-1)^2.
///
/// The loop runs in closed-loop state-space form. Its states are the
/// transposed direct-form II states of Y_b's biquads (the ones that can
/// be non-zero: first-order sections' second states are dropped). With
/// the open-loop cascade written as s' = Ao s + bo v, o = co . s (the
/// cascade's zero-input output) and v = x / (1 + Zo d) - k o,
/// k = Zo / (1 + Zo d), the loop is s' = (Ao - k bo co) s + bo x / (1 + Zo d):
/// one matrix-vector product per sample, summed as a tree, instead of a
/// serial chain through every section twice. The matrix is rebuilt when
/// Zo moves (per sample during a ramp only).
#[derive(Clone, Copy, Debug)]
pub(super) struct Path {
    /// Index of the load in `LoadDesigns::loads`.
    pub(super) load: usize,
    /// Number of live loop states.
    pub(super) m: usize,
    /// Open-loop state matrix Ao (row r gives s'_r), live states only.
    a_open: [[f64; MAX_STATES]; MAX_STATES],
    /// Open-loop input vector bo (how v enters each state).
    b_open: [f64; MAX_STATES],
    /// Open-loop output row co: the cascade's zero-input output o = co . s.
    c_open: [f64; MAX_STATES],
    /// Direct gain of the admittance (the product of the b0s).
    direct: f64,
    /// The closed loop at the current Zo, packed for `Loop::step`.
    pub(super) lp: Loop,
    /// Loop states, two per lane pair (live ones first, the rest stay
    /// zero).
    pub(super) state: [F2; PAIRS],
    /// Correction taps at the current Zo.
    pub(super) taps: [f64; TAPS],
    /// Loop output history, newest first (`hist[k]` is v delayed k).
    pub(super) hist: [f64; TAPS],
    /// States of the fixed double pole (previous two outputs).
    pub(super) post: [f64; 2],
}

impl Path {
    pub(super) fn new(load: usize, d: &LoadDesign) -> Self {
        // Open-loop cascade over the full 2n states: every signal is
        // written as (coefficients on the states, coefficient on v).
        let n = d.n;
        let full = 2 * n;
        let mut rows = [[0.0; MAX_STATES]; MAX_STATES];
        let mut ins = [0.0; MAX_STATES];
        let (mut u_s, mut u_v) = ([0.0; MAX_STATES], 1.0);
        for (i, s) in d.sections[..n].iter().enumerate() {
            let (z0, z1) = (2 * i, 2 * i + 1);
            let mut y_s = [0.0; MAX_STATES];
            for j in 0..full {
                y_s[j] = s[0] * u_s[j];
            }
            y_s[z0] += 1.0;
            let y_v = s[0] * u_v;
            for j in 0..full {
                rows[z0][j] = s[1] * u_s[j] - s[3] * y_s[j];
                rows[z1][j] = s[2] * u_s[j] - s[4] * y_s[j];
            }
            rows[z0][z1] += 1.0;
            ins[z0] = s[1] * u_v - s[3] * y_v;
            ins[z1] = s[2] * u_v - s[4] * y_v;
            (u_s, u_v) = (y_s, y_v);
        }
        // Drop states that stay zero from reset (all-zero row and input,
        // e.g. the second state of a first-order section).
        let mut live = [false; MAX_STATES];
        for r in 0..full {
            live[r] = ins[r] != 0.0 || rows[r][..full].iter().any(|a| *a != 0.0);
        }
        let mut idx_buf = [0usize; MAX_STATES];
        let mut m = 0;
        for r in (0..full).filter(|r| live[*r]) {
            idx_buf[m] = r;
            m += 1;
        }
        let idx = &idx_buf[..m];
        let mut a_open = [[0.0; MAX_STATES]; MAX_STATES];
        let mut b_open = [0.0; MAX_STATES];
        let mut c_open = [0.0; MAX_STATES];
        for (ri, r) in idx.iter().enumerate() {
            for (ci, c) in idx.iter().enumerate() {
                a_open[ri][ci] = rows[*r][*c];
            }
            b_open[ri] = ins[*r];
            c_open[ri] = u_s[*r];
        }
        let mut p = Path {
            load,
            m,
            a_open,
            b_open,
            c_open,
            direct: d.direct,
            lp: Loop::new(),
            state: [F2::splat(0.0); PAIRS],
            taps: d.taps[0],
            hist: [0.0; TAPS],
            post: [0.0; 2],
        };
        p.set_loop(0.0);
        p
    }

    /// Closed-loop matrix and input vector at `zo`.
    #[inline]
    fn set_loop(&mut self, zo: f64) {
        let inv_loop = 1.0 / (1.0 + zo * self.direct);
        let k_loop = zo * inv_loop;
        let np = self.m.div_ceil(2);
        let Path {
            m,
            a_open,
            b_open,
            c_open,
            direct,
            lp,
            ..
        } = self;
        lp.inv_loop = inv_loop;
        lp.k_loop = k_loop;
        lp.direct = *direct;
        // Rows past the live states are zero in a_open and b_open, so the
        // padding lane of an odd count comes out zero.
        for q in 0..np {
            let (r0, r1) = (2 * q, 2 * q + 1);
            let (kb0, kb1) = (k_loop * b_open[r0], k_loop * b_open[r1]);
            for (j, aj) in lp.a[q].iter_mut().enumerate().take(*m) {
                *aj = F2([
                    a_open[r0][j] - kb0 * c_open[j],
                    a_open[r1][j] - kb1 * c_open[j],
                ]);
            }
            lp.g[q] = F2([b_open[r0], b_open[r1]]) * F2::splat(inv_loop);
            lp.c[q] = F2([c_open[r0], c_open[r1]]);
        }
    }

    #[inline]
    pub(super) fn set_zo(&mut self, d: &LoadDesign, zo: f64, u: f64) {
        self.set_loop(zo);
        d.taps_at(u, &mut self.taps);
    }

    /// One sample: (corrected output, loop voltage, loop current).
    #[inline]
    pub(super) fn tick(&mut self, x: f64) -> (f64, f64, f64) {
        match self.m {
            0 => self.tick_m::<0>(x),
            1 => self.tick_m::<1>(x),
            2 => self.tick_m::<2>(x),
            3 => self.tick_m::<3>(x),
            4 => self.tick_m::<4>(x),
            5 => self.tick_m::<5>(x),
            6 => self.tick_m::<6>(x),
            7 => self.tick_m::<7>(x),
            _ => self.tick_m::<MAX_STATES>(x),
        }
    }

    /// `tick` with the state count known at compile time (unrolled).
    #[inline(always)]
    fn tick_m<const M: usize>(&mut self, x: f64) -> (f64, f64, f64) {
        let (v, i) = self.lp.step::<M>(&mut self.state, x);
        // Correction FIR (same lane order as `steady_m`) and double pole.
        self.hist.copy_within(0..TAPS - 1, 1);
        self.hist[0] = v;
        let mut acc = [0.0; 2];
        for k in (0..TAPS).step_by(2) {
            acc[0] += self.taps[k] * self.hist[k];
            acc[1] += self.taps[k + 1] * self.hist[k + 1];
        }
        let out = self.pole(acc[0] + acc[1]);
        (out, v, i)
    }

    /// The fixed double pole 1 / (1 + BETA z^-1)^2.
    #[inline(always)]
    fn pole(&mut self, acc: f64) -> f64 {
        double_pole(acc, &mut self.post)
    }

    /// Denormal flush, once per block: feedback states far below
    /// audibility are set to exactly zero (the slowest pole needs
    /// thousands of samples to decay from 1e-30 into the denormal range,
    /// so checking per block is enough).
    pub(super) fn flush(&mut self) {
        let tiny = |v: &mut f64| {
            if v.abs() < 1e-30 {
                *v = 0.0;
            }
        };
        for pair in self.state.iter_mut() {
            *pair = pair.flush();
        }
        self.post.iter_mut().for_each(tiny);
    }

    pub(super) fn reset(&mut self) {
        self.state = [F2::splat(0.0); PAIRS];
        self.hist = [0.0; TAPS];
        self.post = [0.0; 2];
    }
}

/// Number of lane pairs holding the loop states.
const PAIRS: usize = MAX_STATES / 2;

/// The closed loop of a `Path`, packed for stepping: states two per
/// `F2` (rows 2p and 2p + 1 in pair p; an odd count pads with a zero
/// lane). `Path::tick_m` and `HeadphoneAmp::steady_m` (which copies it
/// to locals, so it stays in registers) both step it: they agree to the
/// bit.
#[derive(Clone, Copy, Debug)]
pub(super) struct Loop {
    /// Closed-loop matrix by row pair and column:
    /// `a[p][j]` = (a[2p][j], a[2p + 1][j]).
    a: [[F2; MAX_STATES]; PAIRS],
    /// Closed-loop input vector by row pair.
    g: [F2; PAIRS],
    /// Zero-input output row of the cascade by state pair.
    c: [F2; PAIRS],
    /// 1 / (1 + Zo d).
    inv_loop: f64,
    /// Zo / (1 + Zo d).
    k_loop: f64,
    /// Direct gain d of the admittance.
    direct: f64,
}

/// `t[0] + t[1] + … + t[n−1]` summed as a tree over pairs (neighbours, then
/// pairs of pairs, …): the order the loop's sums are defined in. Leaves the
/// partial sums in `t`.
#[inline(always)]
fn tree_sum(t: &mut [F2], n: usize) -> F2 {
    let mut step = 1;
    while step < n {
        let mut j = 0;
        while j + step < n {
            t[j] = t[j] + t[j + step];
            j += 2 * step;
        }
        step *= 2;
    }
    t[0]
}

impl Loop {
    fn new() -> Self {
        let zero = F2::splat(0.0);
        Loop {
            a: [[zero; MAX_STATES]; PAIRS],
            g: [zero; PAIRS],
            c: [zero; PAIRS],
            inv_loop: 1.0,
            k_loop: 0.0,
            direct: 0.0,
        }
    }

    /// One sample of the loop: updates `s`, returns (v, i = Y_b v).
    #[inline(always)]
    pub(super) fn step<const M: usize>(&self, s: &mut [F2; PAIRS], x: f64) -> (f64, f64) {
        let np = M.div_ceil(2);
        // o = c . s: lane products summed as a tree over pairs, then lanes.
        let mut po = [F2::splat(0.0); PAIRS];
        for q in 0..np {
            po[q] = self.c[q] * s[q];
        }
        let o = tree_sum(&mut po, np);
        let o = o.0[0] + o.0[1];
        // Every state broadcast to both lanes.
        let mut b = [F2::splat(0.0); MAX_STATES];
        for j in 0..M {
            b[j] = if j % 2 == 0 {
                F2::splat(s[j / 2].0[0])
            } else {
                F2::splat(s[j / 2].0[1])
            };
        }
        let xs = F2::splat(x);
        // s'_r = sum_j a[r][j] s_j + g_r x for a pair of rows at a time,
        // summed as a tree over j (the input term joins the last leaf).
        let mut next = [F2::splat(0.0); PAIRS];
        for (q, nq) in next.iter_mut().enumerate().take(np) {
            let mut t = [F2::splat(0.0); MAX_STATES];
            for j in 0..M {
                t[j] = self.a[q][j] * b[j];
            }
            if let Some(last) = t[..M].last_mut() {
                *last = *last + self.g[q] * xs;
            }
            *nq = tree_sum(&mut t, M);
        }
        s[..np].copy_from_slice(&next[..np]);
        let v = x * self.inv_loop - self.k_loop * o;
        (v, o + self.direct * v)
    }
}
