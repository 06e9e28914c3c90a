//! Tube mic preamp: gain switch, high-pass, two common-cathode triode stages
//! with an interstage Level control, output coupling and output level; plus a
//! host-rate loudness-matching `AutoGain`. `Preamp` is one channel;
//! `StereoPreamp` is two channels with one set of controls in SIMD lanes.
//!
//! # Circuit
//!
//! ```text
//!  mic in ─ gain (xfmr + switch) ─ HPF ─┬ Cc ┬─ Rs ─ grid ┐      B+ 250 V
//!                                        Rsrc  Rg 1M       │ stage 1 ─ Ra 100k ─┘
//!                                                        cathode ─ Rk ‖ Ck (bypassed)
//!  plate 1 ─ Level ─ Cc ─ (same network) ─ stage 2 ─ Cout 0.47 µF ─ Rload 220k ─ output level
//! ```
//!
//! Both stages are the DESIGN.md reference stage (B+ 250 V, Ra 100 kΩ,
//! Rk 1.5 kΩ bypassed, grid leak Rg 1 MΩ, coupling capacitor 47 nF). Stage 1 is
//! fed by the mic input transformer secondary (15 kΩ: a 150 Ω mic reflected
//! through 1:10); stage 2 by stage 1's plate, whose source resistance is
//! Ra ‖ rp of the selected tube. Tube type swaps the valve in the same circuit
//! ("tube rolling"), so a 12AU7 gives less gain and more headroom.
//!
//! # Triode model (Koren 1996)
//!
//! N. Koren, "Improved VT models for SPICE simulations", Glass Audio 5/1996,
//! and his published SPICE model library (normankoren.com):
//! `E1 = Vpk/kp · ln(1 + exp(kp·(1/μ + Vgk/√(kvb + Vpk²))))`,
//! `Ip = (E1^ex + sgn(E1)|E1|^ex)/kg1` = `2·E1^ex/kg1` for E1 > 0 (his
//! `PWR + PWRS` pair), grid current a diode (IS = 1 nA, n = 1) in series with
//! `RGI` = 2 kΩ from grid to cathode (Koren's `D3`/`R1` with model `DX`).
//! Interelectrode capacitances Cgk and Cgp are datasheet typicals (RCA).
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
//! are solved with safeguarded Newton in `prepare` on a uniform grid of u and
//! stored as piecewise cubic Hermite segments (value and exact slope at each
//! node from the implicit function theorem), giving `Vpk(u)` and `Ig(u)`,
//! plus the exact antiderivative `F(u) = ∫Vpk du` of the cubic (a quartic per
//! segment, anchored at 0 at the nominal operating point). Per sample: one
//! segment fetch per stage, no transcendental functions. The table is built at
//! the nominal cathode voltage; the Bias control moves Vk (and so the operating
//! point u_q = −Vk along the same curve); the neglected change of effective
//! supply (B+ − Vk) is < 0.4 %.
//!
//! # Anti-aliasing (ADAA)
//!
//! The static curve is evaluated with first-order antiderivative
//! anti-aliasing (Parker, Zavalishin, Le Bivic, "Reducing the aliasing of
//! nonlinear waveshaping using continuous-time convolution", DAFx 2016;
//! Bilbao, Esqueda, Parker, Välimäki, "Antiderivative antialiasing for
//! memoryless nonlinearities", IEEE SPL 2017):
//! `Vpk[n] = (F(u[n]) − F(u[n−1]))/(u[n] − u[n−1])`, i.e. the curve averaged
//! over the straight line between two samples (a box filter on the
//! continuous-time output, whose nulls sit on the oversampled rate's
//! multiples, where the folding harmonics are). Steps below 1e-4 table
//! segments (5 µV) use the mid-point value instead (identical to 1e-8 V).
//! Beyond the table F is extended linearly (the curve is held there). On the
//! linear part ADAA is the average `(1 + z⁻¹)/2` (−0.47 dB at 20 kHz at
//! 192 kHz, half a sample of delay); a one-pole pre-emphasis
//! `(1 + b)/(1 + b·z⁻¹)` on the grid drive, with b chosen per rate for
//! ≤ 0.025 dB loss at 20 kHz (b ≈ 0.63 at 192 kHz, ≈ 0.37 at 384 kHz),
//! makes the pair flat; its DC group delay −b/(1 + b) leaves
//! 0.5 − b/(1 + b) ≈ 0.11 oversampled samples per stage (≈ 0.06 host samples
//! for both stages at 4x: part of the stage's phase response, not reported as
//! latency). Both terms are in `small_signal_response`. Measured end to end
//! (7 kHz sine at 48 kHz, Gain for 10 % THD at 1 kHz, through the real
//! oversampler, all non-harmonic power re the fundamental): live 4x −118.6 dB
//! (−87.9 dB without ADAA), high 8x −144.8 dB (−116.1 dB).
//!
//! Coupling capacitor (the "blocking" that makes a driven stage breathe): KCL
//! at the grid-leak node gives `C·dvc/dt = (x − vc)/(Rsrc + Rg) + Ig·Rg/(Rsrc + Rg)`,
//! discretised with the exact pole of the linear part,
//! `vc += k·(x − vc) + k·Rg·Ig`, `k = 1 − exp(−T/τ)`, `τ = C·(Rsrc + Rg)`.
//! Grid current charges vc through the small source resistance (fast) and it
//! discharges through Rg (τ ≈ 48 ms): the bias recovers after a loud burst
//! with that time constant. The Ig term uses the previous sample's grid
//! current (a one-sample delay of a ≈ 0.7 ms charging process, which breaks the
//! loop-carried dependency through the table and keeps the loop stable:
//! loop gain per sample T/(C·Rt) < 0.03 at 48 kHz).
//!
//! Miller capacitance `Cin = Cgk + Cgp·(1 + A)` (A = stage gain at the
//! operating point) with `Rth + Rs` forms a one-pole low-pass applied to Vth
//! (TPT / bilinear with pre-warping), e.g. ≈ 40 kHz at stage 2 for a 12AX7.
//! Input high-pass: 2nd-order Butterworth TPT state-variable filter. Output:
//! one-pole TPT high-pass of the output coupling capacitor into Rload, and the
//! divider `Rload/(Rload + Ra‖rp)`.
//!
//! Each stage is inverting (plate falls when the grid rises); two stages make
//! the preamp non-inverting.
//!
//! # Accuracy and cost (measured, see tests)
//!
//! Against an independent plain-Newton solution of the reference stage:
//! small-signal gain within 0.01 dB, H2/H3 within 0.1 dB at 0.05/0.2/1.0 V peak.
//! Table: 1024 cubic segments per curve (4096 changes nothing measurable: H3
//! at −95 dBc moves < 0.01 dB).
//!
//! The block loop works in chunks of 64 samples aligned to the absolute
//! sample count (denormal flush at the chunk ends): per stage, a first pass
//! runs only the linear recursions (coupling capacitor, Miller, pre-emphasis;
//! each written as `s' = a·s + b·x`, one multiply-add on the loop-carried
//! chain) and a second pass the ADAA, which is independent per sample, so
//! the CPU overlaps many samples. A chunk in which any sample reaches grid
//! current is redone serially (the grid current charges the coupling
//! capacitor one sample later); the arithmetic is identical either way.
//! The ADAA pass picks a loop per chunk by its steps (see
//! `StageKernel::finish_chunk`), so silence and decaying tails, where every
//! step is below the mid-point threshold, are the cheapest chunks: they need
//! no division (before, they took the general clamped path and silence cost
//! 30 % more than signal). [`StereoPreamp`] runs two channels in the two
//! lanes of SSE2 registers (its ADAA quotients two samples at a time, in
//! the four lanes of an `F4`); mono runs its ADAA two samples at a time in
//! the two lanes. On a CPU with AVX2 and FMA (checked in `prepare`) both
//! run an AVX2 + FMA build of the same generic loop (`super::fma`): the
//! `F4` quotients in one 256-bit register, and every `a·b + c` fused, which
//! cuts each loop-carried recursion above from a multiply plus an add to
//! one FMA. Measured on the whole live chain: −2 % (AVX2), −2 % (FMA).
//! Mono and stereo always take the same build, so a channel of either is
//! the same bit for bit.
//!
//! The chunks are pipelined: stage 2's linear pass over chunk k runs in the
//! same loop as stage 1's over chunk k + 1 (when both are as long), in the
//! lanes of one register (`StageKernel::linear_chunk_pair`: stereo in the
//! four lanes of an `F4`, mono in the two of an `F2`). The linear passes are
//! bound by their instructions, not by the width of the registers, so the
//! pair costs about one pass: 30 instructions for both stages of a stereo
//! sample (the inputs joined and the coordinates split inside the loop),
//! where the two passes took 29 each (live chain −9 %, then −5 % for joining
//! and splitting in the loop instead of in packing loops). Lanes do not
//! mix, so the output is the same bit for bit.
//!
//! The preamp's linear ends ([`PreampPart`]: guard, input gain and
//! high-pass in front; output coupling and output gain behind) can run at
//! another rate than the stages: the chain runs them at the host rate,
//! around its oversampler (a quarter of the work; live chain −3 %).
//!
//! Profile (perf, chain with the preamp in, live, stereo, noise at 48 kHz,
//! with the pipeline): the two stages take about 59 % of the time, the live
//! 4x half-bands 15 %, the host-rate loop (K-weighting of the auto-gain and
//! the compare) 15 %. Within the stages, the two ADAA quotient passes take
//! about 55 % and the pipelined linear pass about 17 %; the quotient pass
//! (about 70 instructions per 256-bit quotient, unrolled four times) is
//! bound by its table fetches (four segments, five coefficients each) and
//! their shuffles into lanes. Not by its divider: a reciprocal estimate
//! (`vrcpps`) with three Newton steps in place of the division, more
//! instructions and no divide, made the live chain 7 % slower. Silence,
//! which has no ADAA work, still costs about 60 % of signal.
//! Cost per oversampled sample per channel (release, baseline x86-64,
//! callgrind instructions; timings on this loaded 2-core machine are only
//! indicative): mono ≈ 170 instr on a −40 dB sine, ≈ 168 on a decaying
//! tail, ≈ 115 on silence (was 194 / 238 / 255); stereo ≈ 128 on a sine and
//! ≈ 78 on silence (was 135 / 169).
//!
//! Latency: 0 samples (plus the fractional ADAA group delay above, ≈ 0.11
//! oversampled samples per stage, not an integer latency). Units: volts in (at the mic input, after pad and
//! polarity), volts out (at the output level control). Runs at the
//! oversampled rate given to `prepare` / `set_sample_rate`.

use super::fma::{cpu_has_fma, Fused, MulAdd, Unfused};
use super::ProcessSpec;
use num_complex::Complex;
use std::f64::consts::PI;

// `#[path]` so the tests resolve the same way whether this file is reached
// as `dsp/tube.rs` or through a `#[path]` include.
#[cfg(test)]
#[path = "tube/tests.rs"]
mod tests;

// ---------------------------------------------------------------------------
// Tube constants
// ---------------------------------------------------------------------------

/// Koren triode constants plus the grid-current diode and the interelectrode
/// capacitances that set the Miller low-pass.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KorenTriode {
    /// Amplification factor μ (Koren's MU).
    pub mu: f64,
    /// Exponent of the 3/2-power law (Koren's EX).
    pub ex: f64,
    /// Perveance scale (Koren's KG1), in V^ex/A.
    pub kg1: f64,
    /// Knee sharpness near cut-off (Koren's KP).
    pub kp: f64,
    /// Knee voltage term (Koren's KVB), in V².
    pub kvb: f64,
    /// Grid-current series resistance (Koren's RGI).
    pub rgi_ohms: f64,
    /// Saturation current of the grid diode (Koren's model DX: IS = 1 nA).
    pub grid_is_amps: f64,
    /// Thermal voltage of the grid diode (n = 1 at 300 K).
    pub grid_vt_volts: f64,
    /// Grid-to-cathode capacitance, datasheet typical.
    pub cgk_farads: f64,
    /// Grid-to-plate capacitance, datasheet typical (multiplied by the Miller effect).
    pub cgp_farads: f64,
}

/// Grid-to-cathode voltage at which grid current starts in this model:
/// the grid diode conducts for Vd > 0 (Koren's `DX` without an offset) and
/// Vgk = Vd + RGI·Ig, so Ig > 0 exactly when Vgk > 0 V.
pub const GRID_CONDUCTION_VOLTS: f64 = 0.0;

#[inline]
fn softplus(x: f64) -> f64 {
    if x > 30.0 {
        x + (-x).exp()
    } else {
        x.exp().ln_1p()
    }
}

#[inline]
fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

impl KorenTriode {
    /// Plate current in amperes for grid and plate voltages relative to the cathode.
    pub fn plate_current(&self, vgk: f64, vpk: f64) -> f64 {
        self.plate_current_and_partials(vgk, vpk).0
    }

    /// Plate current and its partial derivatives (gm = ∂Ip/∂Vgk, gp = ∂Ip/∂Vpk = 1/rp).
    pub fn plate_current_and_partials(&self, vgk: f64, vpk: f64) -> (f64, f64, f64) {
        if vpk <= 0.0 {
            return (0.0, 0.0, 0.0);
        }
        let s = (self.kvb + vpk * vpk).sqrt();
        let x = self.kp * (1.0 / self.mu + vgk / s);
        let sp = softplus(x);
        let sg = sigmoid(x);
        let e1 = vpk / self.kp * sp;
        if e1 <= 0.0 {
            return (0.0, 0.0, 0.0);
        }
        let de1_dvg = vpk * sg / s;
        let de1_dvp = sp / self.kp - vpk * vpk * vgk * sg / (s * s * s);
        let p = e1.powf(self.ex - 1.0);
        let ip = 2.0 * p * e1 / self.kg1;
        let dip_de1 = 2.0 * self.ex * p / self.kg1;
        (ip, dip_de1 * de1_dvg, dip_de1 * de1_dvp)
    }

    /// Grid diode current (without RGI) and its derivative, for the diode voltage `vd`.
    /// Reverse leakage is left out, so the current is exactly zero for vd ≤ 0.
    pub fn grid_diode_current(&self, vd: f64) -> (f64, f64) {
        if vd <= 0.0 {
            return (0.0, 0.0);
        }
        let e = (vd / self.grid_vt_volts).exp();
        (
            self.grid_is_amps * (e - 1.0),
            self.grid_is_amps * e / self.grid_vt_volts,
        )
    }

    /// Solve the grid loop `vd + rt·Ig(vd) = u` (rt includes RGI). Returns (vd, ig, dIg/du).
    fn solve_grid(&self, u: f64, rt: f64) -> (f64, f64, f64) {
        if u <= 0.0 {
            return (u, 0.0, 0.0);
        }
        // f(vd) = vd + rt·Ig(vd) − u is convex and increasing; starting right of
        // the root, Newton converges monotonically.
        let mut vd = u.min(self.grid_vt_volts * (1.0 + u / (rt * self.grid_is_amps)).ln());
        for _ in 0..200 {
            let (ig, dig) = self.grid_diode_current(vd);
            let f = vd + rt * ig - u;
            let step = f / (1.0 + rt * dig);
            vd -= step;
            if step.abs() < 1e-14 {
                break;
            }
        }
        let (ig, dig) = self.grid_diode_current(vd);
        (vd, ig, dig / (1.0 + rt * dig))
    }

    /// Solve the plate `vpk + ra·Ip(vgk, vpk) = vs` for vpk in [0, vs] with
    /// safeguarded Newton. Returns (vpk, dvpk/dvgk).
    fn solve_plate(&self, vgk: f64, vs: f64, ra: f64, guess: f64) -> (f64, f64) {
        let (mut lo, mut hi) = (0.0, vs);
        let mut v = guess.clamp(0.0, vs);
        for _ in 0..200 {
            let (ip, _, gp) = self.plate_current_and_partials(vgk, v);
            let f = v + ra * ip - vs;
            if f > 0.0 {
                hi = v;
            } else {
                lo = v;
            }
            let mut next = v - f / (1.0 + ra * gp);
            if !(next > lo && next < hi) {
                next = 0.5 * (lo + hi);
            }
            let done = (next - v).abs() < 1e-12 * vs.max(1.0);
            v = next;
            if done || hi - lo < 1e-13 {
                break;
            }
        }
        let (_, gm, gp) = self.plate_current_and_partials(vgk, v);
        (v, -ra * gm / (1.0 + ra * gp))
    }
}

/// The triode type fitted to both stages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TubeType {
    /// ECC83 / 12AX7, high-μ (datasheet μ = 100): the classic preamp valve.
    #[default]
    Tube12AX7,
    /// ECC81 / 12AT7, medium-μ (datasheet μ = 60).
    Tube12AT7,
    /// ECC82 / 12AU7, low-μ (datasheet μ = 17): least gain, most headroom.
    Tube12AU7,
}

