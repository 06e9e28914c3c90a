//! The slow states of a triode stage: its bypassed cathode (how its bias
//! shifts with drive and recovers with the bypass capacitor's time
//! constant) and its output coupling capacitor (whose charge under drive
//! moves the plate's load line).
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
//! # The output coupling capacitor
//!
//! A stage whose plate drives its load RL through a coupling capacitor C
//! (the preamp's stage 2: 0.47 µF into 220 kΩ, `output_coupling_farads`)
//! has its curve on the AC load line Ra ‖ RL through the rest point, where
//! C holds its rest charge. Let Δ be C's charge above rest. KCL at the
//! plate, `(B+ − Vp)/Ra = Ip + (Vp − Vc)/RL` with Vc = rest + Δ, gives
//!
//! ```text
//!   p = −Rac·ΔIp + δ,   δ = Δ·Ra/(Ra + RL)
//! ```
//!
//! (p the AC plate voltage): the load line's intercept moves by δ. Under
//! asymmetric clipping the plate's average moves and C follows it: with
//! grid 2 blocked into cut-off (12AU7, Gain 60, Level 0) the average rises
//! by 86 V, C charges by 59 V in 0.13 s and δ is 18 V (ngspice). Where the
//! valve is cut off the plate moves by δ, where it conducts by only
//! δ·rp/(rp + Rac): the swing grows, by about 1 dB there.
//!
//! To first order in δ the plate is `T(u) + δ·h(u)`, h = ∂Vpk/∂Vs along
//! the curve (at grid current too, where a shift of the drive would move
//! nothing). `stage.rs` builds a second table at the supply raised by
//! δ₀ = `SUPPLY_STEP_VOLTS` on the same grid of u, and the preamp adds
//! `(δ/δ₀)·(T̄_δ₀ − T̄)` to the stage's output: both averaged by the same
//! ADAA over the same steps (no new aliasing), each less its own value at
//! rest, so that only `h − h_q` acts. The linear part `δ·h_q` is left
//! out on purpose: with it out, the small-signal response is the one the
//! output high-pass already gives exactly (the pole of C with RL + ro),
//! and δ has no linear loop.
//!
//! Δ is that pole's low-pass of the plate output,
//! `C·dΔ/dt = (p − Δ)/(RL + ro)`, stepped exactly per sample here from
//! the plate output of one chunk earlier (δ moves over 0.1 s, a chunk is
//! 0.33 ms at 192 kHz), and kept as δ in a ring beside the cathode's
//! drives. Where a chunk ends, a δ below `SHIFT_FLOOR_VOLTS` is set to
//! exactly 0, so once the sound has died away the second table is not
//! evaluated. Left out: the plate current the shift adds,
//! δ·(1 − h_q)/Rac, is not given to the cathode. Against ngspice it
//! brought five cases of `tests/spice.rs` within tolerance and the
//! 12AU7's gain at Gain 50 / Level 0 from −0.59 to −0.09 dB of the
//! circuit's (docs/DESIGN.md).
//!
//! Cost: the second curve's ADAA, about a fifth of the live chain's time
//! (min 6.45 against 5.30 ms for a second of stereo noise, alternated, the
//! same build). The chain applies the shift in High only
//! (`PreampLanes::set_output_charge`); in Live the charge is neither
//! applied nor followed (`CathodeCoefs::without_shift`).
//!
//! A held cathode (`bypass_farads` infinite, the reference stage) has
//! e = 1 and no drive: v stays exactly 0 and the stage is bit for bit the
//! one without this file.

use super::kernel::{ChunkTrace, CHUNK};
use crate::dsp::fma::MulAdd;
use crate::dsp::simd::{mad, Lane};

/// A load line's shift below this is taken as exactly 0 where a chunk
/// ends (once the sound has died away, the stage's second curve needs no
/// evaluation).
const SHIFT_FLOOR_VOLTS: f64 = 1e-9;

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
    /// The output coupling capacitor's charge (see "The output coupling
    /// capacitor" above): decay per sample of the load line's shift δ.
    pub(super) shift_decay: f64,
    /// The shift δ's step per volt of plate output: (1 − decay)·Ra/(Ra + RL).
    pub(super) shift_drive: f64,
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
        shift_decay: 0.0,
        shift_drive: 0.0,
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
            shift_decay: 0.0,
            shift_drive: 0.0,
        }
    }

    /// Whether the load line's shift moves at all (a stage with no output
    /// coupling capacitor has none: its ring of shifts stays at rest).
    pub(super) fn follows_shift(&self) -> bool {
        self.shift_drive != 0.0
    }

    /// The same coefficients with the load line's shift not followed, for
    /// a stage whose shift is not applied (the Live quality): following it
    /// would cost time for nothing. (A quality change resets the stage, so
    /// nothing of the shift is missed once it is applied again.)
    pub(super) fn without_shift(self) -> Self {
        Self {
            shift_decay: 0.0,
            shift_drive: 0.0,
            ..self
        }
    }

    /// The same with the plate's output coupling capacitor `farads` into
    /// `load_ohms` (∞ farads: none), plate resistor `ra` and output
    /// resistance `ro`: the capacitor's charge under drive moves the load
    /// line (see "The output coupling capacitor" above).
    pub(super) fn with_output_coupling(
        mut self,
        farads: f64,
        (ra, load_ohms, ro): (f64, f64, f64),
        fs: f64,
    ) -> Self {
        if !(farads.is_finite() && farads > 0.0 && load_ohms.is_finite()) {
            return self;
        }
        let step = -(-1.0 / (fs * farads * (load_ohms + ro))).exp_m1();
        self.shift_decay = 1.0 - step;
        self.shift_drive = step * ra / (ra + load_ohms);
        self
    }
}

