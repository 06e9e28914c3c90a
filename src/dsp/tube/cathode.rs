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
//! Discretised exactly for a drive held over each sample:
//! `v[n] = e·v[n−1] + (1 − e)/G·(−y/Rac + Ig)[n − D]`, `e = exp(−G·T/Ck)`.
//!
//! # The delay D
//!
//! The drive comes from the plate current of the same sample one chunk
//! (`CHUNK` = 64 samples) earlier, kept in a ring indexed by the absolute
//! sample count: the stage's block loop can then run the cathode for a
//! whole chunk before its linear pass and feed it after its ADAA pass,
//! without a per-sample loop through the curve (see `kernel.rs`). The
//! ring makes the result independent of the block partition. The delay
//! is harmless: the cathode loop's own time constant is Ck/(G + gm),
//! ≈ 22 µF/2.4 mS ≈ 9 ms for a 12AX7 (≈ 4 ms for a 12AT7), against
//! D = 0.33 ms at 192 kHz (1.5 ms at 44.1 kHz without oversampling: still
//! a loop gain gm·D/Ck below 0.2, stable); the signal ripple at the
//! cathode above the bypass corner (≈ 16 Hz) is small by construction
//! (Ck shorts it). What the cathode carries is the slow bias shift:
//! the rectified part of the plate and grid current raises it under drive
//! (≈ +0.25 V at stage 2 of the reference circuit driven into grid
//! current) and it falls back with Ck·Rk-like time constants after.
//!
//! A held cathode (`bypass_farads` infinite, the reference stage) has
//! e = 1 and no drive: v stays exactly 0 and the stage is bit for bit the
//! one without this file.

use super::kernel::CHUNK;
use crate::dsp::fma::MulAdd;
use crate::dsp::simd::{mad, Lane};

/// The cathode's coefficients at one sample rate and operating point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct CathodeCoefs {
    /// Decay per sample e.
    pub(super) decay: f64,
    /// Drive per volt of table output: −(1 − e)/(G·Rac).
    pub(super) k_y: f64,
    /// Drive per ampere of grid current: (1 − e)/G.
    pub(super) k_ig: f64,
    /// Table coordinate per volt of cathode rise (minus the table's
    /// segments per volt).
    pub(super) k_q: f64,
    /// Plate rise per volt of cathode rise: Rac/(Rac + rp).
    pub(super) k_out: f64,
}

impl CathodeCoefs {
    /// A cathode held at its rest voltage (no bypass dynamics).
    pub(super) const HELD: CathodeCoefs = CathodeCoefs {
        decay: 1.0,
        k_y: 0.0,
        k_ig: 0.0,
        k_q: 0.0,
        k_out: 0.0,
    };

    /// The coefficients for `bypass_farads` (∞: held), cathode resistor
    /// `rk`, AC load `rac`, plate resistance `rp`, table scale `inv_h`
    /// (segments per volt) at sample rate `fs`.
    pub(super) fn new(bypass_farads: f64, rk: f64, rac: f64, rp: f64, inv_h: f64, fs: f64) -> Self {
        if !bypass_farads.is_finite() || bypass_farads <= 0.0 {
            return Self::HELD;
        }
        let g = 1.0 / rk + 1.0 / (rac + rp);
        let step = -(-g / (fs * bypass_farads)).exp_m1();
        Self {
            decay: 1.0 - step,
            k_y: -step / (g * rac),
            k_ig: step / g,
            k_q: -inv_h,
            k_out: rac / (rac + rp),
        }
    }
}

/// One cathode's state per lane: its voltage above rest and the ring of
/// drives for the next `CHUNK` samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct CathodeLanes<L> {
    /// Cathode voltage above rest (volts).
    pub(super) v: L,
    /// Drive (volts, pre-scaled) of the sample `CHUNK` earlier at each
    /// position of the absolute sample count modulo `CHUNK`.
    ring: [L; CHUNK],
}

impl<L: Copy + Default> Default for CathodeLanes<L> {
    fn default() -> Self {
        Self {
            v: L::default(),
            ring: [L::default(); CHUNK],
        }
    }
}

impl<L: Lane> CathodeLanes<L> {
    /// The cathode over the `n = offs.len()` samples at ring positions
    /// `pos..pos + n` (`pos + n <= CHUNK`): `offs[j]` gets the table
    /// coordinate at rest `off` less the cathode's rise, `vs[j]` the rise.
    #[inline(always)]
    pub(super) fn advance<M: MulAdd>(
        &mut self,
        c: &CathodeCoefs,
        pos: usize,
        off: f64,
        offs: &mut [L],
        vs: &mut [L],
    ) {
        let (decay, k_q, off) = (L::splat(c.decay), L::splat(c.k_q), L::splat(off));
        let mut v = self.v;
        for ((o, s), d) in offs.iter_mut().zip(vs.iter_mut()).zip(&self.ring[pos..]) {
            v = mad::<M, L>(v, decay, *d);
            *s = v;
            *o = mad::<M, L>(v, k_q, off);
        }
        self.v = v;
    }

    /// After the ADAA pass over the same samples: `ys` holds the table's
    /// output (plate-to-cathode volts) and `igs` the grid currents; feeds
    /// the ring for the samples one chunk later and turns `ys` into the
    /// AC plate voltage (adds the cathode's share, `vs` from `advance`).
    #[inline(always)]
    pub(super) fn close<M: MulAdd>(
        &mut self,
        c: &CathodeCoefs,
        pos: usize,
        ys: &mut [L],
        vs: &[L],
        igs: &[L],
    ) {
        let (k_y, k_ig, k_out) = (L::splat(c.k_y), L::splat(c.k_ig), L::splat(c.k_out));
        let ring = &mut self.ring[pos..];
        for (((y, v), ig), d) in ys.iter_mut().zip(vs).zip(igs).zip(ring) {
            *d = mad::<M, L>(*y, k_y, *ig * k_ig);
            *y = mad::<M, L>(*v, k_out, *y);
        }
    }

    /// Flush denormals.
    #[inline]
    pub(super) fn flush(&mut self) {
        self.v = self.v.flush();
        for d in &mut self.ring {
            *d = d.flush();
        }
    }

    /// Whether the state is finite.
    #[inline]
    pub(super) fn finite(&self) -> bool {
        self.v.finite() && self.ring.iter().all(|d| d.finite())
    }
}