impl TubeType {
    /// Every variant, in table order.
    pub const ALL: [TubeType; 3] = [
        TubeType::Tube12AX7,
        TubeType::Tube12AT7,
        TubeType::Tube12AU7,
    ];

    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            TubeType::Tube12AX7 => "12AX7",
            TubeType::Tube12AT7 => "12AT7",
            TubeType::Tube12AU7 => "12AU7",
        }
    }

    fn index(self) -> usize {
        match self {
            TubeType::Tube12AX7 => 0,
            TubeType::Tube12AT7 => 1,
            TubeType::Tube12AU7 => 2,
        }
    }

    /// Koren constants. MU/EX/KG1/KP/KVB/RGI from N. Koren's published SPICE
    /// model library (the 1996 Glass Audio article's updated list):
    /// 12AX7 `MU=100 EX=1.4 KG1=1060 KP=600 KVB=300`,
    /// 12AT7 `MU=60 EX=1.35 KG1=460 KP=300 KVB=300`,
    /// 12AU7 `MU=21.5 EX=1.3 KG1=1180 KP=84 KVB=300`, all `RGI=2000`, grid
    /// diode `IS=1nA`. Capacitances from the RCA datasheets: 12AX7 Cgk 1.6 pF,
    /// Cgp 1.7 pF; 12AT7 Cgk 2.2 pF, Cgp 1.5 pF; 12AU7 Cgk 1.6 pF, Cgp 1.5 pF.
    /// Checked in the tests against datasheet operating points (Ip and μ at
    /// Vp = 250 V).
    pub fn constants(self) -> KorenTriode {
        let (mu, ex, kg1, kp, cgk, cgp) = match self {
            TubeType::Tube12AX7 => (100.0, 1.4, 1060.0, 600.0, 1.6e-12, 1.7e-12),
            TubeType::Tube12AT7 => (60.0, 1.35, 460.0, 300.0, 2.2e-12, 1.5e-12),
            TubeType::Tube12AU7 => (21.5, 1.3, 1180.0, 84.0, 1.6e-12, 1.5e-12),
        };
        KorenTriode {
            mu,
            ex,
            kg1,
            kp,
            kvb: 300.0,
            rgi_ohms: 2000.0,
            grid_is_amps: 1e-9,
            grid_vt_volts: 0.025_852,
            cgk_farads: cgk,
            cgp_farads: cgp,
        }
    }
}

// ---------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------

/// The input high-pass switch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum HighPass {
    /// No high-pass (only the coupling capacitors, a few Hz).
    #[default]
    Off,
    /// 12 dB/oct Butterworth, −3 dB at 40 Hz.
    Hz40,
    /// 12 dB/oct Butterworth, −3 dB at 80 Hz.
    Hz80,
    /// 12 dB/oct Butterworth, −3 dB at 120 Hz.
    Hz120,
}

impl HighPass {
    /// Every variant.
    pub const ALL: [HighPass; 4] = [
        HighPass::Off,
        HighPass::Hz40,
        HighPass::Hz80,
        HighPass::Hz120,
    ];

    /// The −3 dB corner, or `None` when off.
    pub fn cutoff_hz(self) -> Option<f64> {
        match self {
            HighPass::Off => None,
            HighPass::Hz40 => Some(40.0),
            HighPass::Hz80 => Some(80.0),
            HighPass::Hz120 => Some(120.0),
        }
    }
}

/// Preamp controls in physical units.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PreampSettings {
    /// Clean gain at the mic input before stage 1 (input transformer + gain
    /// switch), 0 … 60 dB.
    pub gain_db: f64,
    /// Interstage Level between stage 1 and stage 2, −60 … 0 dB. Low Level with
    /// high Gain is "dirty but quiet".
    pub level_db: f64,
    /// The triode in both stages.
    pub tube: TubeType,
    /// Character, −1 … +1: scales both cathode resistors by 2^(−bias)
    /// (−1: 3 kΩ, cold; 0: 1.5 kΩ; +1: 750 Ω, hot). Cold bias puts the
    /// operating point nearer cut-off, where the curve bends most: more H2
    /// relative to H3 and to the level. Hot bias runs more current on the more
    /// linear part of the curve: H2 falls faster than H3, so the balance moves
    /// towards H3 (and the positive grid swing reaches grid current earlier).
    pub bias: f64,
    /// Input high-pass.
    pub hpf: HighPass,
    /// Output level, −60 … +24 dB.
    pub output_db: f64,
}

impl Default for PreampSettings {
    /// Useful on insert: with about −50 dBu (2.45 mV rms) at the mic input, a
    /// 1 kHz sine gets about 1 % THD (H2 dominant).
    fn default() -> Self {
        Self {
            gain_db: 20.0,
            level_db: -20.0,
            tube: TubeType::Tube12AX7,
            bias: 0.0,
            hpf: HighPass::Off,
            output_db: 0.0,
        }
    }
}

/// One-pole smoothing step that lands exactly on the target once within
/// 1e-9 of it (so the per-block "still smoothing" test turns false).
#[inline(always)]
fn smooth(g: f64, target: f64, a: f64) -> f64 {
    let next = g + a * (target - g);
    if (target - next).abs() <= 1e-9 * target.abs() {
        target
    } else {
        next
    }
}

fn db_to_gain(db: f64) -> f64 {
    10f64.powf(db / 20.0)
}

// ---------------------------------------------------------------------------
// Lanes: one per-sample code path for one channel (f64) and two (F2)
// ---------------------------------------------------------------------------

/// Two f64 lanes (left, right) operated on lane by lane. Written with plain
/// arrays so LLVM emits packed SSE2 (`addpd`, `mulpd`, `divpd`, `minpd`);
/// every lane computes exactly what the scalar path computes, so a stereo
/// preamp is bit-identical to two mono ones.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C, align(16))]
struct F2([f64; 2]);

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

/// Four f64 lanes: two consecutive samples of a stereo pair, for the ADAA
/// quotient loop (whose samples are independent), or two
/// [`LoudnessPair`]s K-weighted together ([`LoudnessQuad`]). Plain arrays, so LLVM
/// emits 256-bit AVX where the caller is compiled for it and pairs of SSE2
/// operations otherwise; every lane computes exactly what `F2` computes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C, align(32))]
struct F4([f64; 4]);

impl F4 {
    #[inline(always)]
    fn join(a: F2, b: F2) -> Self {
        F4([a.0[0], a.0[1], b.0[0], b.0[1]])
    }
    #[inline(always)]
    fn lo_half(self) -> F2 {
        F2([self.0[0], self.0[1]])
    }
    #[inline(always)]
    fn hi_half(self) -> F2 {
        F2([self.0[2], self.0[3]])
    }
    /// `antiderivative` at table coordinate `x` (one segment fetch per
    /// lane, only the five coefficients the antiderivative uses), with the
    /// same operations as `antiderivative(&lookup(x))` of the other lanes.
    #[inline(always)]
    fn big_f<M: MulAdd>(x: F4, seg: &Segments) -> F4 {
        let parts: [(usize, f64); 4] = std::array::from_fn(|i| split_index(x.0[i]));
        let t = F4(std::array::from_fn(|i| parts[i].1));
        let c: [&[f64; SEG_LEN]; 4] = std::array::from_fn(|i| &seg[parts[i].0 & SEG_MASK].0);
        let g = |k: usize| F4([c[0][k], c[1][k], c[2][k], c[3][k]]);
        let m = |a: F4, b: F4, c: F4| F4(std::array::from_fn(|i| M::mad1(a.0[i], b.0[i], c.0[i])));
        m(t, m(t, m(t, m(t, g(11), g(10)), g(9)), g(0)), g(4))
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

f4_op!(Add, add, +);
f4_op!(Sub, sub, -);
f4_op!(Mul, mul, *);
f4_op!(Div, div, /);

/// `a·b + c` lane-wise, fused or not as `M` says (see [`super::fma`]).
#[inline(always)]
fn mad<M: MulAdd, L: Arith>(a: L, b: L, c: L) -> L {
    if M::INDEX == Fused::INDEX {
        a.fused_mul_add(b, c)
    } else {
        a * b + c
    }
}

/// The arithmetic of the linear recursions: a [`Lane`], or two side by side
/// ([`Lane::Pair`], two stages of the chunk pipeline in one loop).
trait Arith:
    Copy
    + Default
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
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

/// What the sample loop needs from a lane type (f64 or F2).
trait Lane: Arith + std::ops::Div<Output = Self> {
    /// Two of these side by side: two stages' linear passes in one loop.
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
    /// Segment lookup at a table coordinate `x` in [0, n − 1e-9]: the
    /// fraction t and the segment's coefficients.
    fn lookup(x: Self, seg: &Segments) -> (Self, [Self; SEG_LEN]);

    /// The ADAA quotients of a chunk known to stay inside the table with
    /// every step above `ADAA_MIN_STEP` (so the clamps and extensions are
    /// identities and the quotient is picked): `post(j, y)` for each sample,
    /// returns the last (q, F(q)).
    #[inline(always)]
    fn adaa_quotients<M: MulAdd>(
        k: &StageKernel<'_, M>,
        qs: &[Self],
        mut q_prev: Self,
        mut f_prev: Self,
        post: &mut impl FnMut(usize, Self),
    ) -> (Self, Self) {
        let dc = Self::splat(k.dc);
        for (j, q) in qs.iter().enumerate() {
            let (t, c) = Self::lookup(*q, k.seg);
            let big_f = antiderivative::<M, _>(&c, t);
            post(j, (big_f - f_prev) / (*q - q_prev) - dc);
            q_prev = *q;
            f_prev = big_f;
        }
        (q_prev, f_prev)
    }

    /// In range with small and large steps mixed (near the peaks of a sine,
    /// during a tail's fade): the in-range arithmetic of `adaa` (no clamps)
    /// with both candidates and a branch-free pick. Returns the last (q, F(q)).
    #[inline(always)]
    fn adaa_mixed<M: MulAdd>(
        k: &StageKernel<'_, M>,
        qs: &[Self],
        mut q_prev: Self,
        mut f_prev: Self,
        post: &mut impl FnMut(usize, Self),
    ) -> (Self, Self) {
        let (half, dc) = (Self::splat(0.5), Self::splat(k.dc));
        for (j, q) in qs.iter().enumerate() {
            let (t, c) = Self::lookup(*q, k.seg);
            let big_f = antiderivative::<M, _>(&c, t);
            let dq = *q - q_prev;
            let tm = t - dq * half;
            let f_mid = cubic::<M, _>(&c, tm);
            let out = Self::pick_abs_gt(dq, ADAA_MIN_STEP, (big_f - f_prev) / dq, f_mid);
            post(j, out - dc);
            q_prev = *q;
            f_prev = big_f;
        }
        (q_prev, f_prev)
    }

    /// The ADAA mid-point values of a chunk known to stay inside the table
    /// with every step at most `ADAA_MIN_STEP`: `post(j, y)` for each
    /// sample, returns the last q.
    #[inline(always)]
    fn adaa_mids<M: MulAdd>(
        k: &StageKernel<'_, M>,
        qs: &[Self],
        mut q_prev: Self,
        post: &mut impl FnMut(usize, Self),
    ) -> Self {
        let (half, dc) = (Self::splat(0.5), Self::splat(k.dc));
        for (j, q) in qs.iter().enumerate() {
            let (t, c) = Self::lookup(*q, k.seg);
            let tm = t - (*q - q_prev) * half;
            post(j, cubic::<M, _>(&c, tm) - dc);
            q_prev = *q;
        }
        q_prev
    }
}

/// NaN to 0, everything else clamped to ±limit (branch-free: the NaN test
/// is a mask, the clamps are `maxsd`/`minsd`).
#[inline(always)]
fn sanitize1(v: f64, limit: f64) -> f64 {
    let v = if v.is_nan() { 0.0 } else { v };
    v.hi(-limit).lo(limit)
}

#[inline(always)]
fn flush1(v: f64) -> f64 {
    if v.abs() < 1e-30 {
        0.0
    } else {
        v
    }
}

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
    #[inline(always)]
    fn lookup(x: Self, seg: &Segments) -> (Self, [Self; SEG_LEN]) {
        let (i, t) = split_index(x);
        (t, seg[i & SEG_MASK].0)
    }

    /// Two samples at a time in the lanes of an `F2` (the quotients are
    /// independent given the previous F): the same operations per sample.
    #[inline(always)]
    fn adaa_quotients<M: MulAdd>(
        k: &StageKernel<'_, M>,
        qs: &[Self],
        mut q_prev: Self,
        mut f_prev: Self,
        post: &mut impl FnMut(usize, Self),
    ) -> (Self, Self) {
        let dc = F2::splat(k.dc);
        let pairs = qs.chunks_exact(2);
        let rest = pairs.remainder();
        for (j, p) in pairs.enumerate() {
            let q = F2([p[0], p[1]]);
            let (t, c) = F2::lookup(q, k.seg);
            let big_f = antiderivative::<M, _>(&c, t);
            let y = (big_f - F2([f_prev, big_f.0[0]])) / (q - F2([q_prev, p[0]])) - dc;
            post(2 * j, y.0[0]);
            post(2 * j + 1, y.0[1]);
            q_prev = p[1];
            f_prev = big_f.0[1];
        }
        let j0 = qs.len() - rest.len();
        for (j, q) in rest.iter().enumerate() {
            let (t, c) = f64::lookup(*q, k.seg);
            let big_f = antiderivative::<M, _>(&c, t);
            post(j0 + j, (big_f - f_prev) / (*q - q_prev) - k.dc);
            q_prev = *q;
            f_prev = big_f;
        }
        (q_prev, f_prev)
    }

    /// Two samples at a time, as `adaa_quotients`.
    #[inline(always)]
    fn adaa_mixed<M: MulAdd>(
        k: &StageKernel<'_, M>,
        qs: &[Self],
        mut q_prev: Self,
        mut f_prev: Self,
        post: &mut impl FnMut(usize, Self),
    ) -> (Self, Self) {
        let (half, dc) = (F2::splat(0.5), F2::splat(k.dc));
        let pairs = qs.chunks_exact(2);
        let rest = pairs.remainder();
        for (j, p) in pairs.enumerate() {
            let q = F2([p[0], p[1]]);
            let (t, c) = F2::lookup(q, k.seg);
            let big_f = antiderivative::<M, _>(&c, t);
            let dq = q - F2([q_prev, p[0]]);
            let tm = t - dq * half;
            let f_mid = cubic::<M, _>(&c, tm);
            let quot = (big_f - F2([f_prev, big_f.0[0]])) / dq;
            let y = F2::pick_abs_gt(dq, ADAA_MIN_STEP, quot, f_mid) - dc;
            post(2 * j, y.0[0]);
            post(2 * j + 1, y.0[1]);
            q_prev = p[1];
            f_prev = big_f.0[1];
        }
        let j0 = qs.len() - rest.len();
        for (j, q) in rest.iter().enumerate() {
            let (t, c) = f64::lookup(*q, k.seg);
            let big_f = antiderivative::<M, _>(&c, t);
            let dq = *q - q_prev;
            let tm = t - dq * 0.5;
            let f_mid = cubic::<M, _>(&c, tm);
            let out = f64::pick_abs_gt(dq, ADAA_MIN_STEP, (big_f - f_prev) / dq, f_mid);
            post(j0 + j, out - k.dc);
            q_prev = *q;
            f_prev = big_f;
        }
        (q_prev, f_prev)
    }

    /// Two samples at a time, as `adaa_quotients`.
    #[inline(always)]
    fn adaa_mids<M: MulAdd>(
        k: &StageKernel<'_, M>,
        qs: &[Self],
        mut q_prev: Self,
        post: &mut impl FnMut(usize, Self),
    ) -> Self {
        let (half, dc) = (F2::splat(0.5), F2::splat(k.dc));
        let pairs = qs.chunks_exact(2);
        let rest = pairs.remainder();
        for (j, p) in pairs.enumerate() {
            let q = F2([p[0], p[1]]);
            let (t, c) = F2::lookup(q, k.seg);
            let tm = t - (q - F2([q_prev, p[0]])) * half;
            let y = cubic::<M, _>(&c, tm) - dc;
            post(2 * j, y.0[0]);
            post(2 * j + 1, y.0[1]);
            q_prev = p[1];
        }
        let j0 = qs.len() - rest.len();
        for (j, q) in rest.iter().enumerate() {
            let (t, c) = f64::lookup(*q, k.seg);
            let tm = t - (*q - q_prev) * 0.5;
            post(j0 + j, cubic::<M, _>(&c, tm) - k.dc);
            q_prev = *q;
        }
        q_prev
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
    /// Two stereo samples at a time in the four lanes of an `F4` (the
    /// quotients are independent given the previous F): the same
    /// operations per lane as the default.
    #[inline(always)]
    fn adaa_quotients<M: MulAdd>(
        k: &StageKernel<'_, M>,
        qs: &[Self],
        mut q_prev: Self,
        mut f_prev: Self,
        post: &mut impl FnMut(usize, Self),
    ) -> (Self, Self) {
        let dc = F4::splat(k.dc);
        let pairs = qs.chunks_exact(2);
        let rest = pairs.remainder();
        for (j, p) in pairs.enumerate() {
            let q = F4::join(p[0], p[1]);
            let big_f = F4::big_f::<M>(q, k.seg);
            let fp = F4::join(f_prev, big_f.lo_half());
            let qp = F4::join(q_prev, p[0]);
            let y = (big_f - fp) / (q - qp) - dc;
            post(2 * j, y.lo_half());
            post(2 * j + 1, y.hi_half());
            q_prev = p[1];
            f_prev = big_f.hi_half();
        }
        let j0 = qs.len() - rest.len();
        let dc = F2::splat(k.dc);
        for (j, q) in rest.iter().enumerate() {
            let (t, c) = F2::lookup(*q, k.seg);
            let big_f = antiderivative::<M, _>(&c, t);
            post(j0 + j, (big_f - f_prev) / (*q - q_prev) - dc);
            q_prev = *q;
            f_prev = big_f;
        }
        (q_prev, f_prev)
    }
    #[inline(always)]
    fn lookup(x: Self, seg: &Segments) -> (Self, [Self; SEG_LEN]) {
        let (i0, t0) = split_index(x.0[0]);
        let (i1, t1) = split_index(x.0[1]);
        let (a, b) = (&seg[i0 & SEG_MASK].0, &seg[i1 & SEG_MASK].0);
        (F2([t0, t1]), std::array::from_fn(|k| F2([a[k], b[k]])))
    }
}

// ---------------------------------------------------------------------------
// Static curve table
// ---------------------------------------------------------------------------

/// Number of cubic segments per curve table.
const TABLE_SEGMENTS: usize = 1024;

/// Index mask of a segment number: indices in range are unchanged, and the
/// mask lets the compiler drop the bounds check of the table lookup.
const SEG_MASK: usize = TABLE_SEGMENTS - 1;

/// A whole curve table's segments (fixed size, so a masked index is always
/// in bounds).
type Segments = [Segment; TABLE_SEGMENTS];

/// Coefficients per segment, see [`Segment`].
const SEG_LEN: usize = 12;

/// One table segment in its local coordinate t ∈ [0, 1]:
/// `[c0, c1, c2, c3, F0, g0, g1, g2, g3, c1/2, c2/3, c3/4]` with
/// `Vpk − Vpk_ref = c0 + c1·t + c2·t² + c3·t³` (cubic Hermite),
/// its antiderivative in table units `F = F0 + c0·t + c1·t²/2 + c2·t³/3 + c3·t⁴/4`
/// (F0 accumulated over the segments below, zero at the nominal operating
/// point, so small signals difference small numbers), and
/// `Ig = g0 + g1·t + g2·t² + g3·t³`. The last three are the antiderivative's
/// coefficients, stored pre-divided (the same products the sample loop would
/// form, so nothing changes but two multiplies per lookup).
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(8))]
struct Segment([f64; SEG_LEN]);

