//! Passive DI box: a step-down transformer (Radial JDI / Jensen JT-DB-E
//! style, 12:1) with an input pad, a source model, the preamp load, core
//! saturation with Jiles-Atherton hysteresis, and ground-loop hum.
//!
//! # Equivalent circuit (everything referred to the primary, n = turns ratio)
//!
//! ```text
//!  source            pad (optional)     transformer (T model)                 load
//!  Rs   Ls           Ra                 Rp          Ll' = n^2 Ll   R2=n^2 Rsec
//! -/\/\-UUUU-+------/\/\--+------------/\/\--+------UUUU-----/\/\-----+----+--> Vout*n
//!  |         |            |                  |                        |    |
//! (Vs)      Cs           Rb                 Lm (J-A core)   C' = C/n^2 R' = n^2 RL
//!  |         |            |                  |                        |    |
//! -+---------+------------+------------------+------------------------+----+
//! ```
//!
//! * Source: a line out is `Rs` = 100 ohm; a keyboard/consumer out 1 kohm; a
//!   passive pickup is `Rs` = 7 kohm DCR in series with `Ls` = 2.5 H and its
//!   winding capacitance, 120 pF (pickups measure 80 … 200 pF; H. Lemme,
//!   "The Secrets of Electric Guitar Pickups"). The cable from the source to
//!   the DI (`cable_m` metres, default 3) adds 100 pF per metre (usual
//!   instrument cable: 8 … 10 ft measure about 300 pF): `Cs` = C_winding +
//!   100 pF/m · length, across the DI input. With the pickup, `Ls` and `Cs`
//!   resonate at 1/(2π√(Ls Cs)): 4.9 kHz on 3 m, 3.0 kHz on 10 m, 1.8 kHz
//!   on 30 m (the shift a guitarist hears from a long lead), damped by the
//!   DI's input impedance. A line out's 100 ohm barely sees it: 30 m (3 nF)
//!   make a corner at 530 kHz, −0.006 dB at 20 kHz.
//! * Pad: an L-pad (`Ra` series, `Rb` shunt) at the DI input. `Rb` is 1 kohm
//!   (-15 dB) or 200 ohm (-30 dB); `Ra` is computed so the pad is exactly its
//!   nominal value with a 100 ohm source into the rated 1.5 kohm load (how a
//!   manufacturer picks the resistor). With a high-impedance source the pad
//!   attenuates more, as a real resistive pad does.
//! * Transformer (JT-DB-E-like estimates, 12:1): primary DCR `Rp` = 2 kohm,
//!   secondary DCR `Rsec` = 15 ohm, small-signal magnetising inductance `Lm` =
//!   400 H, secondary-side leakage `Ll` = 2.65 mH and secondary-side
//!   winding + cable capacitance `C` = 660 pF (with the 1.5 kohm load:
//!   resonance 120 kHz, Q 0.75). The 10:1 and 8:1 variants use the same core
//!   and secondary with fewer primary turns, so `Lm` scales with n^2 and the
//!   saturation flux with n. The input impedance at 1 kHz is about 148 kohm into a
//!   1 kohm load (218 kohm into 1.5 kohm).
//!
//! # Gain normalisation (why 12:1 is exactly -21.58 dB)
//!
//! The copper resistances make a loaded transformer lose a little (0.08 dB
//! here). As manufacturers do, the number of turns is trimmed so that the
//! voltage ratio into the rated load (1.5 kohm) from a 0 ohm source is
//! exactly the nominal ratio: the effective turns ratio `n_t` solves
//! `n_t = n * RL / (Rp / n_t^2 + Rsec + RL)`. Every other effect stays
//! physical: a 100 ohm source costs 0.004 dB, a 1 kohm source 0.04 dB, a
//! lighter load gains a little, a 150 ohm load loses about 1.6 dB.
//!
//! # Where each part lives
//!
//! - here: the settings, the component values and every other constant;
//! - `transformer/di.rs`: `DiBox`, the stage: its circuit (`DiBox::
//!   components`), the hum;
//! - `transformer/model.rs`: what the DI and the mic input transformer
//!   share: the circuit's linear model as a filter cascade, the core coupled
//!   to it, decimated, and the per-sample update (`TransformerModel`);
//! - `transformer/mic_input.rs`: `MicTransformer`, the 1:10 mic input
//!   transformer (its circuit, constants and their derivation);
//! - `transformer/linear.rs`: the linear model's maths (polynomial roots,
//!   the direct-form I section, the magnitude-matched design);
//! - `transformer/ja.rs`: the Jiles-Atherton core (its equation and its
//!   implicit step), generic over the core material.
//!
//! # Core material
//!
//! The DI's core (`DI_CORE`) is 80 % nickel (permalloy/mu-metal):
//! Ms = 6.4e5 A/m (0.8 T), a = 3 A/m, k = 1 A/m, alpha' = 0.05 (kept small
//! so the irreversible denominator stays positive) and c = 0.9 (a large
//! reversible fraction keeps low-level hysteresis distortion small: nickel
//! cores are clean at low level). `lambda_s` (the saturation flux linkage,
//! N A mu0 Ms) = 0.10 V s for the 12:1 primary is calibrated so the box
//! reaches 1 % THD at 20 Hz at +19.0 dBu from a 100 ohm source (Jensen's
//! rating for the JT-DB-E); I_a = a l/N follows from Lm. Measured (192 kHz,
//! line source, 12:1): THD at 20 Hz 0.02 % at 0 dBu, 0.39 % at +17, 1 % at
//! +19.0, 2.1 % at +20; at 1 kHz and +20 dBu 0.00005 %. The coercive field
//! shows as h = +-0.033 at zero flux on the rising/falling branches.
//!
//! Latency: 0 samples. Units: volts in (the source's open-circuit voltage),
//! volts out (across the preamp input).

