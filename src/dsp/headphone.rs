//! Headphone amp with output impedance Zo driving a modelled headphone load.
//!
//! Circuit: an amplifier (Thevenin source: gain, then a voltage-swing limit)
//! with output resistance Zo, loaded by a headphone of impedance Z(f). The
//! headphone voltage is V * Z / (Z + Zo) = V / (1 + Zo * Y) with Y = 1/Z.
//! References: IEC 61938 (120 ohm outputs), the "1/8 rule" (Zo <= Z/8), the
//! lumped moving-coil model (Thiele/Small electrical analogue):
//! Z = Re + s Le + (1/Res + 1/(s Lces) + s Cmes)^-1,
//! Lces = Res / (w0 Q), Cmes = Q / (w0 Res).
//!
//! Where each part lives:
//! - `headphone/loads.rs`: the built-in loads (their networks and numbers)
//!   and their digital design at a rate (`design_loads`);
//! - `headphone/fit.rs`: that design's maths (bilinear admittance,
//!   correction FIR fit per Zo), on the shared `crate::dsp::divider`;
//! - `headphone/path.rs`: one running load, the delay-free loop
//!   v = x - Zo Y_b v and its per-sample step (`Loop::step`), then the
//!   correction, on the project's two-lane `F2` (`super::simd`);
//! - `headphone/amp.rs`: `HeadphoneAmp`, the stage (settings, smoothing,
//!   crossfades, the swing limit, meters); `headphone/amp/steady.rs`: its
//!   steady block loop, run in the chain's build (`Isa`);
//! - `headphone/curve.rs`: a measured impedance curve, read from a CSV
//!   file or a saved state and checked; `headphone/custom.rs`: the
//!   filter designed from it and its zero-latency convolution;
//! - `headphone/report.rs`: the numbers and warning for a (load, Zo) pair.
//!
//! Custom (measured) loads use a minimum-phase FIR designed off the audio
//! thread from |Z/(Z+Zo)| on the curve (`headphone/custom.rs`), run with a
//! zero-latency partitioned convolution (then delayed 4 samples) and
//! handed over with `swap_custom`.
//!
//! Latency: 4 samples at every rate (`latency_samples`), for every load;
//! the zero-latency custom FIR is delayed to match.
//! Units: volts in (amplifier input), volts out (across the headphone).

use num_complex::Complex;

mod amp;
mod curve;
mod custom;
mod fit;
mod loads;
mod path;
mod report;
#[cfg(test)]
mod tests;

pub use amp::{HeadphoneAmp, HeadphoneLevels};
pub use curve::{
    decode_csv_bytes, parse_impedance_csv, parse_impedance_points, CsvError, ImpedanceCurve,
    PointsError, MAX_CSV_BYTES, MAX_POINTS,
};
pub use custom::{design_custom, CustomFilter};
pub use loads::{design_loads, HeadphoneModel, LoadDesigns, BUILT_IN_MODELS};
pub use report::{load_report, LoadReport};

type C64 = Complex<f64>;

/// Amplifier output impedance presets for the editor and presets:
/// (name, ohms).
pub const AMP_Z_PRESETS: [(&str, f64); 5] = [
    ("Ideal", 0.1),
    ("Interface headphone out", 10.0),
    ("Consumer jack", 33.0),
    ("IEC 61938", 120.0),
    ("Preamp line out", 600.0),
];

/// Settings of the headphone amp stage, in physical units.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HeadphoneSettings {
    /// Amplifier output impedance Zo, ohms (0 .. 10 000, clamped; smoothed
    /// per sample).
    pub amp_z_ohms: f64,
    /// Amplifier volume (gain before the swing limit), dB.
    pub volume_db: f64,
    /// Peak voltage swing of the amplifier (its rails), volts.
    pub swing_volts: f64,
    /// Headphone load.
    pub model: HeadphoneModel,
    /// Keep the 1 kHz level (divide by |H(1 kHz)|) while keeping the shape.
    pub normalize: bool,
}

impl Default for HeadphoneSettings {
    fn default() -> Self {
        HeadphoneSettings {
            amp_z_ohms: 0.1,
            volume_db: 0.0,
            swing_volts: 10.0,
            model: HeadphoneModel::Closed32,
            normalize: false,
        }
    }
}