/// `Vpk(u)` and `Ig(u)` of one stage as piecewise cubic Hermite segments on a
/// uniform grid of u = Vth − Vk, plus the antiderivative of Vpk for ADAA.
#[derive(Clone, Debug, Default)]
struct CurveTable {
    /// Lowest u in the table (deep cut-off); below it the curve is held.
    lo_volts: f64,
    /// Highest u in the table (hard grid conduction); above it Vpk is held and
    /// Ig is extended linearly.
    hi_volts: f64,
    /// Segments per volt.
    inv_h: f64,
    /// Number of segments as f64 (minus 1e-9), the clamp for the segment coordinate.
    last: f64,
    /// The segments.
    seg: Vec<Segment>,
    /// dIg/du at `hi_volts`, for the linear extension beyond the table.
    ig_slope_hi: f64,
    /// Supply minus nominal cathode voltage the table was built for.
    vs_volts: f64,
    /// Start of the first segment with non-zero grid-current coefficients.
    ig_start_volts: f64,
    /// Vpk at the nominal operating point, subtracted from the stored curve.
    vpk_ref_volts: f64,
}

impl CurveTable {
    /// Build by Newton at each node. `r_grid_ohms` is Rth + Rs (RGI is added
    /// here); `u_ref` is the nominal operating point (−Vk at bias 0).
    fn build(
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
                    p,
                    q,
                    r,
                    s,
                    b * 0.5,
                    c * (1.0 / 3.0),
                    d * 0.25,
                ]);
                big_f += a + b / 2.0 + c / 3.0 + d / 4.0;
                s0
            })
            .collect();
        let first_ig = seg
            .iter()
            .position(|c| c.0[5..9].iter().any(|v| *v != 0.0))
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
        };
        // Anchor F at the operating point: F(u_ref) = 0.
        let x_ref = ((u_ref - lo) * table.inv_h).clamp(0.0, table.last);
        let (i, tt) = split_index(x_ref);
        let f_ref = antiderivative::<Unfused, _>(&seg[i].0, tt);
        for s in seg.iter_mut() {
            s.0[4] -= f_ref;
        }
        table.seg = seg;
        table
    }

    /// (Vpk, Ig) at u (static curve, no ADAA).
    fn eval(&self, u: f64) -> (f64, f64) {
        let x = ((u - self.lo_volts) * self.inv_h).clamp(0.0, self.last);
        let (i, t) = split_index(x);
        let c = &self.seg[i].0;
        let vp = c[0] + t * (c[1] + t * (c[2] + t * c[3]));
        let ig = c[5] + t * (c[6] + t * (c[7] + t * c[8]));
        (
            vp + self.vpk_ref_volts,
            ig + (u - self.hi_volts).max(0.0) * self.ig_slope_hi,
        )
    }

    /// The segments as a fixed-size array (the table always has
    /// `TABLE_SEGMENTS` once built).
    #[inline]
    fn segments(&self) -> &Segments {
        match <&Segments>::try_from(self.seg.as_slice()) {
            Ok(s) => s,
            Err(_) => unreachable!("curve tables have TABLE_SEGMENTS segments"),
        }
    }

    /// dVpk/du at u (for small-signal gain).
    fn slope(&self, u: f64) -> f64 {
        let x = ((u - self.lo_volts) * self.inv_h).clamp(0.0, self.last);
        let (i, t) = split_index(x);
        let c = &self.seg[i].0;
        (c[1] + t * (2.0 * c[2] + 3.0 * t * c[3])) * self.inv_h
    }
}

/// The antiderivative polynomial of one segment at t (table units).
#[inline(always)]
fn antiderivative<M: MulAdd, L: Lane>(c: &[L; SEG_LEN], t: L) -> L {
    let m = mad::<M, L>;
    m(t, m(t, m(t, m(t, c[11], c[10]), c[9]), c[0]), c[4])
}

/// The curve's cubic of one segment at t (table units).
#[inline(always)]
fn cubic<M: MulAdd, L: Lane>(c: &[L; SEG_LEN], t: L) -> L {
    let m = mad::<M, L>;
    m(t, m(t, m(t, c[3], c[2]), c[1]), c[0])
}

/// The grid current's cubic of one segment at t (table units).
#[inline(always)]
fn grid_cubic<M: MulAdd, L: Lane>(c: &[L; SEG_LEN], t: L) -> L {
    let m = mad::<M, L>;
    m(t, m(t, m(t, c[8], c[7]), c[6]), c[5])
}

/// 1.5 · 2^52: adding it to a small f64 leaves its rounded integer part in the
/// low mantissa bits (the sum stays in the binade where one ulp is 1).
const ROUND_MAGIC: f64 = 6_755_399_441_055_744.0;

/// Segment index and fraction of a segment coordinate `x` in [0, n − 1e-9]:
/// floor without the saturating float-to-int cast (which costs ~15
/// instructions on baseline x86-64). For integer x the rounding may pick the
/// segment below with t = 1, which evaluates to the same value.
#[inline(always)]
fn split_index(x: f64) -> (usize, f64) {
    let m = (x - 0.5) + ROUND_MAGIC;
    let fi = m - ROUND_MAGIC;
    ((m.to_bits() & 0xFFFF_FFFF) as usize, x - fi)
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

/// ADAA switches to the mid-point value below this step of the table
/// coordinate (1e-4 segment ≈ 5 µV at the grid): there the divided
/// difference would lose digits, and the mid-point value equals the ADAA
/// average to within f''·Δ²/24 (< 1e-8 V).
const ADAA_MIN_STEP: f64 = 1e-4;

/// Pre-emphasis pole b that makes (1 + z⁻¹)/2 · (1 + b)/(1 + b·z⁻¹) (the
/// linear response of first-order ADAA times its compensation) lose at most
/// `loss_db` at `f_hz`; 0 if no compensation is needed, at most 0.9.
/// |H|² = 1 − (1 − cos ω)(1 − b)² / (2(1 + 2b·cos ω + b²)), monotone in b.
fn adaa_compensation(f_hz: f64, fs: f64, loss_db: f64) -> f64 {
    let c = (2.0 * PI * (f_hz / fs).min(0.5)).cos();
    let target = 1.0 - 10f64.powf(-loss_db / 10.0);
    let deficit = |b: f64| (1.0 - c) * (1.0 - b) * (1.0 - b) / (2.0 * (1.0 + 2.0 * b * c + b * b));
    if deficit(0.0) <= target {
        return 0.0;
    }
    let (mut lo, mut hi) = (0.0, 0.9);
    if deficit(hi) > target {
        return hi;
    }
    for _ in 0..60 {
        let m = 0.5 * (lo + hi);
        if deficit(m) > target {
            lo = m;
        } else {
            hi = m;
        }
    }
    hi
}
// ---------------------------------------------------------------------------
// One triode stage
// ---------------------------------------------------------------------------

/// The fixed components of one common-cathode stage.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StageCircuit {
    /// Plate supply B+.
    pub supply_volts: f64,
    /// Plate load resistor Ra.
    pub plate_ohms: f64,
    /// Cathode resistor Rk at bias 0 (bypassed).
    pub cathode_ohms: f64,
    /// Grid leak resistor Rg (to ground, after the coupling capacitor).
    pub grid_leak_ohms: f64,
    /// Grid stopper Rs in series with the grid.
    pub grid_stopper_ohms: f64,
    /// Input coupling capacitor Cc.
    pub coupling_farads: f64,
}

impl StageCircuit {
    /// The DESIGN.md reference stage with a 1 MΩ grid leak and 47 nF coupling.
    pub const REFERENCE: StageCircuit = StageCircuit {
        supply_volts: 250.0,
        plate_ohms: 100e3,
        cathode_ohms: 1.5e3,
        grid_leak_ohms: 1e6,
        grid_stopper_ohms: 0.0,
        coupling_farads: 47e-9,
    };
}

/// Solve the DC operating point exactly (no table): returns (Vk, Vpk, Ip).
fn operating_point(t: &KorenTriode, c: &StageCircuit, rk: f64) -> (f64, f64, f64) {
    let (mut lo, mut hi) = (0.0, c.supply_volts * rk / (rk + c.plate_ohms));
    let mut vpk = c.supply_volts;
    for _ in 0..200 {
        let vk = 0.5 * (lo + hi);
        vpk = t.solve_plate(-vk, c.supply_volts - vk, c.plate_ohms, vpk).0;
        let ip = (c.supply_volts - vk - vpk) / c.plate_ohms;
        if vk - rk * ip > 0.0 {
            hi = vk;
        } else {
            lo = vk;
        }
    }
    let vk = 0.5 * (lo + hi);
    let vpk = t.solve_plate(-vk, c.supply_volts - vk, c.plate_ohms, vpk).0;
    (vk, vpk, (c.supply_volts - vk - vpk) / c.plate_ohms)
}

/// One common-cathode triode stage (inverting): coupling capacitor, grid leak,
/// grid current, Miller low-pass, static plate curve with first-order ADAA.
/// Output is the AC plate voltage (open circuit; the caller applies the
/// source resistance).
#[derive(Clone, Debug)]
pub struct TriodeStage {
    /// Fixed components.
    circuit: StageCircuit,
    /// Source resistance driving the coupling capacitor, per tube type.
    source_ohms: [f64; 3],
    /// Curve tables, one per tube type (built in `prepare`; empty before).
    tables: Vec<CurveTable>,
    /// Selected tube.
    tube: TubeType,
    /// Bias control, −1 … +1 (cathode resistor × 2^(−bias)).
    bias: f64,
    /// Sample rate in Hz.
    fs: f64,
    /// Cathode voltage at the operating point (grid at 0 V DC).
    vk_volts: f64,
    /// Vpk at the operating point.
    vpk_q_volts: f64,
    /// dVpk/du at the operating point (negative: the stage inverts).
    slope_q: f64,
    /// Thevenin divider Rg/(Rsrc + Rg).
    kth: f64,
    /// Coupling capacitor pole step 1 − exp(−T/τ).
    k_lin: f64,
    /// Grid-current charging coefficient k_lin·Rg.
    k_ig: f64,
    /// Miller low-pass TPT gain g/(1 + g) (1 when there is no resistance).
    miller_g: f64,
    /// Miller low-pass corner in Hz (for the response).
    miller_hz: f64,
    /// Pole b of the ADAA compensation (1 + b)/(1 + b·z⁻¹).
    comp_b: f64,
    /// Stored-curve value at the current operating point (what the sample
    /// loop subtracts so that silence gives exactly 0), per [`MulAdd`]
    /// flavour (each evaluates the curve with its own rounding).
    dc: [f64; 2],
    /// State of the standalone `process`.
    state: StageLanes<f64>,
}

/// The per-sample state of one stage (per lane).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct StageLanes<L> {
    /// Coupling capacitor voltage (source volts).
    vc: L,
    /// Miller low-pass integrator state (table units, pre-emphasised).
    ms: L,
    /// ADAA compensation state: pre-emphasised grid drive relative to rest (table units).
    e: L,
    /// Grid current of the previous sample.
    ig_prev: L,
    /// Table coordinate of the previous sample (ADAA).
    q_prev: L,
}

impl<L: Lane> StageLanes<L> {
    /// At rest for a kernel (capacitors uncharged, previous sample at rest).
    fn rest<M>(k: &StageKernel<'_, M>) -> Self {
        Self {
            q_prev: L::splat(k.off),
            ..Self::default()
        }
    }

    /// Whether the state is finite.
    #[inline]
    fn finite(&self) -> bool {
        self.vc.finite()
            && self.ms.finite()
            && self.e.finite()
            && self.ig_prev.finite()
            && self.q_prev.finite()
    }

    /// Flush denormals of the decaying states.
    #[inline]
    fn flush(&mut self) {
        self.vc = self.vc.flush();
        self.ms = self.ms.flush();
        self.e = self.e.flush();
        self.ig_prev = self.ig_prev.flush();
    }
}

impl<L: Lane> StageLanes<L> {
    /// `self` in the low lanes of a pair, `o` in the high ones.
    #[inline(always)]
    fn pair(&self, o: &Self) -> StageLanes<L::Pair> {
        StageLanes {
            vc: L::pair(self.vc, o.vc),
            ms: L::pair(self.ms, o.ms),
            e: L::pair(self.e, o.e),
            ig_prev: L::pair(self.ig_prev, o.ig_prev),
            q_prev: L::pair(self.q_prev, o.q_prev),
        }
    }

    /// The low and high lanes of a pair.
    #[inline(always)]
    fn halves(p: StageLanes<L::Pair>) -> (Self, Self) {
        let (vc, ms, e, ig, q) = (
            L::halves(p.vc),
            L::halves(p.ms),
            L::halves(p.e),
            L::halves(p.ig_prev),
            L::halves(p.q_prev),
        );
        let half = |i: usize| {
            let pick = |v: (L, L)| if i == 0 { v.0 } else { v.1 };
            StageLanes {
                vc: pick(vc),
                ms: pick(ms),
                e: pick(e),
                ig_prev: pick(ig),
                q_prev: pick(q),
            }
        };
        (half(0), half(1))
    }
}