mod di;
pub(crate) mod ja;
mod linear;
mod mic_input;
mod model;
#[cfg(test)]
mod tests;

pub use di::DiBox;
use ja::JaMaterial;
pub use mic_input::{MicTransformer, MicTransformerSettings, NOMINAL_RATIO, RATED_IN_Z_OHMS};

// ---------------------------------------------------------------- settings --

/// Turns ratio of the DI transformer (primary : secondary).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TurnsRatio {
    /// 12:1, the JT-DB-E in the Radial JDI: -21.58 dB.
    #[default]
    R12,
    /// 10:1: -20 dB.
    R10,
    /// 8:1: -18.06 dB.
    R8,
}

impl TurnsRatio {
    /// The nominal voltage ratio n (primary / secondary).
    pub fn ratio(self) -> f64 {
        match self {
            TurnsRatio::R12 => 12.0,
            TurnsRatio::R10 => 10.0,
            TurnsRatio::R8 => 8.0,
        }
    }
}

/// Input pad of the DI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DiPad {
    /// No pad.
    #[default]
    Off,
    /// -15 dB (the JDI's pad).
    Db15,
    /// -30 dB.
    Db30,
}

impl DiPad {
    /// Nominal attenuation in dB (0, -15 or -30).
    pub fn nominal_db(self) -> f64 {
        match self {
            DiPad::Off => 0.0,
            DiPad::Db15 => -15.0,
            DiPad::Db30 => -30.0,
        }
    }
}

/// Mains frequency of the hum injected when the ground lift is off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mains {
    /// 50 Hz (Europe, most of Asia and Africa).
    #[default]
    Hz50,
    /// 60 Hz (Americas, parts of Asia).
    Hz60,
}

impl Mains {
    /// Frequency in Hz.
    pub fn hz(self) -> f64 {
        match self {
            Mains::Hz50 => 50.0,
            Mains::Hz60 => 60.0,
        }
    }
}

/// What feeds the DI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DiSource {
    /// Low-impedance line out (interface, mixer): 100 ohm.
    #[default]
    LineOut,
    /// Keyboard or consumer output: 1 kohm.
    Keyboard,
    /// Passive guitar/bass pickup: 2.5 H, 7 kohm DCR, 120 pF winding.
    PassivePickup,
}

impl DiSource {
    /// (series resistance ohms, series inductance henry, shunt capacitance
    /// farad) of the source itself, without its cable.
    fn parts(self) -> (f64, f64, f64) {
        match self {
            DiSource::LineOut => (REF_SOURCE_OHMS, 0.0, 0.0),
            DiSource::Keyboard => (1000.0, 0.0, 0.0),
            DiSource::PassivePickup => (7000.0, 2.5, PICKUP_WINDING_FARAD),
        }
    }
}

/// Cable capacitance per metre (instrument cable, 30 pF per foot).
pub const CABLE_FARAD_PER_M: f64 = 100e-12;

/// Longest cable, metres (the `cable_m` range).
pub const MAX_CABLE_M: f64 = 30.0;

