//! The bypassed cathode of a triode stage: how its bias shifts with drive
//! and recovers with the bypass capacitor's time constant.
//!
//! # Circuit and equation
//!
//! The cathode resistor Rk is bypassed by Ck (22 µF in the preamp). Let v be
//! the cathode voltage's deviation from its rest value. KCL at the
//! cathode: the plate current and any grid current flow in, Rk carries
//! v/Rk away, and Ck integrates the rest:
//!
//! ```text
//!   Ck·dv/dt = ΔIp + Ig − v/Rk
//! ```
//!
//! The curve table (`table.rs`) gives the plate-to-cathode voltage along
//! the stage's AC load line Rac (Ra ‖ the load behind the output coupling
//! capacitor) for a grid-to-cathode drive, at a fixed plate-to-cathode
//! supply. A cathode raised by v does two things: it lowers the grid
//! drive by v (the sample loop subtracts it from the table coordinate), and
//! it lowers the plate-to-cathode supply by v, which (linearised at the
//! operating point, plate resistance rp) lowers the plate current by
//! v/(Rac + rp) and raises the plate by v·Rac/(Rac + rp). With y the
//! table's AC output (plate-to-cathode volts) at the lowered drive,
//! `ΔIp = −y/Rac − v/(Rac + rp)`, so
//!
//! ```text
//!   Ck·dv/dt = −y/Rac + Ig − G·v,    G = 1/Rk + 1/(Rac + rp)
//!   plate (AC) = y + v·Rac/(Rac + rp)
//! ```
//!
//! Split the table's output into its linear part at the operating point
//! and a remainder, `y = S·(u − v) + r` (S = dVpk/du < 0, u the grid
//! drive): the linear part goes into the equation, which becomes
//!
//! ```text
//!   Ck·dv/dt = −S·u/Rac − G'·v + (Ig − r/Rac),   G' = G − S/Rac
//! ```
//!
//! (−S/Rac ≈ μ/(Rac + rp) is the tube's own feedback: the cathode loop's
//! time constant is Ck/G', ≈ 9 ms for a 12AX7). Discretised exactly for a
//! drive held over each sample, `v[n] = e·v[n−1] + (1 − e)/G'·(…)`,
//! `e = exp(−G'·T/Ck)`.
//!
//! # Where each part runs
//!
//! The linear part (−S·u/Rac) runs in the stage's linear pass with the
//! other recursions (`kernel.rs`, `linear_step`): u is known there, so the
//! cathode's small-signal response (the partly bypassed stage below
//! ≈ 10 Hz, the bypass corner) is exact. The remainder needs the curve's
//! output, which the linear pass does not have: it comes from the same
//! sample one chunk (`CHUNK` = 64 samples) earlier, through a ring indexed
//! by the absolute sample count (so the block partition does not matter).
//! The remainder is what the curvature adds: harmonics, and the rectified
//! part of the plate and grid current that lifts the cathode under drive
//! (≈ +0.25 V at stage 2 of the reference circuit driven into grid
//! current) and lets it fall back after. Its loop gain through v is zero
//! at the operating point (the linear part is taken out), so the delay of
//! 0.33 ms at 192 kHz (1.5 ms at 44.1 kHz without oversampling) against the
//! loop's ≈ 9 ms changes nothing measurable. (A first version fed the
//! whole current back one chunk late: its delay changed the mid-band gain
//! by ≈ ω_c·D, 0.1 dB per stage at 192 kHz and twice that at 96 kHz.)
//!
//! A held cathode (`bypass_farads` infinite, the reference stage) has
//! e = 1 and no drive: v stays exactly 0 and the stage is bit for bit the
//! one without this file.

use super::kernel::{ChunkTrace, CHUNK};
use crate::dsp::fma::MulAdd;
use crate::dsp::simd::{mad, Lane};

/// The cathode's coefficients at one sample rate and operating point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct CathodeCoefs {
    /// Decay per sample e.
    pub(super) decay: f64,
    /// Rise per table unit of grid drive: (1 − e)/G'·(−S/Rac)/(segments
    /// per volt).
    pub(super) k_u: f64,
    /// Table coordinate per volt of rise: minus the segments per volt.
    pub(super) k_q: f64,
    /// Delayed drive per volt of table output: −(1 − e)/(G'·Rac).
    pub(super) k_r: f64,
    /// Delayed drive per table unit above rest (the linear part taken out
    /// of the output): −k_r·S/(segments per volt).
    pub(super) k_rq: f64,
    /// Delayed drive per ampere of grid current: (1 − e)/G'.
    pub(super) k_ig: f64,
    /// Plate rise per volt of cathode rise: Rac/(Rac + rp).
    pub(super) k_out: f64,
}