/// The coefficients of the linear part of a stage (see `linear_step`), in
/// lanes: all the same for one stage, or two stages' side by side.
#[derive(Clone, Copy, Debug)]
struct LinearCoefs<W> {
    /// Miller output per unit of (x − vc).
    kg: W,
    /// Miller state update per unit of (x − vc).
    kg2: W,
    /// Miller output per unit of state.
    m_y: W,
    /// Miller state decay.
    m_s: W,
    /// Minus the pre-emphasis pole b.
    neg_b: W,
    /// Coupling capacitor decay.
    v_a: W,
    /// Coupling capacitor pole step.
    k_lin: W,
    /// Grid-current charging coefficient.
    k_ig: W,
    /// Table coordinate at rest.
    off: W,
}

/// The linear part of one sample: coupling capacitor, Miller one-pole and
/// ADAA pre-emphasis; `igk` is the previous sample's grid current times
/// `k_ig`. Returns the table coordinate q. The recursions are written as
/// `state' = a·state + b·input` so each loop-carried chain is one multiply
/// and one add (one FMA when fused).
#[inline(always)]
fn linear_step<M: MulAdd, W: Arith>(c: &LinearCoefs<W>, st: &mut StageLanes<W>, x: W, igk: W) -> W {
    let m = mad::<M, W>;
    let d = x - st.vc;
    let y = m(st.ms, c.m_y, d * c.kg);
    st.ms = m(st.ms, c.m_s, d * c.kg2);
    st.e = m(st.e, c.neg_b, y);
    st.vc = m(st.vc, c.v_a, m(x, c.k_lin, igk));
    st.e + c.off
}

/// What the linear pass records of a chunk, per lane: its largest and
/// smallest table coordinate and step (the minima as maxima of negated
/// values, so that all four are `maxpd`s).
#[derive(Clone, Copy, Debug)]
struct ChunkStats<W> {
    /// Largest coordinate.
    q_max: W,
    /// Minus the smallest coordinate.
    q_min_neg: W,
    /// Minus the smallest step.
    step_min_neg: W,
    /// Largest step.
    step_max: W,
}

/// The linear recursions over a chunk, with the grid current of the sample
/// before it fed into its first sample only (a chunk that reaches grid
/// current is redone serially, see `finish_chunk`): `put(q, v)` takes the
/// table coordinate `v` of each input of `xs` with an item of `qs`; `st`
/// ends at the chunk's end with no grid current (its `q_prev` is left for
/// the ADAA). Returns the chunk's record.
#[inline(always)]
fn linear_pass<M: MulAdd, W: Arith, Q: Iterator>(
    c: &LinearCoefs<W>,
    st: &mut StageLanes<W>,
    xs: impl Iterator<Item = W>,
    qs: Q,
    mut put: impl FnMut(Q::Item, W),
) -> ChunkStats<W> {
    let big = W::splat(f64::MAX);
    let mut r = ChunkStats {
        q_max: -big,
        q_min_neg: -big,
        step_min_neg: -big,
        step_max: W::default(),
    };
    let mut s = *st;
    let mut q_prev = s.q_prev;
    let no_ig = W::default() * c.k_ig;
    let mut igk = s.ig_prev * c.k_ig;
    for (q, x) in qs.zip(xs) {
        let v = linear_step::<M, W>(c, &mut s, x, igk);
        igk = no_ig;
        r.q_max = r.q_max.hi(v);
        r.q_min_neg = r.q_min_neg.hi(-v);
        let step = (v - q_prev).abs();
        r.step_min_neg = r.step_min_neg.hi(-step);
        r.step_max = r.step_max.hi(step);
        q_prev = v;
        put(q, v);
    }
    s.ig_prev = W::default();
    *st = s;
    r
}

/// Borrowed table and copied coefficients of one stage for the sample loop,
/// all in table units (segments) where possible.
#[derive(Clone, Copy, Debug)]
struct StageKernel<'a, M> {
    /// Segments of the selected tube.
    seg: &'a Segments,
    /// How `a·b + c` is evaluated.
    mad: std::marker::PhantomData<M>,
    /// Miller output per unit of (x − vc): g·kth·(segments per volt)·(1 + b),
    /// with the Thevenin divider, table scaling and pre-emphasis gain folded in.
    kg: f64,
    /// Miller state update per unit of (x − vc): 2·kg.
    kg2: f64,
    /// Miller output per unit of state: 1 − g.
    m_y: f64,
    /// Miller state decay: 1 − 2g.
    m_s: f64,
    /// Coupling capacitor decay 1 − k_lin.
    v_a: f64,
    /// Pre-emphasis pole b.
    comp_b: f64,
    /// Table coordinate at rest (operating point).
    off: f64,
    /// Segment count as f64 (the clamp).
    last: f64,
    /// Curve value below the table (for the antiderivative's extension).
    f_lo: f64,
    /// Curve value above the table.
    f_hi: f64,
    /// Lowest table coordinate with any grid current (below: Ig = 0 exactly).
    ig_start: f64,
    /// dIg per table unit beyond the table end.
    ig_slope: f64,
    /// Coupling capacitor pole step.
    k_lin: f64,
    /// Grid-current charging coefficient.
    k_ig: f64,
    /// Curve value at rest, subtracted from the output.
    dc: f64,
}

impl<M: MulAdd> StageKernel<'_, M> {
    /// Antiderivative of the curve at table coordinate q, extended linearly
    /// beyond both ends (where the curve is held constant).
    #[inline(always)]
    fn big_f<L: Lane>(&self, q: L) -> L {
        self.eval(q).0
    }

    /// (F(q), t, segment): the antiderivative at q from one segment fetch.
    #[inline(always)]
    fn eval<L: Lane>(&self, q: L) -> (L, L, [L; SEG_LEN], L) {
        let s = L::splat;
        let qc = q.hi(s(0.0)).lo(s(self.last));
        let (t, c) = L::lookup(qc, self.seg);
        let over = (q - s(self.last)).hi(s(0.0));
        let big_f =
            antiderivative::<M, _>(&c, t) + q.lo(s(0.0)) * s(self.f_lo) + over * s(self.f_hi);
        (big_f, t, c, over)
    }

    /// The coefficients of `linear`, every lane the same.
    #[inline(always)]
    fn coefs<W: Arith>(&self) -> LinearCoefs<W> {
        let s = W::splat;
        LinearCoefs {
            kg: s(self.kg),
            kg2: s(self.kg2),
            m_y: s(self.m_y),
            m_s: s(self.m_s),
            neg_b: s(-self.comp_b),
            v_a: s(self.v_a),
            k_lin: s(self.k_lin),
            k_ig: s(self.k_ig),
            off: s(self.off),
        }
    }

    /// The linear part of one sample: coupling capacitor (with the previous
    /// sample's grid current), Miller one-pole and ADAA pre-emphasis. Returns
    /// the table coordinate q.
    #[inline(always)]
    fn linear<L: Lane>(&self, st: &mut StageLanes<L>, x: L) -> L {
        let c = self.coefs();
        let igk = st.ig_prev * c.k_ig;
        linear_step::<M, L>(&c, st, x, igk)
    }

    /// The linear pass over a chunk (see `finish_chunk`): `qs` takes the
    /// table coordinates of `xs`; returns the chunk's record.
    #[inline(always)]
    fn linear_chunk<L: Lane>(
        &self,
        st: &mut StageLanes<L>,
        xs: &[L],
        qs: &mut [L],
    ) -> ChunkStats<L> {
        let xs = xs.iter().copied();
        linear_pass::<M, L, _>(&self.coefs(), st, xs, qs.iter_mut(), |q, v| *q = v)
    }

    /// The linear passes of two stages over chunks of the same length in
    /// one loop, in the lanes of [`Lane::Pair`]: `self` over `xs` (state
    /// `st`), `k2` over `xs2` (state `st2`). The same arithmetic per lane
    /// as two `linear_chunk`s: about the cost of one, as each is bound by
    /// its instructions, not by the width of the registers.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn linear_chunk_pair<L: Lane>(
        &self,
        k2: &StageKernel<'_, M>,
        st: &mut StageLanes<L>,
        st2: &mut StageLanes<L>,
        xs: &[L],
        xs2: &[L],
        qs: &mut [L],
        qs2: &mut [L],
    ) -> (ChunkStats<L>, ChunkStats<L>) {
        let n = xs.len().min(xs2.len()).min(CHUNK);
        let (a, b): (LinearCoefs<L>, LinearCoefs<L>) = (self.coefs(), k2.coefs());
        let p = |f: fn(&LinearCoefs<L>) -> L| L::pair(f(&a), f(&b));
        let c = LinearCoefs {
            kg: p(|c| c.kg),
            kg2: p(|c| c.kg2),
            m_y: p(|c| c.m_y),
            m_s: p(|c| c.m_s),
            neg_b: p(|c| c.neg_b),
            v_a: p(|c| c.v_a),
            k_lin: p(|c| c.k_lin),
            k_ig: p(|c| c.k_ig),
            off: p(|c| c.off),
        };
        // The states joined, and the states and the record split, through
        // memory (`black_box`): built from or split into halves in
        // registers, they lead LLVM's SLP vectorizer to keep the loop in
        // two 128-bit halves.
        let mut sw = std::hint::black_box(st.pair(st2));
        let xw = xs[..n]
            .iter()
            .zip(&xs2[..n])
            .map(|(x, x2)| L::pair(*x, *x2));
        let qw = qs.iter_mut().zip(qs2.iter_mut());
        let stats = linear_pass::<M, L::Pair, _>(&c, &mut sw, xw, qw, |(q, q2), v| {
            (*q, *q2) = L::halves(v);
        });
        let (sw, stats) = std::hint::black_box((sw, stats));
        (*st, *st2) = StageLanes::halves(sw);
        let h = |v: L::Pair| L::halves(v);
        let ((a1, a2), (b1, b2), (c1, c2), (d1, d2)) = (
            h(stats.q_max),
            h(stats.q_min_neg),
            h(stats.step_min_neg),
            h(stats.step_max),
        );
        (
            ChunkStats {
                q_max: a1,
                q_min_neg: b1,
                step_min_neg: c1,
                step_max: d1,
            },
            ChunkStats {
                q_max: a2,
                q_min_neg: b2,
                step_min_neg: c2,
                step_max: d2,
            },
        )
    }

    /// First-order ADAA at q given the previous coordinate and antiderivative:
    /// `(F(q) − F(q_prev))/(q − q_prev)`, or the mid-point value for tiny
    /// steps. Returns (output, F(q), t, segment, overshoot beyond the table).
    #[inline(always)]
    fn adaa<L: Lane>(&self, q: L, q_prev: L, f_prev: L) -> (L, L, L, [L; SEG_LEN], L) {
        let s = L::splat;
        let (big_f, t, c, over) = self.eval(q);
        let dq = q - q_prev;
        let tm = t - dq * s(0.5);
        let f_mid = cubic::<M, _>(&c, tm);
        let out = L::pick_abs_gt(dq, ADAA_MIN_STEP, (big_f - f_prev) / dq, f_mid);
        (out - s(self.dc), big_f, t, c, over)
    }

    /// One sample, serially (grid current coupled): source voltage in, AC
    /// plate voltage out. `f_prev` is the antiderivative at `st.q_prev`.
    #[inline(always)]
    fn tick<L: Lane>(&self, st: &mut StageLanes<L>, f_prev: &mut L, x: L) -> L {
        let s = L::splat;
        let q = self.linear(st, x);
        let (out, big_f, t, c, over) = self.adaa(q, st.q_prev, *f_prev);
        st.q_prev = q;
        *f_prev = big_f;
        // Grid current is exactly zero below the diode's knee: skip its cubic
        // (a well-predicted branch; most samples never reach the knee). Below
        // the knee the segment's Ig coefficients are exactly zero, so the
        // cubic of a lane below the knee is exactly 0 as well.
        st.ig_prev = if q.any_gt(self.ig_start) {
            grid_cubic::<M, _>(&c, t) + over * s(self.ig_slope)
        } else {
            s(0.0)
        };
        out
    }

    /// A chunk of at most `CHUNK` input samples `xs` (`qs` is scratch for
    /// the table coordinates): `linear_chunk`, then `finish_chunk`.
    #[cfg(test)]
    fn process_chunk<L: Lane>(
        &self,
        st: &mut StageLanes<L>,
        f_prev: &mut L,
        xs: &[L],
        qs: &mut [L; CHUNK],
        post: impl FnMut(usize, L),
    ) -> L {
        let xs = &xs[..xs.len().min(CHUNK)];
        let saved = *st;
        let stats = self.linear_chunk(st, xs, &mut qs[..xs.len()]);
        self.finish_chunk(st, &saved, stats, f_prev, xs, &qs[..xs.len()], post)
    }

    /// Finish a chunk of at most `CHUNK` input samples `xs` after its
    /// linear pass (`linear_chunk`, or `linear_chunk_pair`), which left `st`
    /// at the chunk's end, the table coordinates in `qs` and its record in
    /// `stats`; `saved` is the state before it. `post(j, y)` takes output
    /// sample j (fused into this stage's ADAA loop; keep it free of
    /// recursions: one there, such as the output coupling, serialises the
    /// stereo quotient loop into 128-bit halves). When no sample of the
    /// chunk reaches grid current, the ADAA runs over `qs` as independent
    /// per-sample work; otherwise the chunk is redone serially from `saved`
    /// (the grid current charges the coupling capacitor one sample later).
    /// A chunk that stays inside the
    /// table skips the clamps and takes one of four ADAA loops by its steps:
    /// all exactly zero (silence: one value for the chunk), all at most
    /// `ADAA_MIN_STEP` (quiet tails: mid-point values only, no division),
    /// all above it (quotients only), or mixed (both and a pick). Silence and
    /// tails are therefore the cheapest chunks, not the dearest. All paths
    /// do identical arithmetic for each sample (bit-identical output).
    /// Returns the chunk's largest table coordinate per lane (the grid
    /// drive's peak, for the meters: Vgk rises monotonically with q).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn finish_chunk<L: Lane>(
        &self,
        st: &mut StageLanes<L>,
        saved: &StageLanes<L>,
        stats: ChunkStats<L>,
        f_prev: &mut L,
        xs: &[L],
        qs: &[L],
        mut post: impl FnMut(usize, L),
    ) -> L {
        let n = xs.len().min(qs.len()).min(CHUNK);
        let (xs, qs) = (&xs[..n], &qs[..n]);
        let big = L::splat(f64::MAX);
        let ChunkStats {
            q_max,
            q_min_neg,
            step_min_neg,
            step_max,
        } = stats;
        if q_max.any_gt(self.ig_start) {
            *st = *saved;
            let mut q_peak = -big;
            for (j, x) in xs.iter().enumerate() {
                post(j, self.tick(st, f_prev, *x));
                q_peak = q_peak.hi(st.q_prev);
            }
            return q_peak;
        }
        let mut fp = *f_prev;
        let in_range = !q_min_neg.any_gt(0.0) && !q_max.any_gt(self.last);
        let mut q_prev = st.q_prev;
        let s = L::splat;
        if in_range && !step_max.any_gt(ADAA_MIN_STEP) {
            // Silence and quiet tails: every step is below `ADAA_MIN_STEP`,
            // so every sample takes the mid-point value (no quotient, no
            // antiderivative except at the chunk's end). The same arithmetic
            // as `adaa` for each sample.
            if !step_max.any_gt(0.0) {
                // Every q equals the previous one: one value for the chunk.
                let q = q_prev;
                let (t, c) = L::lookup(q, self.seg);
                let tm = t - (q - q_prev) * s(0.5);
                let out = cubic::<M, _>(&c, tm) - s(self.dc);
                for j in 0..n {
                    post(j, out);
                }
                fp = antiderivative::<M, _>(&c, t);
            } else {
                q_prev = L::adaa_mids(self, qs, q_prev, &mut post);
                let (t, c) = L::lookup(q_prev, self.seg);
                fp = antiderivative::<M, _>(&c, t);
            }
        } else if in_range && (-step_min_neg).all_gt(ADAA_MIN_STEP) {
            // In range: the clamps and extensions are identities (adding
            // exact zeros), and |dq| > ADAA_MIN_STEP picks the quotient.
            (q_prev, fp) = L::adaa_quotients(self, qs, q_prev, fp, &mut post);
        } else if in_range {
            (q_prev, fp) = L::adaa_mixed(self, qs, q_prev, fp, &mut post);
        } else {
            for (j, q) in qs.iter().enumerate() {
                let (out, big_f, ..) = self.adaa(*q, q_prev, fp);
                post(j, out);
                q_prev = *q;
                fp = big_f;
            }
        }
        st.q_prev = q_prev;
        *f_prev = fp;
        q_max
    }

    /// Output at rest, computed exactly as `adaa` does for a zero step (so
    /// rest gives exactly 0).
    fn rest_value(&self) -> f64 {
        let q = 0.0 + self.off;
        let (_, t, c, _) = self.eval(q);
        let tm = t - 0.0 * 0.5;
        cubic::<M, _>(&c, tm)
    }
}