/// A passive pickup's winding capacitance.
pub const PICKUP_WINDING_FARAD: f64 = 120e-12;

/// Settings of the DI box, in physical units.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DiSettings {
    /// Transformer turns ratio (id `di_ratio`).
    pub ratio: TurnsRatio,
    /// Input pad (id `di_pad`).
    pub pad: DiPad,
    /// Ground lift: true = lifted = no hum (id `di_lift`, default true).
    pub ground_lift: bool,
    /// Mains frequency of the hum (id `mains_hz`).
    pub mains_hz: Mains,
    /// What drives the DI (id `di_source`).
    pub source: DiSource,
    /// Input impedance of the mic preamp the DI feeds, ohms (id `di_load`;
    /// 150 .. 10k typical, clamped to 50 .. 1M).
    pub load_ohms: f64,
    /// Length of the cable from the source to the DI, metres (id `cable_m`;
    /// 0 .. 30, non-finite as the default 3).
    pub cable_m: f64,
}

impl DiSettings {
    /// The source as the DI input sees it: (series resistance ohms, series
    /// inductance henry, shunt capacitance farad), the cable's capacitance
    /// added to the source's own.
    pub fn source_parts(&self) -> (f64, f64, f64) {
        let (rs, ls, cs) = self.source.parts();
        let m = if self.cable_m.is_finite() {
            self.cable_m.clamp(0.0, MAX_CABLE_M)
        } else {
            DEFAULT_CABLE_M
        };
        (rs, ls, cs + m * CABLE_FARAD_PER_M)
    }
}

/// Default cable length, metres.
pub const DEFAULT_CABLE_M: f64 = 3.0;

impl Default for DiSettings {
    fn default() -> Self {
        Self {
            ratio: TurnsRatio::R12,
            pad: DiPad::Off,
            ground_lift: true,
            mains_hz: Mains::Hz50,
            source: DiSource::LineOut,
            load_ohms: RATED_LOAD_OHMS,
            cable_m: DEFAULT_CABLE_M,
        }
    }
}

// --------------------------------------------------------------- constants --

/// Load at which the turns ratio is trimmed to be exact (typical mic pre).
const RATED_LOAD_OHMS: f64 = 1500.0;
/// Source impedance at which the pads are designed to be exact (line out).
const REF_SOURCE_OHMS: f64 = 100.0;
/// Primary DC resistance of the 12:1 transformer (scales with n).
const RP_OHMS_12: f64 = 2000.0;
/// Secondary DC resistance.
const RSEC_OHMS: f64 = 15.0;
/// Small-signal magnetising inductance of the 12:1 primary (scales with n^2).
const LM_HENRY_12: f64 = 400.0;
/// Leakage inductance referred to the secondary.
const LL_SEC_HENRY: f64 = 2.65e-3;
/// Winding + cable capacitance on the secondary side.
const C_SEC_FARAD: f64 = 660e-12;
/// Shunt resistor of the -15 dB pad.
const PAD15_RB_OHMS: f64 = 1000.0;
/// Shunt resistor of the -30 dB pad.
const PAD30_RB_OHMS: f64 = 200.0;
/// Hum level with the ground lift off, volts rms at the output (-65 dBu).
const HUM_VOLTS_RMS: f64 = 0.774_596_669_241_483 * 5.623_413_251_903_491e-4;

/// Core rate target of the DI: the core runs at fs / floor(fs /
/// CORE_RATE_HZ). 8 kHz keeps the 20 Hz distortion identical to a 24 kHz
/// core (measured: 1 %-THD level within 0.01 dB) at a third of the cost.
const CORE_RATE_HZ: f64 = 8_000.0;

/// The DI transformer's core material, 80 % nickel (see the header):
/// Ms = 6.4e5 A/m, a = 3 A/m, k = 1 A/m, c = 0.9, alpha' = 0.05.
const DI_CORE: JaMaterial = JaMaterial {
    // a / Ms.
    eps: 3.0 / 6.4e5,
    // k / a.
    k: 1.0 / 3.0,
    // Reversible fraction.
    c: 0.9,
    // alpha Ms / a.
    alpha: 0.05,
};

/// Saturation flux linkage of the 12:1 primary, volt-seconds (scales with n).
const LAMBDA_SAT_12: f64 = 0.10;

/// Number of points of the hum table (one period).
const HUM_TABLE: usize = 1024;