impl CathodeCoefs {
    /// A cathode held at its rest voltage (no bypass dynamics).
    pub(super) const HELD: CathodeCoefs = CathodeCoefs {
        decay: 1.0,
        k_u: 0.0,
        k_q: 0.0,
        k_r: 0.0,
        k_rq: 0.0,
        k_ig: 0.0,
        k_out: 0.0,
    };

    /// The coefficients for `bypass_farads` (∞: held), cathode resistor
    /// `rk`, AC load `rac`, plate resistance `rp`, the curve's slope `s`
    /// (dVpk/du) at rest, table scale `inv_h` (segments per volt), at
    /// sample rate `fs`.
    pub(super) fn new(
        bypass_farads: f64,
        (rk, rac, rp): (f64, f64, f64),
        s: f64,
        inv_h: f64,
        fs: f64,
    ) -> Self {
        if !bypass_farads.is_finite() || bypass_farads <= 0.0 {
            return Self::HELD;
        }
        let g = 1.0 / rk + 1.0 / (rac + rp) - s / rac;
        let step = -(-g / (fs * bypass_farads)).exp_m1();
        let k_r = -step / (g * rac);
        Self {
            decay: 1.0 - step,
            k_u: step / g * (-s / rac) / inv_h,
            k_q: -inv_h,
            k_r,
            k_rq: -k_r * s / inv_h,
            k_ig: step / g,
            k_out: rac / (rac + rp),
        }
    }
}

/// One cathode's ring of delayed drives, per lane (its voltage is in the
/// stage's state, `StageLanes::vk`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct CathodeLanes<L> {
    /// Drive (volts, pre-scaled) of the sample `CHUNK` earlier at each
    /// position of the absolute sample count modulo `CHUNK`.
    ring: [L; CHUNK],
}

impl<L: Copy + Default> Default for CathodeLanes<L> {
    fn default() -> Self {
        Self {
            ring: [L::default(); CHUNK],
        }
    }
}

impl<L: Lane> CathodeLanes<L> {
    /// The delayed drives of the `n` samples at ring positions
    /// `pos..pos + n` (`pos + n <= CHUNK`).
    #[inline(always)]
    pub(super) fn drives(&self, pos: usize, n: usize) -> &[L] {
        &self.ring[pos..pos + n]
    }

    /// After a stage's passes over the samples at ring positions
    /// `pos..pos + ys.len()`: `ys` holds the curve's output (plate-to-cathode
    /// volts), `tr` the coordinates, rises and grid currents, `q_before` the
    /// coordinate of the sample before them; feeds the ring for the samples
    /// one chunk later with the remainder `Ig − r/Rac` and turns `ys` into
    /// the AC plate voltage (adds the cathode's share). `off` is the table
    /// coordinate at rest.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn close<M: MulAdd>(
        &mut self,
        c: &CathodeCoefs,
        pos: usize,
        off: f64,
        q_before: L,
        ys: &mut [L],
        tr: &ChunkTrace<L>,
    ) {
        let mut q_prev = q_before;
        let trace = tr.q.iter().zip(&tr.vk).zip(&tr.ig);
        for (j, (y, ((q, v), ig))) in ys.iter_mut().zip(trace).enumerate() {
            *y = self.close_one::<M>(c, pos + j, off, *y, (q_prev, *q, *v, *ig));
            q_prev = *q;
        }
    }

    /// `close` for the one sample at ring position `pos`, from its output
    /// `y` and the coordinates before and at it, its rise and grid current
    /// `(q_prev, q, v, ig)`: returns the AC plate voltage. The remainder is
    /// the output less the linear part of what the ADAA averaged, the
    /// curve over [q_prev, q], so that it is exactly zero for small signals.
    #[inline(always)]
    pub(super) fn close_one<M: MulAdd>(
        &mut self,
        c: &CathodeCoefs,
        pos: usize,
        off: f64,
        y: L,
        (q_prev, q, v, ig): (L, L, L, L),
    ) -> L {
        let s = L::splat;
        let u = (q + q_prev) * s(0.5) - s(off);
        let d = mad::<M, L>(y, s(c.k_r), mad::<M, L>(u, s(c.k_rq), ig * s(c.k_ig)));
        self.ring[pos & (CHUNK - 1)] = d;
        mad::<M, L>(v, s(c.k_out), y)
    }

    /// Flush denormals.
    #[inline]
    pub(super) fn flush(&mut self) {
        for d in &mut self.ring {
            *d = d.flush();
        }
    }

    /// Whether the state is finite.
    #[inline]
    pub(super) fn finite(&self) -> bool {
        self.ring.iter().all(|d| d.finite())
    }
}