/// Samples per chunk of the block loop (stack buffers).
const CHUNK: usize = 64;

impl TriodeStage {
    /// A stage with the given circuit, fed from `source_ohms[tube]`. Allocates
    /// nothing until `prepare`.
    pub fn new(circuit: StageCircuit, source_ohms: [f64; 3]) -> Self {
        Self {
            circuit,
            source_ohms,
            tables: Vec::new(),
            tube: TubeType::Tube12AX7,
            bias: 0.0,
            fs: 48_000.0,
            vk_volts: 0.0,
            vpk_q_volts: 0.0,
            slope_q: 0.0,
            kth: 1.0,
            k_lin: 0.0,
            k_ig: 0.0,
            miller_g: 1.0,
            miller_hz: f64::INFINITY,
            comp_b: 0.0,
            dc: [0.0; 2],
            state: StageLanes::default(),
        }
    }

    fn grid_r(&self, tube: usize) -> f64 {
        let rs = self.source_ohms[tube];
        let rg = self.circuit.grid_leak_ohms;
        rs * rg / (rs + rg) + self.circuit.grid_stopper_ohms
    }

    /// Build the curve tables (allocates) and set the rate.
    pub fn prepare(&mut self, spec: &ProcessSpec) {
        if self.tables.is_empty() {
            let c = self.circuit;
            self.tables = TubeType::ALL
                .iter()
                .map(|tt| {
                    let t = tt.constants();
                    let (vk, _, _) = operating_point(&t, &c, c.cathode_ohms);
                    let vs = c.supply_volts - vk;
                    let lo = -3.5 * vs / t.mu - 1.0;
                    let r = self.grid_r(tt.index());
                    CurveTable::build(&t, vs, c.plate_ohms, r, lo, 40.0, -vk)
                })
                .collect();
        }
        self.fs = spec.sample_rate;
        self.update();
        self.reset();
    }

    /// Select tube and bias (no allocation). Returns true if anything changed.
    pub fn set_tube_bias(&mut self, tube: TubeType, bias: f64) -> bool {
        let bias = if bias.is_finite() {
            bias.clamp(-1.0, 1.0)
        } else {
            0.0
        };
        if tube == self.tube && bias == self.bias {
            return false;
        }
        self.tube = tube;
        self.bias = bias;
        self.update();
        true
    }

    /// Change the sample rate without allocating.
    pub fn set_sample_rate(&mut self, fs: f64) {
        self.fs = fs;
        self.update();
    }

    /// Recompute operating point and coefficients.
    fn update(&mut self) {
        let ti = self.tube.index();
        let Some(table) = self.tables.get(ti) else {
            return;
        };
        let c = self.circuit;
        let rk = c.cathode_ohms * (-self.bias).exp2();
        // Table-consistent operating point: Vk = Rk·(Vs − Vpk(−Vk))/Ra.
        let (mut lo, mut hi) = (0.0, table.vs_volts * rk / (rk + c.plate_ohms));
        for _ in 0..64 {
            let vk = 0.5 * (lo + hi);
            let ip = (table.vs_volts - table.eval(-vk).0) / c.plate_ohms;
            if vk > rk * ip {
                hi = vk;
            } else {
                lo = vk;
            }
        }
        self.vk_volts = 0.5 * (lo + hi);
        self.vpk_q_volts = table.eval(-self.vk_volts).0;
        self.slope_q = table.slope(-self.vk_volts);
        let rsrc = self.source_ohms[ti];
        let rg = c.grid_leak_ohms;
        self.kth = rg / (rsrc + rg);
        let tau = c.coupling_farads * (rsrc + rg);
        self.k_lin = -(-1.0 / (self.fs * tau)).exp_m1();
        self.k_ig = self.k_lin * rg;
        let t = self.tube.constants();
        let cin = t.cgk_farads + t.cgp_farads * (1.0 - self.slope_q);
        let r = self.grid_r(ti);
        self.miller_hz = if r > 0.0 {
            1.0 / (2.0 * PI * r * cin)
        } else {
            f64::INFINITY
        };
        let g = (PI * (self.miller_hz / self.fs).min(0.49)).tan();
        self.miller_g = if r > 0.0 { g / (1.0 + g) } else { 1.0 };
        self.comp_b = adaa_compensation(ADAA_FLAT_HZ, self.fs, ADAA_FLAT_DB);
        self.dc = [0.0; 2];
        self.dc = [
            self.kernel::<Unfused>().rest_value(),
            self.kernel::<Fused>().rest_value(),
        ];
    }

    /// Settle at the operating point (grid at 0 V, capacitor uncharged).
    pub fn reset(&mut self) {
        self.state = if self.tables.is_empty() {
            StageLanes::default()
        } else {
            StageLanes::rest(&self.kernel::<Unfused>())
        };
    }

    /// Copy of everything the per-sample loop needs (kept in registers).
    #[inline]
    fn kernel<M: MulAdd>(&self) -> StageKernel<'_, M> {
        let t = &self.tables[self.tube.index()];
        let n = t.seg.len();
        let last = &t.seg[n - 1].0;
        let kth = self.kth * t.inv_h * (1.0 + self.comp_b);
        let g = self.miller_g;
        StageKernel {
            seg: t.segments(),
            mad: std::marker::PhantomData,
            kg: g * kth,
            kg2: 2.0 * g * kth,
            m_y: 1.0 - g,
            m_s: 1.0 - 2.0 * g,
            v_a: 1.0 - self.k_lin,
            comp_b: self.comp_b,
            off: (-self.vk_volts - t.lo_volts) * t.inv_h,
            last: t.last,
            f_lo: t.seg[0].0[0],
            f_hi: last[0] + last[1] + last[2] + last[3],
            ig_start: (t.ig_start_volts - t.lo_volts) * t.inv_h,
            ig_slope: t.ig_slope_hi / t.inv_h,
            k_lin: self.k_lin,
            k_ig: self.k_ig,
            dc: self.dc[M::INDEX],
        }
    }

    /// Process a block in place (source volts in, AC plate volts out).
    pub fn process(&mut self, block: &mut [f64]) {
        if self.tables.is_empty() {
            block.fill(0.0);
            return;
        }
        let k = self.kernel::<Unfused>();
        let mut st = self.state;
        let mut f_prev = k.big_f(st.q_prev);
        for s in block.iter_mut() {
            *s = k.tick(&mut st, &mut f_prev, *s);
            // Per-sample flush: this standalone path is not the hot one, and
            // flushing per sample keeps it independent of block size.
            st.flush();
            if !st.finite() {
                st = StageLanes::rest(&k);
                f_prev = k.big_f(st.q_prev);
            }
        }
        self.state = st;
    }

    /// Static transfer from source voltage to AC plate voltage (capacitor
    /// uncharged, Miller ignored): the curve the editor can plot.
    pub fn transfer_curve(&self, x: f64) -> f64 {
        if self.tables.is_empty() {
            return 0.0;
        }
        self.tables[self.tube.index()]
            .eval(x * self.kth - self.vk_volts)
            .0
            - self.vpk_q_volts
    }

    /// Small-signal response from source voltage to AC plate voltage at the
    /// current sample rate (digital filters evaluated exactly, including the
    /// ADAA average (1 + z⁻¹)/2 and its compensation (1 + b)/(1 + b·z⁻¹)).
    pub fn response(&self, freq_hz: f64) -> Complex<f64> {
        let one = Complex::new(1.0, 0.0);
        let z1 = Complex::from_polar(1.0, -2.0 * PI * freq_hz / self.fs);
        let coupling = (one - z1) / (one - z1 * (1.0 - self.k_lin));
        let miller = if self.miller_g < 1.0 {
            let g = (PI * (self.miller_hz / self.fs).min(0.49)).tan();
            let s = Complex::new(0.0, (PI * freq_hz / self.fs).tan() / g);
            one / (s + 1.0)
        } else {
            one
        };
        let adaa = (one + z1) * 0.5 * (1.0 + self.comp_b) / (one + z1 * self.comp_b);
        coupling * miller * adaa * (self.kth * self.slope_q)
    }

    /// Operating point: (Vk, Vp, Ip) in volts, volts, amperes.
    pub fn operating_point(&self) -> (f64, f64, f64) {
        let vs = self
            .tables
            .get(self.tube.index())
            .map_or(0.0, |t| t.vs_volts);
        let ip = (vs - self.vpk_q_volts) / self.circuit.plate_ohms;
        (self.vk_volts, self.vpk_q_volts + self.vk_volts, ip)
    }

    /// DC shift of the grid caused by the charged coupling capacitor (0 at rest,
    /// negative after grid current): the "breathing" bias.
    pub fn grid_bias_volts(&self) -> f64 {
        -self.state.vc * self.kth
    }

    /// Grid-to-cathode voltage at table coordinate `q` (the grid drive u
    /// less the drop of the grid current across Rth + Rs): how the meters
    /// turn a peak coordinate into volts.
    fn vgk_at(&self, q: f64) -> f64 {
        let Some(t) = self.tables.get(self.tube.index()) else {
            return 0.0;
        };
        let u = t.lo_volts + q / t.inv_h;
        u - self.grid_r(self.tube.index()) * t.eval(u).1
    }

    /// Plate output resistance Ra ‖ rp at the operating point.
    pub fn output_ohms(&self) -> f64 {
        let (vk, vp, _) = self.operating_point();
        let (_, _, gp) = self
            .tube
            .constants()
            .plate_current_and_partials(-vk, vp - vk);
        let ra = self.circuit.plate_ohms;
        ra / (1.0 + ra * gp)
    }
}

/// The ADAA compensation keeps the stage flat to this frequency ...
const ADAA_FLAT_HZ: f64 = 20_000.0;
/// ... within this loss (dB).
const ADAA_FLAT_DB: f64 = 0.025;
// ---------------------------------------------------------------------------
// Small linear filters (coefficients here, state per lane in the caller)
// ---------------------------------------------------------------------------

/// 2nd-order Butterworth high-pass, TPT state-variable form (Zavalishin / Simper).
#[derive(Clone, Copy, Debug, Default)]
struct SvfHighPass {
    /// Pre-warped integrator gain tan(π fc/fs).
    g: f64,
    /// Damping 1/Q = √2.
    k: f64,
    /// Solver coefficients.
    a1: f64,
    /// Solver coefficients.
    a2: f64,
    /// Solver coefficients.
    a3: f64,
}

impl SvfHighPass {
    fn set(&mut self, fc: f64, fs: f64) {
        self.g = (PI * (fc / fs).min(0.49)).tan();
        self.k = std::f64::consts::SQRT_2;
        self.a1 = 1.0 / (1.0 + self.g * (self.g + self.k));
        self.a2 = self.g * self.a1;
        self.a3 = self.g * self.a2;
    }

    /// One sample; `ic` holds the two integrator states.
    #[inline(always)]
    fn tick<M: MulAdd, L: Lane>(&self, ic: &mut [L; 2], v0: L) -> L {
        let (s, m) = (L::splat, mad::<M, L>);
        let v3 = v0 - ic[1];
        let v1 = m(s(self.a1), ic[0], s(self.a2) * v3);
        let v2 = m(s(self.a3), v3, ic[1] + s(self.a2) * ic[0]);
        ic[0] = s(2.0) * v1 - ic[0];
        ic[1] = s(2.0) * v2 - ic[1];
        v0 - s(self.k) * v1 - v2
    }

    fn response(&self, freq_hz: f64, fs: f64) -> Complex<f64> {
        let s = Complex::new(0.0, (PI * (freq_hz / fs).min(0.4999)).tan() / self.g);
        s * s / (s * s + s * self.k + 1.0)
    }
}

/// One-pole TPT high-pass (output coupling capacitor).
#[derive(Clone, Copy, Debug, Default)]
struct OnePoleHighPass {
    /// Pre-warped gain g/(1 + g).
    big_g: f64,
    /// tan(π fc/fs), for the response.
    g: f64,
}

impl OnePoleHighPass {
    fn set(&mut self, fc: f64, fs: f64) {
        self.g = (PI * (fc / fs).min(0.49)).tan();
        self.big_g = self.g / (1.0 + self.g);
    }

    /// One sample; `s` is the integrator state. The TPT update
    /// `v = G(x − s), lp = v + s, s' = lp + v` written as
    /// `lp = G·x + (1 − G)·s`, `s' = 2G·x + (1 − 2G)·s` (one multiply and
    /// one add on the loop-carried chain).
    #[inline(always)]
    fn tick<M: MulAdd, L: Lane>(&self, s: &mut L, x: L) -> L {
        let (g, m) = (self.big_g, mad::<M, L>);
        let lp = m(*s, L::splat(1.0 - g), x * L::splat(g));
        *s = m(*s, L::splat(1.0 - 2.0 * g), x * L::splat(2.0 * g));
        x - lp
    }

    fn response(&self, freq_hz: f64, fs: f64) -> Complex<f64> {
        let s = Complex::new(0.0, (PI * (freq_hz / fs).min(0.4999)).tan() / self.g);
        s / (s + 1.0)
    }
}

// ---------------------------------------------------------------------------
// Preamp
// ---------------------------------------------------------------------------

/// Source resistance of stage 1: a 150 Ω mic reflected through a 1:10 input
/// transformer.
const INPUT_SOURCE_OHMS: f64 = 15e3;
/// Output coupling capacitor.
const OUTPUT_COUPLING_FARADS: f64 = 0.47e-6;
/// Load on the output coupling capacitor (output level pot / next input).
const OUTPUT_LOAD_OHMS: f64 = 220e3;
/// Time constant of the internal gain smoothing.
const GAIN_SMOOTHING_MS: f64 = 2.0;
/// Input voltages are clamped to ±this (far beyond any real mic input).
const INPUT_LIMIT_VOLTS: f64 = 1e4;

/// Which part of the preamp a call runs.
///
/// The preamp's two ends are linear: in front of stage 1 the input guard,
/// the smoothed input gain and the high-pass; behind stage 2 the output
/// coupling capacitor and the smoothed output gain. Nothing between them and
/// the resamplers is non-linear, so the chain runs them at the host rate,
/// around the oversampler ([`Preamp::set_rates`]): the same filters designed
/// for that rate, a quarter of the work at 4x. Alone, a preamp runs every
/// part at one rate ([`PreampPart::Whole`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreampPart {
    /// Everything, at one rate.
    Whole,
    /// The input end (guard, gain, high-pass), at the ends' rate.
    Front,
    /// The two triode stages and Level, at the stages' (oversampled) rate.
    Stages,
    /// The output end (coupling capacitor into the load, output gain), at
    /// the ends' rate.
    Back,
}

/// The preamp's linear ends (see [`PreampPart`]): coefficients, gains and
/// the sample counts that place their denormal flushes.
#[derive(Clone, Copy, Debug)]
struct Ends {
    /// Rate the ends run at, in Hz.
    fs: f64,
    /// Input high-pass.
    hpf: SvfHighPass,
    /// Whether the input high-pass runs.
    hpf_on: bool,
    /// Set when the high-pass was just switched on (its state must start at 0).
    hpf_restart: bool,
    /// Output coupling capacitor into the load.
    out_hp: OnePoleHighPass,
    /// Target linear input gain.
    in_gain_target: f64,
    /// Target output gain including the load divider.
    out_gain_target: f64,
    /// Smoothed input gain.
    in_gain: f64,
    /// Smoothed output gain.
    out_gain: f64,
    /// One-pole smoothing coefficient for the gains at `fs`.
    smooth_a: f64,
    /// Samples through the front since reset (flush positions).
    front_counter: u64,
    /// Samples through the back since reset.
    back_counter: u64,
}

impl Ends {
    fn new() -> Self {
        Self {
            fs: 48_000.0,
            hpf: SvfHighPass::default(),
            hpf_on: false,
            hpf_restart: false,
            out_hp: OnePoleHighPass::default(),
            in_gain_target: 1.0,
            out_gain_target: 1.0,
            in_gain: 1.0,
            out_gain: 1.0,
            smooth_a: 1.0,
            front_counter: 0,
            back_counter: 0,
        }
    }

    /// The input end over `xs` in place (at most up to the next multiple of
    /// `CHUNK` of the front's count, where its state is flushed).
    #[inline(always)]
    fn front<L: Lane, M: MulAdd>(&mut self, hpf: &mut [L; 2], xs: &mut [L]) {
        if self.hpf_restart {
            *hpf = [L::default(); 2];
            self.hpf_restart = false;
        }
        let (a, t) = (self.smooth_a, self.in_gain_target);
        with_smoothed_gain(&mut self.in_gain, t, a, xs, |v, g| {
            v.sanitize(INPUT_LIMIT_VOLTS) * L::splat(g)
        });
        if self.hpf_on {
            let f = self.hpf;
            for v in xs.iter_mut() {
                *v = f.tick::<M, _>(hpf, *v);
            }
        }
        self.front_counter += xs.len() as u64;
        if self.front_counter.is_multiple_of(CHUNK as u64) {
            *hpf = [hpf[0].flush(), hpf[1].flush()];
        }
    }