/// One cathode's ring of delayed drives, per lane (its voltage is in the
/// stage's state, `StageLanes::vk`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct CathodeLanes<L> {
    /// Drive (volts, pre-scaled) of the sample `CHUNK` earlier at each
    /// position of the absolute sample count modulo `CHUNK`.
    ring: [L; CHUNK],
    /// The load line's shift δ (volts, `The output coupling capacitor`) of
    /// the sample at each position, written a chunk ahead.
    ring_shift: [L; CHUNK],
    /// δ of the last sample written ahead (a chunk after the last closed).
    shift_ahead: L,
}

impl<L: Copy + Default> Default for CathodeLanes<L> {
    fn default() -> Self {
        Self {
            ring: [L::default(); CHUNK],
            ring_shift: [L::default(); CHUNK],
            shift_ahead: L::default(),
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
    /// one chunk later with the remainder `Ig − r/Rac` and the load line's
    /// shift, and turns `ys` into the AC plate voltage (adds the cathode's
    /// share). `off` is the table coordinate at rest.
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
        // Two copies of the loop: most stages have no shift to follow.
        if c.follows_shift() {
            self.close_loop::<M, true>(c, pos, off, q_before, ys, tr);
        } else {
            self.close_loop::<M, false>(c, pos, off, q_before, ys, tr);
        }
    }

    /// `close`, following the load line's shift or not (`SHIFT`).
    #[inline(always)]
    fn close_loop<M: MulAdd, const SHIFT: bool>(
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
            *y = self.close_one::<M, SHIFT>(c, pos + j, off, *y, (q_prev, *q, *v, *ig));
            q_prev = *q;
        }
    }

    /// `close` for the one sample at ring position `pos`, from its output
    /// `y` and the coordinates before and at it, its rise and grid current
    /// `(q_prev, q, v, ig)`: returns the AC plate voltage. The remainder is
    /// the output less the linear part of what the ADAA averaged, the
    /// curve over [q_prev, q], so that it is exactly zero for small signals.
    /// Without `SHIFT` the load line's shift is not followed (its ring is
    /// left as it is: see [`CathodeCoefs::without_shift`]).
    #[inline(always)]
    pub(super) fn close_one<M: MulAdd, const SHIFT: bool>(
        &mut self,
        c: &CathodeCoefs,
        pos: usize,
        off: f64,
        y: L,
        (q_prev, q, v, ig): (L, L, L, L),
    ) -> L {
        let s = L::splat;
        let pos = pos & (CHUNK - 1);
        let u = (q + q_prev) * s(0.5) - s(off);
        let d = mad::<M, L>(y, s(c.k_r), mad::<M, L>(u, s(c.k_rq), ig * s(c.k_ig)));
        // Flushed as it is written: every slot is rewritten each chunk
        // before it is read, so this is the chunk-end flush of the ring,
        // without a pass over it (whose conditional stores stalled the
        // loads of the next chunk, seen in a profile).
        self.ring[pos] = d.flush();
        let p = mad::<M, L>(v, s(c.k_out), y);
        // The output capacitor's charge, as the load line's shift δ, for
        // the sample one chunk later.
        if SHIFT {
            let shift_next = mad::<M, L>(self.shift_ahead, s(c.shift_decay), p * s(c.shift_drive));
            self.ring_shift[pos] = shift_next;
            self.shift_ahead = shift_next;
        }
        p
    }

    /// The load line's shifts δ (volts) of the `n` samples at ring
    /// positions `pos..pos + n`.
    #[inline(always)]
    pub(super) fn shifts(&self, pos: usize, n: usize) -> &[L] {
        &self.ring_shift[pos..pos + n]
    }

    /// The load line's shift back at rest (for a stage whose shift starts
    /// to be followed: see [`CathodeCoefs::without_shift`]).
    pub(super) fn rest_shift(&mut self) {
        self.ring_shift = [L::default(); CHUNK];
        self.shift_ahead = L::default();
    }

    /// Flush denormals. (The ring of drives is flushed as it is written,
    /// in `close_one`; the ring of shifts is rewritten from `shift_ahead`
    /// every chunk.)
    #[inline]
    pub(super) fn flush(&mut self) {
        let a = self.shift_ahead;
        self.shift_ahead = L::pick_abs_gt(a, SHIFT_FLOOR_VOLTS, a, L::default());
    }

    /// Whether the state is finite. (Every entry is looked at, with no
    /// early exit: the check runs at the end of each block over 2·`CHUNK`
    /// entries, and a loop that can stop at each one costs a branch per
    /// entry.)
    #[inline]
    pub(super) fn finite(&self) -> bool {
        let entries = self.ring.iter().chain(&self.ring_shift);
        entries.fold(self.shift_ahead.finite(), |ok, d| ok & d.finite())
    }
}
