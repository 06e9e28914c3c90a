//! The numbers and the warning for a (load, Zo) pair that the editor and
//! the renderer's `--report` show: damping factor, level change and
//! response span from the analytic divider H = Z / (Z + Zo), and a
//! plain-English warning when the "1/8 rule" (Zo <= Z/8) is broken.

use super::{HeadphoneModel, ImpedanceCurve, C64};

/// Numbers and a warning for a (load, Zo) pair, for the editor and the
/// renderer's `--report`. Computed from the analytic formula
/// H = Z / (Z + Zo) on a 1/48-octave grid over 20 Hz..20 kHz.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadReport {
    /// Nominal impedance used for the damping factor and the 1/8 rule, ohms.
    pub nominal_ohms: f64,
    /// Damping factor Z_nominal / Zo (infinite for Zo = 0).
    pub damping_factor: f64,
    /// Span of |H| over 20 Hz..20 kHz: max dB minus min dB.
    pub deviation_db: f64,
    /// Level change at 1 kHz, 20 log10 |H(1 kHz)|, dB (negative = quieter).
    pub level_1k_db: f64,
    /// Plain-English warning when Zo > Z_nominal / 8.
    pub warning: Option<String>,
}

/// Report for a built-in model, or for a custom curve when `curve` is given.
/// Allocates (the warning text): call it off the audio thread.
pub fn load_report(
    model: HeadphoneModel,
    curve: Option<&ImpedanceCurve>,
    zo_ohms: f64,
) -> LoadReport {
    let z_of = |f: f64| -> C64 {
        match (model, curve) {
            (HeadphoneModel::Custom, Some(c)) => c.impedance(f),
            _ => model.impedance(f),
        }
    };
    let nominal = match (model, curve) {
        (HeadphoneModel::Custom, Some(c)) => c.nominal_ohms(),
        _ => model.nominal_ohms(),
    };
    let zo = zo_ohms.max(0.0);
    let h_db = |f: f64| {
        let z = z_of(f);
        20.0 * (z / (z + zo)).norm().log10()
    };
    let n = (48.0 * (1000.0f64).log2()) as usize;
    let level = h_db(1000.0);
    // The span, and where its top and bottom are (they name the change:
    // e.g. a treble rise over the bass for an IEM, a bass rise for a
    // dynamic driver's resonance peak).
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut lo_hz, mut hi_hz) = (1000.0, 1000.0);
    for k in 0..=n {
        let f = 20.0 * 1000f64.powf(k as f64 / n as f64);
        let d = h_db(f);
        if d < lo {
            lo = d;
            lo_hz = f;
        }
        if d > hi {
            hi = d;
            hi_hz = f;
        }
    }
    let deviation = hi - lo;
    let region = |f: f64| {
        if f < 250.0 {
            "bass"
        } else if f < 4000.0 {
            "midrange"
        } else {
            "treble"
        }
    };
    let warning = (zo > nominal / 8.0).then(|| {
        let (up, down) = (region(hi_hz), region(lo_hz));
        let shape = if up == down {
            format!("a {deviation:.1} dB {up} ripple")
        } else {
            format!("a {deviation:.1} dB {up} rise over the {down}")
        };
        format!(
            "Output impedance {} ohm is above 1/8 of the headphone's {} ohm: expect {} (peak near {}) and {:.1} dB less level.",
            fmt_ohms(zo),
            fmt_ohms(nominal),
            shape,
            fmt_hz(hi_hz),
            -level
        )
    });
    LoadReport {
        nominal_ohms: nominal,
        damping_factor: if zo > 0.0 {
            nominal / zo
        } else {
            f64::INFINITY
        },
        deviation_db: deviation,
        level_1k_db: level,
        warning,
    }
}

fn fmt_hz(f: f64) -> String {
    if f >= 1000.0 {
        format!("{:.1} kHz", f / 1000.0)
    } else {
        format!("{:.0} Hz", f)
    }
}

fn fmt_ohms(x: f64) -> String {
    if (x - x.round()).abs() < 1e-9 {
        format!("{}", x.round())
    } else {
        format!("{:.1}", x)
    }
}