    /// The output end over `ys` in place (as `front`).
    #[inline(always)]
    fn back<L: Lane, M: MulAdd>(&mut self, s: &mut L, ys: &mut [L]) {
        let (a, t, f) = (self.smooth_a, self.out_gain_target, self.out_hp);
        with_smoothed_gain(&mut self.out_gain, t, a, ys, |y, g| {
            f.tick::<M, _>(s, y) * L::splat(g)
        });
        self.back_counter += ys.len() as u64;
        if self.back_counter.is_multiple_of(CHUNK as u64) {
            *s = s.flush();
        }
    }
}

/// `xs[j] = f(xs[j], g_j)`, with the gain `g` moving towards `target` by
/// one-pole smoothing per sample (`a`); a gain that has reached its target
/// stays there, and then the smoothing is skipped.
#[inline(always)]
fn with_smoothed_gain<L: Copy>(
    g: &mut f64,
    target: f64,
    a: f64,
    xs: &mut [L],
    mut f: impl FnMut(L, f64) -> L,
) {
    let mut v = *g;
    if v != target {
        for x in xs.iter_mut() {
            v = smooth(v, target, a);
            *x = f(*x, v);
        }
        *g = v;
    } else {
        for x in xs.iter_mut() {
            *x = f(*x, v);
        }
    }
}

/// Settings, stages (tables, coefficients) and gains shared by all channels.
#[derive(Clone, Debug)]
struct PreampCore {
    /// Current settings.
    settings: PreampSettings,
    /// Sample rate of the stages in Hz (oversampled).
    fs: f64,
    /// First triode stage (driven by the input transformer).
    stage1: TriodeStage,
    /// Second triode stage (driven by stage 1 through Level).
    stage2: TriodeStage,
    /// The linear ends.
    ends: Ends,
    /// Target linear Level.
    level_target: f64,
    /// Smoothed Level.
    level: f64,
    /// One-pole smoothing coefficient for Level at `fs`.
    smooth_a: f64,
    /// Samples through the stages since reset, for the periodic denormal
    /// flush (tied to sample index, so block size does not matter).
    counter: u64,
    /// The CPU has AVX2 and FMA (checked in `prepare`): the block loop runs
    /// as an AVX2 + FMA build of the same code, with fused multiply-adds.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    has_fma: bool,
}

/// The per-lane state of the whole preamp.
#[derive(Clone, Copy, Debug, Default)]
struct ChannelState<L> {
    /// Stage 1.
    s1: StageLanes<L>,
    /// Stage 2.
    s2: StageLanes<L>,
    /// Input high-pass integrators.
    hpf: [L; 2],
    /// Output coupling integrator.
    out: L,
    /// Largest table coordinate of each stage since the last
    /// `take_grid_peak_volts` (0, the table's bottom, when none).
    q_peak: [L; 2],
}

impl<L: Lane> ChannelState<L> {
    fn rest(core: &PreampCore) -> Self {
        Self {
            s1: StageLanes::rest(&core.stage1.kernel::<Unfused>()),
            s2: StageLanes::rest(&core.stage2.kernel::<Unfused>()),
            ..Self::default()
        }
    }

    fn finite(&self) -> bool {
        self.s1.finite()
            && self.s2.finite()
            && self.hpf[0].finite()
            && self.hpf[1].finite()
            && self.out.finite()
    }
}

/// Length of the next chunk of at most `len` samples that ends at or before
/// the next multiple of `CHUNK` of `counter`.
fn chunk_len(len: usize, counter: u64) -> usize {
    len.min(CHUNK - (counter % CHUNK as u64) as usize)
}

impl PreampCore {
    fn new() -> Self {
        let s1 = TriodeStage::new(StageCircuit::REFERENCE, [INPUT_SOURCE_OHMS; 3]);
        // Stage 2 source: stage 1's Ra ‖ rp, per tube at bias 0.
        let mut src2 = [0.0; 3];
        for tt in TubeType::ALL {
            let t = tt.constants();
            let c = StageCircuit::REFERENCE;
            let (vk, vpk, _) = operating_point(&t, &c, c.cathode_ohms);
            let (_, _, gp) = t.plate_current_and_partials(-vk, vpk);
            src2[tt.index()] = c.plate_ohms / (1.0 + c.plate_ohms * gp);
        }
        let s2 = TriodeStage::new(StageCircuit::REFERENCE, src2);
        let mut p = Self {
            settings: PreampSettings::default(),
            fs: 48_000.0,
            stage1: s1,
            stage2: s2,
            ends: Ends::new(),
            level_target: 1.0,
            level: 1.0,
            smooth_a: 1.0,
            counter: 0,
            has_fma: false,
        };
        p.apply_settings(PreampSettings::default(), true);
        p
    }

    fn prepared(&self) -> bool {
        !(self.stage1.tables.is_empty() || self.stage2.tables.is_empty())
    }

    fn prepare(&mut self, spec: &ProcessSpec) {
        self.has_fma = cpu_has_fma();
        self.stage1.prepare(spec);
        self.stage2.prepare(spec);
        self.set_rates(spec.sample_rate, spec.sample_rate);
        self.apply_settings(self.settings, true);
    }

    fn smoothing_coefficient(fs: f64) -> f64 {
        -(-1.0 / (fs * GAIN_SMOOTHING_MS * 1e-3)).exp_m1()
    }

    /// The stages at `fs`, the ends at `ends_fs`.
    fn set_rates(&mut self, fs: f64, ends_fs: f64) {
        self.fs = fs;
        self.stage1.set_sample_rate(fs);
        self.stage2.set_sample_rate(fs);
        self.smooth_a = Self::smoothing_coefficient(fs);
        self.ends.fs = ends_fs;
        if let Some(fc) = self.settings.hpf.cutoff_hz() {
            self.ends.hpf.set(fc, ends_fs);
        }
        self.update_output_filter();
        self.ends.smooth_a = Self::smoothing_coefficient(ends_fs);
    }

    fn update_output_filter(&mut self) {
        let ro = self.stage2.output_ohms();
        let fc = 1.0 / (2.0 * PI * OUTPUT_COUPLING_FARADS * (OUTPUT_LOAD_OHMS + ro));
        self.ends.out_hp.set(fc, self.ends.fs);
        self.ends.out_gain_target =
            db_to_gain(self.settings.output_db) * OUTPUT_LOAD_OHMS / (OUTPUT_LOAD_OHMS + ro);
    }

    fn apply_settings(&mut self, s: PreampSettings, force: bool) {
        let fin =
            |v: f64, d: f64, lo: f64, hi: f64| if v.is_finite() { v.clamp(lo, hi) } else { d };
        let d = PreampSettings::default();
        let s = PreampSettings {
            gain_db: fin(s.gain_db, d.gain_db, 0.0, 60.0),
            level_db: fin(s.level_db, d.level_db, -80.0, 0.0),
            output_db: fin(s.output_db, d.output_db, -80.0, 24.0),
            bias: fin(s.bias, 0.0, -1.0, 1.0),
            ..s
        };
        let old = self.settings;
        self.settings = s;
        let tb1 = self.stage1.set_tube_bias(s.tube, s.bias);
        let tb2 = self.stage2.set_tube_bias(s.tube, s.bias);
        let ends = &mut self.ends;
        if force || s.hpf != old.hpf {
            ends.hpf_on = s.hpf.cutoff_hz().is_some();
            if let Some(fc) = s.hpf.cutoff_hz() {
                ends.hpf.set(fc, ends.fs);
            }
            if old.hpf == HighPass::Off {
                ends.hpf_restart = true;
            }
        }
        ends.in_gain_target = db_to_gain(s.gain_db);
        self.level_target = db_to_gain(s.level_db);
        if force || tb1 || tb2 || s.output_db != old.output_db {
            self.update_output_filter();
        }
        if force {
            self.ends.in_gain = self.ends.in_gain_target;
            self.level = self.level_target;
            self.ends.out_gain = self.ends.out_gain_target;
        }
    }

    fn reset(&mut self) {
        self.stage1.reset();
        self.stage2.reset();
        let ends = &mut self.ends;
        ends.hpf_restart = false;
        ends.in_gain = ends.in_gain_target;
        ends.out_gain = ends.out_gain_target;
        (ends.front_counter, ends.back_counter) = (0, 0);
        self.level = self.level_target;
        self.counter = 0;
    }

    /// The block loop of `part`, shared by mono (L = f64) and stereo
    /// (L = F2). Works in chunks of at most `CHUNK` samples that end at
    /// multiples of `CHUNK` of the part's absolute sample count, where its
    /// states are flushed of denormals, so the result does not depend on the
    /// block partition. `load(i, v)` fills `v` with the input samples from
    /// index `i` on, `store(i, v)` writes the output samples `v` from index
    /// `i` on (whole chunks, so the sample loops need no bounds checks).
    #[inline(always)]
    fn run<L: Lane, M: MulAdd>(
        &mut self,
        part: PreampPart,
        state: &mut ChannelState<L>,
        len: usize,
        mut load: impl FnMut(usize, &mut [L]),
        mut store: impl FnMut(usize, &[L]),
    ) {
        let mut st = *state;
        let mut buf = [L::default(); CHUNK];
        let mut i0 = 0;
        match part {
            PreampPart::Front | PreampPart::Back => {
                let front = part == PreampPart::Front;
                while i0 < len {
                    let ends = &mut self.ends;
                    let counter = if front {
                        ends.front_counter
                    } else {
                        ends.back_counter
                    };
                    let n = chunk_len(len - i0, counter);
                    load(i0, &mut buf[..n]);
                    if front {
                        ends.front::<L, M>(&mut st.hpf, &mut buf[..n]);
                    } else {
                        ends.back::<L, M>(&mut st.out, &mut buf[..n]);
                    }
                    store(i0, &buf[..n]);
                    i0 += n;
                }
            }
            PreampPart::Whole | PreampPart::Stages => {
                let whole = part == PreampPart::Whole;
                let (k1, k2) = (self.stage1.kernel::<M>(), self.stage2.kernel::<M>());
                let (mut f1, mut f2) = (k1.big_f(st.s1.q_prev), k2.big_f(st.s2.q_prev));
                let (a, tl) = (self.smooth_a, self.level_target);
                let mut gl = self.level;
                let mut counter = self.counter;
                // Chunk buffers, written before they are read in every
                // chunk: `buf` stage 1's input, `mid`
                // stage 1's output times Level (stage 2's input), `out`
                // stage 2's output, `qs1`, `qs2` the stages' table
                // coordinates.
                let (mut mid, mut out) = ([L::default(); CHUNK], [L::default(); CHUNK]);
                let (mut qs1, mut qs2) = ([L::default(); CHUNK], [L::default(); CHUNK]);
                // A pipeline: stage 2's linear pass over chunk k runs in one
                // loop with stage 1's over chunk k + 1 (when as long), in
                // the lanes of `L::Pair`. `ahead` carries stage 1's state
                // before that pass and its record to the next chunk.
                let mut ahead: Option<(StageLanes<L>, ChunkStats<L>)> = None;
                while i0 < len {
                    let n = chunk_len(len - i0, counter);
                    let (saved1, stats1) = match ahead.take() {
                        Some(done) => done,
                        None => {
                            load(i0, &mut buf[..n]);
                            if whole {
                                self.ends.front::<L, M>(&mut st.hpf, &mut buf[..n]);
                            }
                            let saved = st.s1;
                            (saved, k1.linear_chunk(&mut st.s1, &buf[..n], &mut qs1[..n]))
                        }
                    };
                    let mut gain_level = [gl; CHUNK];
                    // A Level that has reached its target stays there.
                    if gl != tl {
                        for g in &mut gain_level[..n] {
                            gl = smooth(gl, tl, a);
                            *g = gl;
                        }
                    }
                    // (`j < n <= CHUNK`; the masks spare the sample loops
                    // a bounds check, which would keep them from unrolling.)
                    let p1 = k1.finish_chunk(
                        &mut st.s1,
                        &saved1,
                        stats1,
                        &mut f1,
                        &buf[..n],
                        &qs1[..n],
                        |j, y| {
                            let j = j & (CHUNK - 1);
                            mid[j] = y * L::splat(gain_level[j]);
                        },
                    );
                    let end = counter + n as u64;
                    if end.is_multiple_of(CHUNK as u64) {
                        st.s1.flush();
                    }
                    let saved2 = st.s2;
                    let next = i0 + n;
                    let stats2 = if next < len && chunk_len(len - next, end) == n {
                        // Stage 1's input for the next chunk replaces this
                        // chunk's (no longer needed).
                        load(next, &mut buf[..n]);
                        if whole {
                            self.ends.front::<L, M>(&mut st.hpf, &mut buf[..n]);
                        }
                        let saved = st.s1;
                        let (s1, s2) = k1.linear_chunk_pair(
                            &k2,
                            &mut st.s1,
                            &mut st.s2,
                            &buf[..n],
                            &mid[..n],
                            &mut qs1[..n],
                            &mut qs2[..n],
                        );
                        ahead = Some((saved, s1));
                        s2
                    } else {
                        k2.linear_chunk(&mut st.s2, &mid[..n], &mut qs2[..n])
                    };
                    let p2 = k2.finish_chunk(
                        &mut st.s2,
                        &saved2,
                        stats2,
                        &mut f2,
                        &mid[..n],
                        &qs2[..n],
                        |j, y| out[j & (CHUNK - 1)] = y,
                    );
                    if whole {
                        self.ends.back::<L, M>(&mut st.out, &mut out[..n]);
                    }
                    st.q_peak = [st.q_peak[0].hi(p1), st.q_peak[1].hi(p2)];
                    store(i0, &out[..n]);
                    counter = end;
                    i0 = next;
                    if counter.is_multiple_of(CHUNK as u64) {
                        st.s2.flush();
                    }
                }
                self.level = gl;
                self.counter = counter;
            }
        }
        if !st.finite() {
            st = ChannelState::rest(self);
        }
        *state = st;
    }

    fn small_signal_response(&self, freq_hz: f64) -> Complex<f64> {
        let ends = &self.ends;
        let hp = if ends.hpf_on {
            ends.hpf.response(freq_hz, ends.fs)
        } else {
            Complex::new(1.0, 0.0)
        };
        hp * self.stage1.response(freq_hz)
            * self.stage2.response(freq_hz)
            * ends.out_hp.response(freq_hz, ends.fs)
            * (ends.in_gain_target * self.level_target * ends.out_gain_target)
    }

    fn transfer_curve(&self, v_in: f64) -> f64 {
        let p1 = self.stage1.transfer_curve(v_in * self.ends.in_gain_target);
        self.stage2.transfer_curve(p1 * self.level_target) * self.ends.out_gain_target
    }

    fn operating_points(&self) -> [(f64, f64, f64); 2] {
        [self.stage1.operating_point(), self.stage2.operating_point()]
    }
}

