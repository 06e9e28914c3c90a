//! Tube mic preamp: gain switch, high-pass, two common-cathode triode stages
//! with an interstage Level control, output coupling and output level.
//! [`Preamp`] is one channel; [`StereoPreamp`] is two channels with one set
//! of controls in SIMD lanes.
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
//! Both stages are the `docs/DESIGN.md` reference stage (B+ 250 V, Ra 100 kΩ,
//! Rk 1.5 kΩ bypassed, grid leak Rg 1 MΩ, coupling capacitor 47 nF). Stage 1 is
//! fed by the mic input transformer secondary (15 kΩ: a 150 Ω mic reflected
//! through 1:10); stage 2 by stage 1's plate, whose source resistance is
//! Ra ‖ rp of the selected tube. Tube type swaps the valve in the same circuit
//! ("tube rolling"), so a 12AU7 gives less gain and more headroom.
//!
//! # Where things are
//!
//! - `koren.rs`: the triode equation (Koren 1996), its partial derivatives,
//!   the grid-current diode and the Newton solvers.
//! - `table.rs`: the static curve of a stage, solved once in `prepare`, as
//!   cubic Hermite segments with their antiderivative.
//! - `adaa.rs`: the antiderivative anti-aliasing of that curve (the
//!   quotient, its pre-emphasis, its loops per lane width).
//! - `stage.rs`: one triode stage ([`TriodeStage`]): circuit, operating
//!   point, coefficients, small-signal response.
//! - `grid_blend.rs`: stage 2's grid current behind stage 1's plate as
//!   it is at each sample (the plate's output resistance along its curve).
//! - `kernel.rs`: the per-sample update of a stage and the chunked,
//!   pipelined loop that runs it; what it costs.
//! - `ends.rs`: the linear ends (input guard, gain and high-pass; output
//!   coupling and gain).
//! - `preamp.rs`: the preamp ([`Preamp`], [`StereoPreamp`]) and its block
//!   loop.
//!
//! The lane types the loops are written in are in [`crate::dsp::simd`]; the
//! loudness matching that compensates the preamp's gain (auto-gain, the
//! level-matched compare) is in [`crate::dsp::loudness`].

mod adaa;
mod cathode;
mod ends;
mod grid_blend;
mod kernel;
mod koren;
mod preamp;
mod stage;
mod table;

#[cfg(test)]
mod tests;

pub use ends::PreampPart;
// Shared with the solid-state preamp (`crate::dsp::solid`).
pub(crate) use adaa::adaa_compensation;
pub(crate) use ends::{smooth, OnePoleHighPass, SvfHighPass};
pub use koren::{KorenTriode, GRID_CONDUCTION_VOLTS};
pub use preamp::{Preamp, PreampLanes, StereoPreamp};
pub use stage::{StageCircuit, TriodeStage};

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

    /// Position in [`Self::ALL`] (and in the per-tube tables).
    pub(crate) fn index(self) -> usize {
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
    /// Interstage Level between stage 1 and stage 2, −80 … 0 dB (the
    /// plugin's control spans −60 … 0 dB). Low Level with high Gain is
    /// "dirty but quiet".
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
    /// Output level, −80 … +24 dB (the plugin's control spans −36 … +24 dB).
    pub output_db: f64,
}

impl PreampSettings {
    /// Within the ranges a preamp takes (Gain 0 … 60 dB, Level −80 … 0 dB,
    /// output −80 … +24 dB, bias −1 … +1); a value that is not finite takes
    /// its default.
    pub fn clamped(self) -> Self {
        let fin =
            |v: f64, d: f64, lo: f64, hi: f64| if v.is_finite() { v.clamp(lo, hi) } else { d };
        let d = PreampSettings::default();
        PreampSettings {
            gain_db: fin(self.gain_db, d.gain_db, 0.0, 60.0),
            level_db: fin(self.level_db, d.level_db, -80.0, 0.0),
            output_db: fin(self.output_db, d.output_db, -80.0, 24.0),
            bias: fin(self.bias, 0.0, -1.0, 1.0),
            ..self
        }
    }
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