/// What [`Preamp`] and [`StereoPreamp`] share: both are a [`PreampCore`]
/// (settings, tables, coefficients) plus per-sample state, and differ only in
/// how many channels the state carries and how `process` runs.
macro_rules! preamp_front {
    ($ty:ident, $lanes:expr) => {
        impl Default for $ty {
            fn default() -> Self {
                Self::new()
            }
        }

        impl $ty {
            /// An unprepared preamp with default settings.
            pub fn new() -> Self {
                Self {
                    core: PreampCore::new(),
                    state: ChannelState::default(),
                }
            }

            /// Build tables (allocates, ~10 ms once) and set the rate;
            /// settles the operating point.
            pub fn prepare(&mut self, spec: &ProcessSpec) {
                self.core.prepare(spec);
                self.reset();
            }

            /// Recompute every rate-dependent coefficient without allocating:
            /// every part at `fs`.
            pub fn set_sample_rate(&mut self, fs: f64) {
                self.core.set_rates(fs, fs);
            }

            /// Run the stages at `fs` and the linear ends at `ends_fs` (the
            /// host rate around an oversampler; see [`PreampPart`]). Never
            /// allocates.
            pub fn set_rates(&mut self, fs: f64, ends_fs: f64) {
                self.core.set_rates(fs, ends_fs);
            }

            /// The settings in use.
            pub fn settings(&self) -> PreampSettings {
                self.core.settings
            }

            /// Apply settings; recomputes only what changed. Never allocates.
            pub fn set_settings(&mut self, s: PreampSettings) {
                self.core.apply_settings(s, false);
            }

            /// Apply settings with no internal gain smoothing (Gain, Level
            /// and the output divider jump to their targets): for an
            /// instance that a crossfade brings in, which is the
            /// smoothing. Never allocates.
            pub fn set_settings_at_once(&mut self, s: PreampSettings) {
                self.core.apply_settings(s, true);
            }

            /// Back to the settled operating point (silence in gives exactly
            /// zero out).
            pub fn reset(&mut self) {
                self.core.reset();
                self.state = if self.core.prepared() {
                    ChannelState::rest(&self.core)
                } else {
                    ChannelState::default()
                };
            }

            /// Channels carried (lanes of the state).
            pub const CHANNELS: usize = $lanes;

            /// Linear small-signal gain from mic input to output at 1 kHz.
            pub fn small_signal_gain(&self) -> f64 {
                self.core.small_signal_response(1000.0).norm()
            }

            /// Small-signal response at `freq_hz` (filters, ADAA averaging and
            /// its pre-emphasis included).
            pub fn small_signal_response(&self, freq_hz: f64) -> Complex<f64> {
                self.core.small_signal_response(freq_hz)
            }

            /// Static transfer curve: output volts for a constant mic-input
            /// voltage (for plotting).
            pub fn transfer_curve(&self, v_in: f64) -> f64 {
                self.core.transfer_curve(v_in)
            }

            /// Operating points (Vk, Vp, Ip) of both stages at rest.
            pub fn operating_points(&self) -> [(f64, f64, f64); 2] {
                self.core.operating_points()
            }

            /// Most positive grid-to-cathode voltage `[channel][stage]` since
            /// the last restart (or `reset`), in volts. Before any sample it
            /// reads the table's bottom (deep cut-off, far below the bias).
            pub fn grid_peak_volts(&self) -> [[f64; 2]; $lanes] {
                let peaks = self.state.q_peak;
                let (s1, s2) = (&self.core.stage1, &self.core.stage2);
                std::array::from_fn(|c| [s1.vgk_at(peaks[0].lane(c)), s2.vgk_at(peaks[1].lane(c))])
            }

            /// Restart the grid peaks.
            pub fn restart_grid_peaks(&mut self) {
                self.state.q_peak = Default::default();
            }

            /// [`Self::grid_peak_volts`], then restart them.
            pub fn take_grid_peak_volts(&mut self) -> [[f64; 2]; $lanes] {
                let peaks = self.grid_peak_volts();
                self.restart_grid_peaks();
                peaks
            }
        }
    };
}

/// The tube mic preamp, one per channel. Runs at the oversampled rate.
///
/// Per-sample cost: see the module header; [`StereoPreamp`] runs both
/// channels of a stereo pair in SIMD lanes for well under twice the cost of one.
#[derive(Clone, Debug)]
pub struct Preamp {
    /// Settings, tables, coefficients, gains.
    core: PreampCore,
    /// Per-sample state.
    state: ChannelState<f64>,
}

preamp_front!(Preamp, 1);

impl Preamp {
    /// Process one channel in place: mic-input volts in, output volts out.
    pub fn process(&mut self, block: &mut [f64]) {
        self.process_part(PreampPart::Whole, block);
    }

    /// Run one part of the preamp over one channel in place.
    pub fn process_part(&mut self, part: PreampPart, block: &mut [f64]) {
        #[cfg(target_arch = "x86_64")]
        if self.core.has_fma {
            // SAFETY: `has_fma` is set only when the CPU reports AVX2 and FMA.
            unsafe { self.process_fma(part, block) };
            return;
        }
        self.process_any::<Unfused>(part, block);
    }

    /// `process_any` compiled with AVX2 and FMA, fused (as the stereo
    /// preamp, so that a channel of either is the same bit for bit).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn process_fma(&mut self, part: PreampPart, block: &mut [f64]) {
        self.process_any::<Fused>(part, block);
    }

    #[inline(always)]
    fn process_any<M: MulAdd>(&mut self, part: PreampPart, block: &mut [f64]) {
        if !self.core.prepared() {
            block.fill(0.0);
            return;
        }
        let len = block.len();
        let dst = std::cell::Cell::from_mut(block).as_slice_of_cells();
        self.core.run::<f64, M>(
            part,
            &mut self.state,
            len,
            |i, v| {
                for (d, s) in v.iter_mut().zip(&dst[i..]) {
                    *d = s.get();
                }
            },
            |i, v| {
                for (d, s) in dst[i..].iter().zip(v) {
                    d.set(*s);
                }
            },
        );
    }

    /// Grid bias shift of each stage caused by grid current (0 V at rest).
    pub fn grid_bias_volts(&self) -> [f64; 2] {
        [
            -self.state.s1.vc * self.core.stage1.kth,
            -self.state.s2.vc * self.core.stage2.kth,
        ]
    }
}

/// Two channels of the preamp with one set of controls, processed together
/// in SIMD lanes (`f64x2`; AVX2 + FMA when the CPU has it): about the cost of one [`Preamp`]. Each
/// channel's output is bit-identical to a mono [`Preamp`] with the same
/// settings fed the same channel.
#[derive(Clone, Debug)]
pub struct StereoPreamp {
    /// Settings, tables, coefficients, gains (shared by both channels).
    core: PreampCore,
    /// Per-sample state, lane 0 left, lane 1 right.
    state: ChannelState<F2>,
}

preamp_front!(StereoPreamp, 2);

impl StereoPreamp {
    /// Process both channels in place (same length; the shorter length is
    /// processed if they differ).
    pub fn process_stereo(&mut self, left: &mut [f64], right: &mut [f64]) {
        self.process_stereo_part(PreampPart::Whole, left, right);
    }

    /// Run one part of the preamp over both channels in place.
    pub fn process_stereo_part(&mut self, part: PreampPart, left: &mut [f64], right: &mut [f64]) {
        #[cfg(target_arch = "x86_64")]
        if self.core.has_fma {
            // SAFETY: `has_fma` is set only when the CPU reports AVX2 and FMA.
            unsafe { self.process_stereo_fma(part, left, right) };
            return;
        }
        self.process_stereo_any::<Unfused>(part, left, right);
    }

    /// `process_stereo_any` compiled with AVX2 and FMA, fused.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn process_stereo_fma(&mut self, part: PreampPart, left: &mut [f64], right: &mut [f64]) {
        self.process_stereo_any::<Fused>(part, left, right);
    }

    #[inline(always)]
    fn process_stereo_any<M: MulAdd>(
        &mut self,
        part: PreampPart,
        left: &mut [f64],
        right: &mut [f64],
    ) {
        if !self.core.prepared() {
            left.fill(0.0);
            right.fill(0.0);
            return;
        }
        let len = left.len().min(right.len());
        let (l, r) = (&mut left[..len], &mut right[..len]);
        let (lc, rc) = (
            std::cell::Cell::from_mut(l).as_slice_of_cells(),
            std::cell::Cell::from_mut(r).as_slice_of_cells(),
        );
        self.core.run::<F2, M>(
            part,
            &mut self.state,
            len,
            |i, v: &mut [F2]| {
                for (d, (l, r)) in v.iter_mut().zip(lc[i..].iter().zip(&rc[i..])) {
                    *d = F2([l.get(), r.get()]);
                }
            },
            |i, v: &[F2]| {
                for (s, (l, r)) in v.iter().zip(lc[i..].iter().zip(&rc[i..])) {
                    l.set(s.0[0]);
                    r.set(s.0[1]);
                }
            },
        );
    }

    /// Grid bias shift `[channel][stage]` caused by grid current (0 V at rest).
    pub fn grid_bias_volts(&self) -> [[f64; 2]; 2] {
        let (k1, k2) = (self.core.stage1.kth, self.core.stage2.kth);
        std::array::from_fn(|c| [-self.state.s1.vc.0[c] * k1, -self.state.s2.vc.0[c] * k2])
    }
}
// ---------------------------------------------------------------------------
// Auto-gain
// ---------------------------------------------------------------------------

/// Time constant of the loudness estimators.
pub const AUTO_GAIN_TIME_CONSTANT_MS: f64 = 3000.0;
/// Samples between gain updates (the gain ramps linearly in between); the
/// loudness averages are updated once per hop from the hop's power sums.
/// 64 (1.3 ms at 48 kHz): the corrections move with 250 ms and 3 s time
/// constants and are ramped per sample, so updating every 1.3 ms rather
/// than 0.67 ms only moves the corners of an already smooth ramp, and the
/// per-hop work (divisions, square roots, the filter states' flush) costs
/// half as much per sample as at 32 (about 1.5 % of the live chain).
const AUTO_GAIN_HOP: u64 = 64;

/// Auto-gain settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AutoGainSettings {
    /// When false, `process` leaves the signal untouched.
    pub enabled: bool,
    /// Expected linear gain from reference to processed (e.g.
    /// `Preamp::small_signal_gain()` times anything linear after it): the static
    /// part of the compensation, applied instantly.
    pub static_gain: f64,
}

impl Default for AutoGainSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            static_gain: 1.0,
        }
    }
}

/// ITU-R BS.1770 K-weighting (pre-filter shelf + RLB high-pass) at any rate,
/// from the analog prototypes (f0 1681.97 Hz, G +4.0 dB, Q 0.7072; f0 38.14 Hz,
/// Q 0.5003) via the bilinear transform; at 48 kHz this reproduces the
/// coefficients tabulated in BS.1770. Runs the reference and the processed
/// signal together in the two lanes of an `F2` (same coefficients).
#[derive(Clone, Copy, Debug, Default)]
struct KWeighting {
    /// Shelf b0, b1, b2, a1, a2 (a0 = 1).
    shelf: [f64; 5],
    /// High-pass a1, a2 (numerator 1, −2, 1).
    hp: [f64; 2],
    /// Shelf states (transposed direct form II).
    zs: [F2; 2],
    /// High-pass states.
    zh: [F2; 2],
}

impl KWeighting {
    fn coefficients(fs: f64) -> ([f64; 5], [f64; 5]) {
        let (f0, g_db, q) = (
            1_681.974_450_955_533,
            3.999_843_853_973_347,
            0.707_175_236_955_419_6,
        );
        let k = (PI * f0 / fs).tan();
        let vh = 10f64.powf(g_db / 20.0);
        let vb = vh.powf(0.499_666_774_154_541_6);
        let a0 = 1.0 + k / q + k * k;
        let shelf = [
            (vh + vb * k / q + k * k) / a0,
            2.0 * (k * k - vh) / a0,
            (vh - vb * k / q + k * k) / a0,
            2.0 * (k * k - 1.0) / a0,
            (1.0 - k / q + k * k) / a0,
        ];
        let (f0, q) = (38.135_470_876_024_44, 0.500_327_037_323_877_3);
        let k = (PI * f0 / fs).tan();
        let a0 = 1.0 + k / q + k * k;
        let hp = [
            1.0,
            -2.0,
            1.0,
            2.0 * (k * k - 1.0) / a0,
            (1.0 - k / q + k * k) / a0,
        ];
        (shelf, hp)
    }

    fn set(&mut self, fs: f64) {
        let (s, h) = Self::coefficients(fs);
        self.shelf = s;
        self.hp = [h[3], h[4]];
    }

    /// One sample of both lanes.
    #[inline(always)]
    fn tick(&mut self, x: F2) -> F2 {
        k_tick(
            &self.shelf,
            &self.hp,
            &mut self.zs,
            &mut self.zh,
            x,
            F2::splat,
        )
    }

    fn reset(&mut self) {
        self.zs = [F2::default(); 2];
        self.zh = [F2::default(); 2];
    }

    fn flush(&mut self) {
        for z in self.zs.iter_mut().chain(self.zh.iter_mut()) {
            *z = if z.finite() { z.flush() } else { F2::default() };
        }
    }
}

/// One K-weighting sample with the coefficients `shelf`, `hp` on the states
/// `zs`, `zh`, for any lane type: [`KWeighting`] (two lanes) and
/// [`LoudnessQuad`] (four) run the same operations in the same order, so
/// every lane's value is the same whichever runs it.
#[inline(always)]
fn k_tick<T>(
    shelf: &[f64; 5],
    hp: &[f64; 2],
    zs: &mut [T; 2],
    zh: &mut [T; 2],
    x: T,
    s: fn(f64) -> T,
) -> T
where
    T: Copy + std::ops::Add<Output = T> + std::ops::Sub<Output = T> + std::ops::Mul<Output = T>,
{
    let c = shelf;
    // Grouped so the loop-carried chain through y is one multiply and
    // one subtraction per state (the input terms are added off it).
    let y = s(c[0]) * x + zs[0];
    zs[0] = (s(c[1]) * x + zs[1]) - s(c[3]) * y;
    zs[1] = s(c[2]) * x - s(c[4]) * y;
    let x = y;
    let y = x + zh[0];
    zh[0] = zh[1] - s(2.0) * x - s(hp[0]) * y;
    zh[1] = x - s(hp[1]) * y;
    y
}

/// Two [`LoudnessPair`]s (a stereo pair's channels) K-weighted together in
/// four lanes: pair `a`'s signals in lanes 0 and 1, pair `b`'s in lanes 2
/// and 3. Each lane computes exactly what its pair's own
/// [`LoudnessPair::weigh`] computes, but the two channels' latency-bound
/// recursions overlap. Use: [`Self::load`] at the start of a hop's samples,
/// [`Self::weigh`] per sample, [`Self::store`], then advance and end each
/// pair's hop as usual.
#[derive(Clone, Copy, Debug)]
pub struct LoudnessQuad {
    /// Shelf coefficients (shared).
    shelf: [f64; 5],
    /// High-pass coefficients (shared).
    hp: [f64; 2],
    /// Shelf states of the four lanes.
    zs: [F4; 2],
    /// High-pass states of the four lanes.
    zh: [F4; 2],
    /// The hop's sums of squares of the four lanes.
    acc: F4,
}

impl LoudnessQuad {
    /// The states of `a` and `b` side by side, or `None` when they cannot
    /// run together (different rates, or different positions in the hop).
    #[inline(always)]
    pub fn load(a: &LoudnessPair, b: &LoudnessPair) -> Option<Self> {
        if a.k.shelf != b.k.shelf || a.k.hp != b.k.hp || a.counter != b.counter {
            return None;
        }
        // Through memory (`black_box`), here and in `store`: joined from
        // and split into halves in registers, the states lead LLVM's SLP
        // vectorizer to run the four lanes as two 128-bit halves with
        // shuffles between them.
        Some(std::hint::black_box(Self {
            shelf: a.k.shelf,
            hp: a.k.hp,
            zs: [
                F4::join(a.k.zs[0], b.k.zs[0]),
                F4::join(a.k.zs[1], b.k.zs[1]),
            ],
            zh: [
                F4::join(a.k.zh[0], b.k.zh[0]),
                F4::join(a.k.zh[1], b.k.zh[1]),
            ],
            acc: F4::join(a.acc, b.acc),
        }))
    }

    /// Hand the states back to `a` and `b` (the pairs they were loaded from).
    #[inline(always)]
    pub fn store(&self, a: &mut LoudnessPair, b: &mut LoudnessPair) {
        let q = std::hint::black_box(*self);
        for i in 0..2 {
            (a.k.zs[i], b.k.zs[i]) = (q.zs[i].lo_half(), q.zs[i].hi_half());
            (a.k.zh[i], b.k.zh[i]) = (q.zh[i].lo_half(), q.zh[i].hi_half());
        }
        (a.acc, b.acc) = (q.acc.lo_half(), q.acc.hi_half());
    }

    /// [`LoudnessPair::weigh`] of `[a.a, a.b, b.a, b.b]`: K-weight one
    /// sample of the four signals, add their squares to the hop's sums and
    /// return the K-weighted values. Non-finite input counts as 0.
    #[inline(always)]
    pub fn weigh(&mut self, x: [f64; 4]) -> [f64; 4] {
        self.weigh_finite(x.map(|v| if v.is_finite() { v } else { 0.0 }))
    }

    /// [`Self::weigh`] of input the caller knows to be finite (as
    /// [`LoudnessPair::weigh_finite`]).
    #[inline(always)]
    pub fn weigh_finite(&mut self, x: [f64; 4]) -> [f64; 4] {
        let x = F4(x);
        let kw = k_tick(
            &self.shelf,
            &self.hp,
            &mut self.zs,
            &mut self.zh,
            x,
            F4::splat,
        );
        self.acc = self.acc + kw * kw;
        kw.0
    }
}

/// Two K-weighted (BS.1770) loudness estimates averaged alike: the shared
/// estimator of [`AutoGain`] and of the chain's level-matched compare.
///
/// Per sample both signals run through the K-weighting together (the two
/// lanes of an `F2`) and their squares are summed; every
/// `AUTO_GAIN_HOP` (64) samples, counted from reset so the block size does
/// not matter, the hop's mean powers move one-pole averages with a 3 s time
/// constant. Over the first seconds the average is a cumulative mean,
/// started as if 0.5 s of zeros had been averaged: both powers are biased
/// alike, so their ratio is not, and early transients move it less. Hops in
/// which both signals stay below −240 dB are skipped, so in silence the
/// averages hold. Latency 0; never allocates.
#[derive(Clone, Copy, Debug)]
pub struct LoudnessPair {
    /// K-weighting of signal a (lane 0) and signal b (lane 1).
    k: KWeighting,
    /// Sum over the current hop of the squared K-weighted signals.
    acc: F2,
    /// Smoothed K-weighted powers of a and b.
    power: [f64; 2],
    /// Steady-state averaging coefficient per hop.
    alpha: f64,
    /// Samples averaged so far (for the cumulative-mean start).
    n: f64,
    /// 0.5 s in samples: the head start of the cumulative mean.
    warm_samples: f64,
    /// Sample index since reset (hops are tied to it).
    counter: u64,
}

impl Default for LoudnessPair {
    fn default() -> Self {
        Self::new()
    }
}

impl LoudnessPair {
    /// Samples per hop (the averages move once per hop).
    pub const HOP: usize = AUTO_GAIN_HOP as usize;

    /// An estimator at 48 kHz with empty averages.
    pub fn new() -> Self {
        let mut l = Self {
            k: KWeighting::default(),
            acc: F2::default(),
            power: [0.0; 2],
            alpha: 0.0,
            n: 0.0,
            warm_samples: 24_000.0,
            counter: 0,
        };
        l.set_sample_rate(48_000.0);
        l
    }

    /// Recompute coefficients for a new rate without allocating.
    pub fn set_sample_rate(&mut self, fs: f64) {
        self.k.set(fs);
        self.alpha = -(-(AUTO_GAIN_HOP as f64) / (fs * AUTO_GAIN_TIME_CONSTANT_MS * 1e-3)).exp_m1();
        self.warm_samples = 0.5 * fs;
    }

    /// Forget the history.
    pub fn reset(&mut self) {
        self.k.reset();
        self.acc = F2::default();
        self.power = [0.0; 2];
        self.n = 0.0;
        self.counter = 0;
    }

    /// Scale everything measured of signal b by `f` (a power ratio), as
    /// if b had always been `√f` times as loud.
    pub fn scale_b(&mut self, f: f64) {
        self.power[1] *= f;
        self.acc.0[1] *= f;
    }

    /// The smoothed K-weighted mean-square powers of a and b.
    pub fn powers(&self) -> [f64; 2] {
        self.power
    }

    /// Samples left in the current hop (1 … 32).
    #[inline]
    pub fn hop_left(&self) -> usize {
        AUTO_GAIN_HOP as usize - (self.counter % AUTO_GAIN_HOP) as usize
    }

    /// Position in the current hop of the next sample (0 … 31).
    #[inline]
    pub fn hop_phase(&self) -> usize {
        (self.counter % AUTO_GAIN_HOP) as usize
    }

    /// K-weight one sample of both signals and add their squares to the
    /// hop's sums; returns the K-weighted values. Non-finite input counts
    /// as 0.
    #[inline(always)]
    pub fn weigh(&mut self, a: f64, b: f64) -> (f64, f64) {
        let fin = |v: f64| if v.is_finite() { v } else { 0.0 };
        self.weigh_finite(fin(a), fin(b))
    }

    /// [`Self::weigh`] without the check, for input the caller knows to be
    /// finite (it saves a sixth of a loop that is mostly this). Should a
    /// non-finite value come through anyway, it does no lasting harm: the
    /// hop's end zeroes non-finite filter states and drops a non-finite
    /// hop (at worst restarting the estimate).
    #[inline(always)]
    pub fn weigh_finite(&mut self, a: f64, b: f64) -> (f64, f64) {
        let kw = self.k.tick(F2([a, b]));
        self.acc = self.acc + kw * kw;
        (kw.0[0], kw.0[1])
    }

    /// Count `n` samples weighed (at most `hop_left()`); true when they
    /// end the hop, after which the caller must call `end_hop`.
    #[inline]
    pub fn advance(&mut self, n: usize) -> bool {
        self.counter += n as u64;
        self.counter.is_multiple_of(AUTO_GAIN_HOP)
    }

    /// End of a hop: fold the hop's mean powers into the averages. Returns
    /// the averaging coefficient used, or `None` for a silent hop (the
    /// averages hold), so a caller can average its own hop sums alike.
    pub fn end_hop(&mut self) -> Option<f64> {
        let inv = 1.0 / AUTO_GAIN_HOP as f64;
        let (m_a, m_b) = (self.acc.0[0] * inv, self.acc.0[1] * inv);
        self.acc = F2::default();
        self.k.flush();
        let folded = if m_a > 1e-24 || m_b > 1e-24 {
            self.n += AUTO_GAIN_HOP as f64;
            let a = self
                .alpha
                .max(AUTO_GAIN_HOP as f64 / (self.n + self.warm_samples));
            self.power[0] += a * (m_a - self.power[0]);
            self.power[1] += a * (m_b - self.power[1]);
            Some(a)
        } else {
            None
        };
        if !(self.power[0].is_finite() && self.power[1].is_finite()) {
            let counter = self.counter;
            self.reset();
            self.counter = counter;
            return None;
        }
        folded
    }
}

/// Loudness matching of the preamp output to its input, at the HOST rate
/// (after downsampling). Latency 0.
///
/// Gain = `1/static_gain` (instant, follows the Gain/Level/Output knobs)
/// × a slow correction for compression at high drive:
/// `corr² = (P_ref/P_proc) · (P_ref/P_out)`, where P are K-weighted
/// (BS.1770) mean squares of the reference, of the statically compensated
/// processed signal and of the output, all smoothed by identical one-pole
/// averages with a 3 s time constant (a [`LoudnessPair`] for the first two,
/// the same coefficients for the third). The second factor
/// feeds back the loudness already delivered, so the integrated loudness
/// converges to the reference's even while the compression changes.
/// Per sample only the two K-weightings (run together in SIMD lanes) and
/// three squared sums run; every 64 samples the averages take the hop's
/// mean powers (hops in which both signals stay below −240 dB are skipped),
/// and the correction is recomputed, smoothed with 250 ms and ramped
/// linearly per sample: after the first second it moves ≤ 0.04 dB per 10 ms
/// even on drums at extreme drive (no pumping). In silence the averages
/// hold, so the gain holds. Block size does not matter (hops are tied to
/// the sample count).
///
/// Measured (tests): integrated K-weighted loudness within 0.5 dB on pink
/// noise and on an 8 s music-like signal over Gain 0…60 dB × Level
/// −60…0 dB. Limitation: at extreme drive on material whose loudness
/// changes over several seconds early in a short excerpt, a causal matcher
/// cannot know the future; it converges on longer material.
#[derive(Clone, Debug)]
pub struct AutoGain {
    /// Settings in use.
    settings: AutoGainSettings,
    /// Host sample rate.
    fs: f64,
    /// K-weighted powers of the reference (a) and of the statically
    /// compensated processed signal (b).
    loudness: LoudnessPair,
    /// Sum over the current hop of the squared K-weighted output.
    acc_out: f64,
    /// Smoothed K-weighted power of the output (after the correction): the
    /// loudness already delivered, fed back so the integrated loudness
    /// converges to the reference's.
    p_out: f64,
    /// Per-hop smoothing of the correction (250 ms time constant).
    beta: f64,
    /// Correction at the start of the current hop.
    corr_from: f64,
    /// Correction at the end of the current hop.
    corr_to: f64,
    /// Whether a correction has been estimated since reset.
    has_estimate: bool,
}

impl Default for AutoGain {
    fn default() -> Self {
        Self::new()
    }
}

impl AutoGain {
    /// Unprepared auto-gain (48 kHz).
    pub fn new() -> Self {
        let mut a = Self {
            settings: AutoGainSettings::default(),
            fs: 48_000.0,
            loudness: LoudnessPair::new(),
            acc_out: 0.0,
            p_out: 0.0,
            beta: 1.0,
            corr_from: 1.0,
            corr_to: 1.0,
            has_estimate: false,
        };
        a.set_sample_rate(48_000.0);
        a
    }

    /// Set the host rate (no allocation here either).
    pub fn prepare(&mut self, spec: &ProcessSpec) {
        self.set_sample_rate(spec.sample_rate);
        self.reset();
    }

    /// Recompute coefficients for a new host rate without allocating.
    pub fn set_sample_rate(&mut self, fs: f64) {
        self.fs = fs;
        self.loudness.set_sample_rate(fs);
        self.beta = -(-(AUTO_GAIN_HOP as f64) / (fs * 0.25)).exp_m1();
    }

    /// Apply settings.
    pub fn set_settings(&mut self, s: AutoGainSettings) {
        let g = if s.static_gain.is_finite() && s.static_gain > 1e-12 {
            s.static_gain
        } else {
            1.0
        };
        self.settings = AutoGainSettings {
            static_gain: g,
            ..s
        };
    }

    /// Forget the loudness history.
    pub fn reset(&mut self) {
        self.loudness.reset();
        self.acc_out = 0.0;
        self.p_out = 0.0;
        self.corr_from = 1.0;
        self.corr_to = 1.0;
        self.has_estimate = false;
    }

    /// Current total gain (static compensation × correction).
    pub fn gain(&self) -> f64 {
        self.corr_to / self.settings.static_gain
    }

    /// End of a hop: fold the hop's mean powers into the averages and move
    /// the correction.
    fn end_hop(&mut self) {
        let m_out = self.acc_out / AUTO_GAIN_HOP as f64;
        self.acc_out = 0.0;
        if let Some(a) = self.loudness.end_hop() {
            self.p_out += a * (m_out - self.p_out);
        }
        let [p_ref, p_proc] = self.loudness.powers();
        if !self.has_estimate && p_ref > 1e-30 && p_proc > 1e-30 {
            // First estimate: use it at once, do not ramp from the neutral 1.
            self.corr_to = (p_ref / p_proc).sqrt().clamp(1e-6, 1e6);
            self.has_estimate = true;
        }
        self.corr_from = self.corr_to;
        if self.has_estimate && p_ref > 1e-30 && p_proc > 1e-30 && self.p_out > 1e-30 {
            let fair = p_ref / p_proc;
            // Feedback on the loudness delivered so far: if the last
            // seconds came out louder than the reference, lean lower.
            let debt = (p_ref / self.p_out).clamp(0.25, 4.0);
            let target = (fair * debt).sqrt().clamp(1e-6, 1e6);
            // Never more than 6 dB from where the estimate points: a burst
            // of changes (automation of everything at once) must not leave
            // the correction far off while it glides.
            self.corr_to = self.corr_to.clamp(0.5 * target, 2.0 * target);
            self.corr_to += self.beta * (target - self.corr_to);
        }
        if !(self.p_out.is_finite() && self.corr_to.is_finite()) {
            self.reset_estimate();
        }
    }

    /// Hand the correction over to a new processed signal: the correction
    /// grows by `h` (the caller's measure of the new signal against the
    /// reference) and the processed signal's loudness history shrinks
    /// alike, so the estimate stays consistent. Never allocates.
    pub fn hand_over(&mut self, h: f64) {
        if !(h.is_finite() && h > 0.0) {
            return;
        }
        // (Within the range a correction may take.)
        self.corr_from = (self.corr_from * h).clamp(1e-6, 1e6);
        self.corr_to = (self.corr_to * h).clamp(1e-6, 1e6);
        self.loudness.scale_b(1.0 / (h * h));
        // The new correction is the fair one (the caller measured it against
        // the reference): no loudness debt is carried over, or the dips of
        // the crossfades that brought it (a polarity flip passes through
        // silence) would be paid back as extra gain.
        if self.has_estimate {
            self.p_out = self.loudness.powers()[0];
        }
    }

    /// Forget the estimate after non-finite arithmetic (keeps the hop phase).
    fn reset_estimate(&mut self) {
        self.p_out = 0.0;
        self.corr_from = 1.0;
        self.corr_to = 1.0;
        self.has_estimate = false;
    }

    /// [`Self::process`] of two channels (a stereo pair) at once, their
    /// K-weightings in the four lanes of a [`LoudnessQuad`]: each channel's
    /// result is bit-identical to its own `process`. All four slices the
    /// same length (otherwise, and when the two cannot run together, each
    /// channel runs on its own).
    #[inline(always)]
    pub fn process_pair(
        a: &mut AutoGain,
        b: &mut AutoGain,
        (ref_a, proc_a): (&[f64], &mut [f64]),
        (ref_b, proc_b): (&[f64], &mut [f64]),
    ) {
        let n = ref_a.len();
        let same_len = proc_a.len() == n && ref_b.len() == n && proc_b.len() == n;
        if !(same_len && a.settings.enabled && b.settings.enabled) {
            a.process(ref_a, proc_a);
            b.process(ref_b, proc_b);
            return;
        }
        let (comp_a, comp_b) = (1.0 / a.settings.static_gain, 1.0 / b.settings.static_gain);
        let fin = |v: f64| if v.is_finite() { v } else { 0.0 };
        let mut start = 0;
        while start < n {
            let Some(mut quad) = LoudnessQuad::load(&a.loudness, &b.loudness) else {
                a.process(&ref_a[start..], &mut proc_a[start..]);
                b.process(&ref_b[start..], &mut proc_b[start..]);
                return;
            };
            let phase = a.loudness.hop_phase();
            let take = a.loudness.hop_left().min(n - start);
            let end = start + take;
            let step_a = (a.corr_to - a.corr_from) / AUTO_GAIN_HOP as f64;
            let step_b = (b.corr_to - b.corr_from) / AUTO_GAIN_HOP as f64;
            let (mut acc_a, mut acc_b) = (a.acc_out, b.acc_out);
            let (from_a, from_b) = (a.corr_from, b.corr_from);
            let samples = ref_a[start..end]
                .iter()
                .zip(proc_a[start..end].iter_mut())
                .zip(ref_b[start..end].iter().zip(proc_b[start..end].iter_mut()));
            for (j, ((ra, pa), (rb, pb))) in samples.enumerate() {
                let xa = fin(*pa) * comp_a;
                let xb = fin(*pb) * comp_b;
                let k = quad.weigh([*ra, xa, *rb, xb]);
                let t = (phase + j + 1) as f64;
                let corr_a = from_a + step_a * t;
                let corr_b = from_b + step_b * t;
                let (ko_a, ko_b) = (k[1] * corr_a, k[3] * corr_b);
                acc_a += ko_a * ko_a;
                acc_b += ko_b * ko_b;
                *pa = xa * corr_a;
                *pb = xb * corr_b;
            }
            quad.store(&mut a.loudness, &mut b.loudness);
            (a.acc_out, b.acc_out) = (acc_a, acc_b);
            if a.loudness.advance(take) {
                a.end_hop();
            }
            if b.loudness.advance(take) {
                b.end_hop();
            }
            start = end;
        }
    }

    /// `processed` *= auto gain, measured against `reference_in` (same length;
    /// the shorter length is processed if they differ).
    pub fn process(&mut self, reference_in: &[f64], processed: &mut [f64]) {
        if !self.settings.enabled {
            return;
        }
        let comp = 1.0 / self.settings.static_gain;
        let n = reference_in.len().min(processed.len());
        let (mut r, mut p) = (&reference_in[..n], &mut processed[..n]);
        while !r.is_empty() {
            let phase = self.loudness.hop_phase();
            let take = self.loudness.hop_left().min(r.len());
            let (rh, rt) = r.split_at(take);
            let (ph, pt) = std::mem::take(&mut p).split_at_mut(take);
            let step = (self.corr_to - self.corr_from) / AUTO_GAIN_HOP as f64;
            let (mut acc_out, mut loud) = (self.acc_out, self.loudness);
            let fin = |v: f64| if v.is_finite() { v } else { 0.0 };
            for (j, (rv, pv)) in rh.iter().zip(ph.iter_mut()).enumerate() {
                let x = fin(*pv) * comp;
                let (_, kp) = loud.weigh(*rv, x);
                let corr = self.corr_from + step * (phase + j + 1) as f64;
                let ko = kp * corr;
                acc_out += ko * ko;
                *pv = x * corr;
            }
            (self.acc_out, self.loudness) = (acc_out, loud);
            if self.loudness.advance(take) {
                self.end_hop();
            }
            r = rt;
            p = pt;
        }
    }
}
