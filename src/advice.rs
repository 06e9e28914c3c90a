//! Gain-staging advice in plain words, from the chain's settings and,
//! when the editor is open, its live meters.
//!
//! Each rule below is a fact from docs/DESIGN.md (or the articles the
//! product grew from), turned into a check with numbers computed from the
//! same models the DSP core runs. [`advise`] returns the rules that apply, in signal-flow order
//! (input → DI → preamp → headphone amp → output); the editor shows each
//! beside its stage. Nothing here runs on the audio thread (it allocates
//! the texts).
//!
//! Settings rules (no meters needed):
//! - **Line level into a mic input** (preamp in, DI out, pad out, a line
//!   source): the line arrives `nominal(source) − nominal(mic)` dB hotter
//!   than the mic the input is built for (+4 dBu against −50 dBu: 54 dB).
//!   A passive DI drops it by 20·log10(n) (21.6 dB at 12:1), the pad by 20 dB.
//! - **Instrument straight into the mic input**: a pickup wants a high-
//!   impedance input; the DI gives it one.
//! - **Mic into the DI**: a DI is for line and instrument sources; a mic
//!   would come out another 20·log10(n) dB lower.
//! - **Ground lift off**: the DI's ground loop adds hum at −65 dBu
//!   (transformer.rs); the advice says how far it sits under the source's
//!   nominal level at the DI output (nominal − 20·log10(n) − pad).
//! - **Pickup into a low DI load**: the DI's input impedance is the preamp's
//!   input impedance reflected through the transformer, n²·R_load; against
//!   the pickup's 2.5 H coil it makes a low-pass at n²·R_load/(2π·2.5 H).
//!   Below 10 kHz, the top end of the instrument audibly dulls.
//! - **Output impedance above 1/8 of the headphone's** (the rule of thumb in
//!   docs/DESIGN.md, § Headphone amp): the headphone gets V·Z/(Z + Zo), so the
//!   response follows |Z(f)|. The shift quoted is max − min of
//!   20·log10|Z/(Z + Zo)| over 20 Hz … 20 kHz (1/48-octave grid) with Z from
//!   `HeadphoneModel::impedance`, and it is named after where the level is
//!   highest (bass below 250 Hz, treble above 4 kHz). A measured (custom)
//!   curve is not in the settings, so this rule skips it.
//!
//! - **A mic on too low an input** (preamp in, DI out): the preamp input
//!   gets V·Z_in/(Z_in + Z_mic(f)); a passive mic wants Z_in of at least
//!   5× its rated 300 Ω. A ribbon below that is a warning (its resonance
//!   peak and its top rise make the response uneven), a dynamic a note; the
//!   loss at 1 kHz and the span over 20 Hz … 20 kHz are quoted
//!   ([`mic_shift`], `MicModel::impedance`). A mic chosen with the preamp
//!   out, or with the DI in, says what the setting does there.
//!
//! - **Tube settings on the solid-state preamp**: Tube and Bias mean
//!   nothing to an op-amp pre; the advice says so when they are moved.
//!
//! Meter rules (with [`ChainMeters`]):
//! - **Preamp clipping before the tube**: the first grid's peak reaches the
//!   grid-conduction voltage. The grid swings about its bias b, so the swing
//!   must shrink from (peak − b) to (conduction − b): lower Gain by
//!   20·log10((peak − b)/(conduction − b)) dB.
//! - **Second stage in grid current**: the same for stage 2, fixed with Level
//!   (information only: it is how "Dirty" settings work).
//! - **DI core saturating**: peak flux over saturation flux above 1; the
//!   flux is the integral of the voltage, so low notes saturate first.
//! - **Headphone amp clipping**: the amp's internal voltage (preamp output
//!   × volume) exceeds its swing; lower Amp Volume by the excess in dB.
//! - **Output above 0 dBFS**: the output tap (volts before the output trim)
//!   over the full-scale peak voltage of the calibration, plus the trim.

use std::f64::consts::PI;

use num_complex::Complex;

use crate::dsp::chain::{ChainSettings, PreampType, Source};
use crate::dsp::headphone::HeadphoneModel;
use crate::dsp::meters::ChainMeters;
use crate::dsp::mic::MicModel;
use crate::dsp::transformer::{DiSource, CABLE_FARAD_PER_M};
use crate::dsp::tube::TubeType;
use crate::dsp::{db_to_gain, full_scale_peak_volts, gain_to_db};

/// Where in the chain an advice applies (the editor shows it on that panel).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// Input calibration, source and trim.
    Input,
    /// The DI box.
    Di,
    /// The tube preamp (and its pad).
    Preamp,
    /// The headphone amp and its load.
    Headphone,
    /// Output trim and level.
    Output,
}

/// How much it matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Worth knowing; may be what you want.
    Info,
    /// Likely a mistake a person would want to fix.
    Warning,
}

/// One piece of advice.
#[derive(Clone, Debug, PartialEq)]
pub struct Advice {
    /// The stage it concerns.
    pub stage: Stage,
    /// How much it matters.
    pub severity: Severity,
    /// What is wrong and what to do, in plain words with the numbers.
    pub text: String,
}

/// Nominal mic level the preamp's input is built for, dBu (matches
/// `Source::Mic`).
const MIC_NOMINAL_DBU: f64 = -50.0;
/// Ground-loop hum at the DI output, dBu rms (transformer.rs).
const HUM_DBU: f64 = -65.0;
/// Inductance of the modelled passive pickup (transformer.rs `DiSource`).
const PICKUP_HENRIES: f64 = 2.5;
/// Below this pickup-load corner the top end audibly dulls.
const PICKUP_CORNER_LIMIT_HZ: f64 = 10_000.0;
/// A pickup's resonance below this (its cable too long) is worth a warning:
/// the top of the guitar goes soft (a 3 m lead: 4.9 kHz; 10 m: 3.0 kHz).
const PICKUP_RESONANCE_LIMIT_HZ: f64 = 3_000.0;
/// Rated (nominal) impedance of the modelled dynamic and ribbon mics, ohms.
const MIC_RATED_OHMS: f64 = 300.0;
/// A passive mic wants an input impedance at least this many times its
/// own (Royer: 1200–1500 Ω or more for a 300 Ω ribbon; the usual "5 to 10
/// times" bridging rule).
const MIC_LOAD_FACTOR: f64 = 5.0;
/// The 1/8 rule for headphone outputs.
const ZO_RULE_FRACTION: f64 = 1.0 / 8.0;
/// Output impedances at or above this are line outputs, not headphone amps.
const LINE_OUTPUT_OHMS: f64 = 300.0;

/// The advice that applies to settings `s`, and, when given, to the live
/// `meters` (a reading covering no samples counts as none). Ordered by stage.
pub fn advise(s: &ChainSettings, meters: Option<&ChainMeters>) -> Vec<Advice> {
    let mut out = Vec::new();
    let meters = meters.filter(|m| m.samples > 0);
    let warn = |stage, text: String| Advice {
        stage,
        severity: Severity::Warning,
        text,
    };
    let info = |stage, text: String| Advice {
        stage,
        severity: Severity::Info,
        text,
    };
    let ratio = s.di.ratio.ratio();
    let di_db = gain_to_db(1.0 / ratio);
    let di_pad_db = -s.di.pad.nominal_db().abs();

    // --- input / mic input matching -------------------------------------
    let line = matches!(s.source, Source::ProLine | Source::ConsumerLine);
    if s.pre_on && !s.di_on && !s.pad && line {
        let hotter = s.source.nominal_dbu() - MIC_NOMINAL_DBU;
        out.push(warn(
            Stage::Preamp,
            format!(
                "Line level into a mic input: switch in the DI or the pad. A {} line is {hotter:.0} dB hotter than the mic ({MIC_NOMINAL_DBU:.0} dBu) the input expects; the DI takes off {:.1} dB, the pad 20 dB.",
                fmt_dbu(s.source.nominal_dbu()),
                -di_db
            ),
        ));
    }
    if s.pre_on && !s.di_on && s.source == Source::Instrument {
        out.push(info(
            Stage::Input,
            "Instrument straight into a mic input: a pickup wants a high-impedance input. Switch in the DI (set DI Source to the pickup).".to_string(),
        ));
    }

    // --- DI ------------------------------------------------------------------
    if s.di_on && s.source == Source::Mic {
        out.push(warn(
            Stage::Di,
            format!(
                "A mic doesn't need a DI: the DI is for line and instrument sources. It would take the mic down another {:.1} dB, to {}. Switch the DI out.",
                -di_db,
                fmt_dbu(MIC_NOMINAL_DBU + di_db + di_pad_db)
            ),
        ));
    }
    if s.di_on && !s.di.ground_lift {
        let signal_dbu = s.source.nominal_dbu() + di_db + di_pad_db;
        out.push(warn(
            Stage::Di,
            format!(
                "Ground lift is off: a ground loop adds {:.0} Hz hum at {HUM_DBU:.0} dBu, {:.0} dB under the signal at the DI output. Switch Ground Lift on.",
                s.di.mains_hz.hz(),
                signal_dbu - HUM_DBU
            ),
        ));
    }
    if s.di_on && s.di.source == DiSource::PassivePickup {
        let r_in = ratio * ratio * s.di.load_ohms;
        let corner_hz = r_in / (2.0 * PI * PICKUP_HENRIES);
        if corner_hz < PICKUP_CORNER_LIMIT_HZ {
            out.push(warn(
                Stage::Di,
                format!(
                    "Pickup into a low DI load: with {:.0} ohm behind it the DI's input is only {:.0} kohm, so the pickup's top end rolls off above about {:.1} kHz. Raise DI Load (a higher-impedance preamp input), or use an active DI.",
                    s.di.load_ohms,
                    r_in / 1000.0,
                    corner_hz / 1000.0
                ),
            ));
        }
    }
    if s.di_on && s.di.source == DiSource::PassivePickup {
        let (_, henries, farads) = s.di.source_parts();
        let resonance_hz = 1.0 / (2.0 * PI * (henries * farads).sqrt());
        if resonance_hz < PICKUP_RESONANCE_LIMIT_HZ {
            out.push(warn(
                Stage::Di,
                format!(
                    "Long cable on a passive pickup: {:.0} m add {:.1} nF, which pulls the pickup's resonance down to about {:.1} kHz and softens the top. Use a shorter lead, or a buffer or active DI near the guitar.",
                    s.di.cable_m,
                    s.di.cable_m * CABLE_FARAD_PER_M * 1e9,
                    resonance_hz / 1000.0
                ),
            ));
        }
    }
    if let Some(m) = meters {
        if s.di_on && m.di_saturation > 1.0 {
            let fix = if s.di.pad.nominal_db().abs() < 29.0 {
                "switch in (or raise) the DI pad, or lower the source"
            } else {
                "lower the source"
            };
            out.push(warn(
                Stage::Di,
                format!(
                    "The DI's transformer core saturates ({:.1}x its saturation flux): low notes distort first. To keep it clean, {fix}.",
                    m.di_saturation
                ),
            ));
        }
    }

    // --- mic into the preamp input -------------------------------------------
    let mic = s.mic.model;
    if mic != MicModel::None {
        let in_z = s.mic.in_z_ohms;
        let shift = mic_shift(mic, in_z);
        let (loss, span) = (-shift.level_1k_db, shift.span_db);
        let least = MIC_LOAD_FACTOR * MIC_RATED_OHMS;
        if !s.pre_on {
            out.push(info(
                Stage::Preamp,
                "The mic's loading acts with the preamp in: it is the preamp's input that loads the mic. Switch the preamp in to hear it.".to_string(),
            ));
        } else if s.di_on {
            out.push(warn(
                Stage::Preamp,
                "A mic and the DI at once: the DI feeds the preamp, yet the preamp input still loads it as the chosen mic. Set Mic to none while you use the DI.".to_string(),
            ));
        } else if mic == MicModel::Ribbon && in_z < least {
            out.push(warn(
                Stage::Preamp,
                format!(
                    "A ribbon on a {} ohm input: a passive ribbon wants at least {MIC_LOAD_FACTOR:.0}x its {MIC_RATED_OHMS:.0} ohm ({least:.0} ohm or more). Here it loses {loss:.1} dB at 1 kHz, and its bass under the resonance peak and its top thin out: the response spans {span:.1} dB. Choose 2.4 k or 10 k.",
                    fmt_ohms(in_z)
                ),
            ));
        } else if mic == MicModel::Dynamic && in_z < least {
            out.push(info(
                Stage::Preamp,
                format!(
                    "A dynamic on a {} ohm input loses {loss:.1} dB at 1 kHz and some top: its coil's impedance rises to about 590 ohm at 20 kHz, so the response spans {span:.1} dB. An input of {least:.0} ohm or more keeps it.",
                    fmt_ohms(in_z)
                ),
            ));
        }
    }

    // --- preamp --------------------------------------------------------------
    if s.pre_on
        && s.pre_type == PreampType::SolidState
        && (s.preamp.bias != 0.0 || s.preamp.tube != TubeType::Tube12AX7)
    {
        out.push(info(
            Stage::Preamp,
            "The solid-state preamp has no tubes: Tube and Bias do nothing while it is chosen (they come back with Preamp Type = Tube).".to_string(),
        ));
    }
    if let Some(m) = meters.filter(|_| s.pre_on) {
        let conduction = m.grid_conduction_volts;
        let over = |i: usize| {
            let (peak, bias) = (m.grid_peak_volts[i], m.grid_bias_volts[i]);
            (peak >= conduction && conduction > bias)
                .then(|| gain_to_db((peak - bias) / (conduction - bias)))
        };
        if let Some(db) = over(0) {
            out.push(warn(
                Stage::Preamp,
                format!(
                    "Preamp clipping before the tube: lower Gain (by about {:.1} dB). The first grid swings to {:+.2} V, past the {:+.2} V where grid current starts.",
                    db.max(0.1),
                    m.grid_peak_volts[0],
                    conduction
                ),
            ));
        }
        if let Some(db) = over(1) {
            out.push(info(
                Stage::Preamp,
                format!(
                    "The second tube is in grid current: that is the dirty sound. For less, lower Level by about {:.1} dB.",
                    db.max(0.1)
                ),
            ));
        }
    }

    // --- headphone amp -------------------------------------------------------
    if s.hp_on && s.headphone.model != HeadphoneModel::Custom {
        let model = s.headphone.model;
        let zo = s.headphone.amp_z_ohms.max(0.0);
        let nominal = model.nominal_ohms();
        if zo > nominal * ZO_RULE_FRACTION {
            let shift = divider_shift(model, zo);
            let kind = if shift.high_hz < 250.0 {
                "bass shift"
            } else if shift.high_hz > 4000.0 {
                "treble shift"
            } else {
                "response shift"
            };
            let mut text = format!(
                "Output impedance above 1/8 of the headphone's impedance ({} ohm against {} ohm): expect a {kind} of {:.1} dB, and {:.1} dB less level at 1 kHz.",
                fmt_ohms(zo),
                fmt_ohms(nominal),
                shift.span_db,
                -shift.level_1k_db
            );
            if zo >= LINE_OUTPUT_OHMS {
                text.push_str(" That is a line output, not a headphone amp: use a headphone amp.");
            }
            out.push(warn(Stage::Headphone, text));
        }
    }
    if let Some(m) = meters.filter(|_| s.hp_on) {
        let drive_peak = m.preamp_out.peak_volts * db_to_gain(s.headphone.volume_db);
        let swing = s.headphone.swing_volts;
        if swing > 0.0 && drive_peak > swing {
            out.push(warn(
                Stage::Headphone,
                format!(
                    "Headphone amp clipping: it is asked for {drive_peak:.1} V peak and its rails give {swing:.1} V. Lower Amp Volume by {:.1} dB.",
                    gain_to_db(drive_peak / swing)
                ),
            ));
        }
    }

    // --- output ----------------------------------------------------------------
    if let Some(m) = meters {
        let peak_dbfs =
            gain_to_db(m.output.peak_volts / full_scale_peak_volts(s.cal_dbu)) + s.out_trim_db;
        if m.output.peak_volts > 0.0 && peak_dbfs > 0.0 {
            out.push(warn(
                Stage::Output,
                format!(
                    "Output above 0 dBFS (peak {peak_dbfs:+.1} dBFS): lower Output Trim by {peak_dbfs:.1} dB or more."
                ),
            ));
        }
    }

    out.sort_by_key(|a| a.stage);
    out
}

/// What an output impedance does to a headphone's response.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DividerShift {
    /// max − min of 20·log10|Z/(Z + Zo)| over 20 Hz … 20 kHz, dB.
    pub span_db: f64,
    /// Where the level is highest, Hz.
    pub high_hz: f64,
    /// Where it is lowest, Hz.
    pub low_hz: f64,
    /// 20·log10|Z/(Z + Zo)| at 1 kHz, dB.
    pub level_1k_db: f64,
}

/// The response change of a modelled headphone driven from `zo_ohms`,
/// on a 1/48-octave grid from 20 Hz to 20 kHz.
pub fn divider_shift(model: HeadphoneModel, zo_ohms: f64) -> DividerShift {
    shift_of(|f| {
        let z: Complex<f64> = model.impedance(f);
        gain_to_db((z / (z + zo_ohms)).norm())
    })
}

/// What the input impedance `in_z_ohms` leaves of a mic's response:
/// 20·log10|Z_in/(Z_in + Z_mic)|, on the same grid.
pub fn mic_shift(model: MicModel, in_z_ohms: f64) -> DividerShift {
    shift_of(|f| gain_to_db((in_z_ohms / (in_z_ohms + model.impedance(f))).norm()))
}

/// Span, extremes and 1 kHz value of the level `level(f)` (dB) on a
/// 1/48-octave grid from 20 Hz to 20 kHz.
fn shift_of(level: impl Fn(f64) -> f64) -> DividerShift {
    let steps = (48.0 * 1000f64.log2()).round() as usize;
    let (mut hi, mut lo) = ((f64::NEG_INFINITY, 1000.0), (f64::INFINITY, 1000.0));
    for k in 0..=steps {
        let f = 20.0 * 1000f64.powf(k as f64 / steps as f64);
        let l = level(f);
        if l > hi.0 {
            hi = (l, f);
        }
        if l < lo.0 {
            lo = (l, f);
        }
    }
    DividerShift {
        span_db: hi.0 - lo.0,
        high_hz: hi.1,
        low_hz: lo.1,
        level_1k_db: level(1000.0),
    }
}

fn fmt_dbu(dbu: f64) -> String {
    format!("{dbu:+.1} dBu")
}

fn fmt_ohms(ohms: f64) -> String {
    if ohms >= 10.0 {
        format!("{ohms:.0}")
    } else {
        format!("{ohms:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::meters::LevelReading;
    use crate::dsp::transformer::{DiPad, Mains, TurnsRatio};

    fn base() -> ChainSettings {
        ChainSettings {
            source: Source::Mic,
            pre_on: true,
            ..ChainSettings::default()
        }
    }

    fn texts(a: &[Advice]) -> String {
        a.iter()
            .map(|a| a.text.as_str())
            .collect::<Vec<_>>()
            .join(" | ")
    }

    fn has(a: &[Advice], needle: &str) -> bool {
        a.iter().any(|a| a.text.contains(needle))
    }

    /// The first number after `after` in `text`.
    fn number_after(text: &str, after: &str) -> f64 {
        let rest = &text[text.find(after).expect(after) + after.len()..];
        let t: String = rest
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == '-' || *c == '+')
            .collect();
        t.parse()
            .unwrap_or_else(|_| panic!("no number after {after:?} in {text}"))
    }

    fn meters() -> ChainMeters {
        ChainMeters {
            samples: 4800,
            grid_bias_volts: [-1.2, -1.2],
            grid_peak_volts: [-1.0, -1.0],
            grid_conduction_volts: 0.0,
            ..ChainMeters::default()
        }
    }

    #[test]
    fn defaults_get_no_advice() {
        let a = advise(&base(), None);
        assert!(a.is_empty(), "{}", texts(&a));
        let a = advise(&base(), Some(&meters()));
        assert!(a.is_empty(), "{}", texts(&a));
    }

    #[test]
    fn line_into_mic_input() {
        for source in [Source::ProLine, Source::ConsumerLine] {
            let s = ChainSettings { source, ..base() };
            let a = advise(&s, None);
            assert!(
                has(
                    &a,
                    "Line level into a mic input: switch in the DI or the pad."
                ),
                "{}",
                texts(&a)
            );
            assert_eq!(a[0].severity, Severity::Warning);
            assert_eq!(a[0].stage, Stage::Preamp);
            // +4 dBu against −50 dBu: 54 dB; −10 dBV = −7.78 dBu: 42 dB.
            let hotter = number_after(&a[0].text, "line is");
            let expected = if source == Source::ProLine {
                54.0
            } else {
                42.2
            };
            assert!((hotter - expected).abs() < 0.6, "{hotter}");
            // Fixed by the pad, by the DI, or by taking the preamp out.
            for fixed in [
                ChainSettings { pad: true, ..s },
                ChainSettings { di_on: true, ..s },
                ChainSettings { pre_on: false, ..s },
            ] {
                assert!(!has(&advise(&fixed, None), "Line level"));
            }
        }
        // A mic or an instrument is not "line level".
        assert!(!has(&advise(&base(), None), "Line level"));
    }

    #[test]
    fn instrument_without_di() {
        let s = ChainSettings {
            source: Source::Instrument,
            ..base()
        };
        assert!(has(
            &advise(&s, None),
            "Instrument straight into a mic input"
        ));
        let with_di = ChainSettings { di_on: true, ..s };
        assert!(!has(&advise(&with_di, None), "Instrument straight"));
    }

    #[test]
    fn mic_into_di() {
        let s = ChainSettings {
            di_on: true,
            ..base()
        };
        let a = advise(&s, None);
        assert!(has(&a, "A mic doesn't need a DI"), "{}", texts(&a));
        // 12:1 → 20·log10(12) = 21.58 dB.
        let db = number_after(&a[0].text, "another");
        assert!((db - 21.6).abs() < 0.05, "{db}");
        let line = ChainSettings {
            source: Source::ProLine,
            ..s
        };
        assert!(!has(&advise(&line, None), "doesn't need a DI"));
    }

    #[test]
    fn ground_lift_off_hums() {
        let mut s = ChainSettings {
            source: Source::ProLine,
            di_on: true,
            ..base()
        };
        assert!(!has(&advise(&s, None), "Ground lift"));
        s.di.ground_lift = false;
        s.di.mains_hz = Mains::Hz60;
        let a = advise(&s, None);
        assert!(
            has(&a, "Ground lift is off") && has(&a, "60 Hz hum"),
            "{}",
            texts(&a)
        );
        // +4 dBu − 21.58 dB = −17.58 dBu of signal against −65 dBu of hum.
        let under = number_after(&a[0].text, "dBu,");
        assert!((under - (4.0 - 21.58 + 65.0)).abs() < 0.6, "{under}");
        // The DI switched out: no hum, no advice.
        s.di_on = false;
        assert!(!has(&advise(&s, None), "Ground lift"));
    }

    #[test]
    fn pickup_into_low_di_load() {
        let mut s = ChainSettings {
            source: Source::Instrument,
            di_on: true,
            ..base()
        };
        s.di.source = DiSource::PassivePickup;
        s.di.load_ohms = 1500.0; // 144 × 1.5 k = 216 k: corner 13.75 kHz
        assert!(!has(&advise(&s, None), "Pickup into a low DI load"));
        s.di.load_ohms = 600.0; // 86.4 k: corner 5.50 kHz
        let a = advise(&s, None);
        assert!(has(&a, "Pickup into a low DI load"), "{}", texts(&a));
        let khz = number_after(&a[0].text, "above about");
        let expected = 144.0 * 600.0 / (2.0 * PI * 2.5) / 1000.0;
        assert!((khz - expected).abs() < 0.05, "{khz} vs {expected}");
        // An 8:1 DI reflects 64× the load: worse.
        s.di.ratio = TurnsRatio::R8;
        s.di.load_ohms = 1500.0; // 96 k: 6.1 kHz
        assert!(has(&advise(&s, None), "Pickup into a low DI load"));
        // A line source into the same DI: no pickup, no advice.
        s.di.source = DiSource::LineOut;
        assert!(!has(&advise(&s, None), "Pickup"));
    }

    #[test]
    fn long_cable_on_a_pickup() {
        let mut s = ChainSettings {
            source: Source::Instrument,
            di_on: true,
            ..base()
        };
        s.di.source = DiSource::PassivePickup;
        s.di.cable_m = 3.0; // 420 pF: 4.91 kHz
        assert!(!has(&advise(&s, None), "Long cable"));
        s.di.cable_m = 20.0; // 2.12 nF: 2.19 kHz
        let a = advise(&s, None);
        assert!(has(&a, "Long cable"), "{}", texts(&a));
        let khz = number_after(&a[0].text, "down to about");
        let expected = 1.0 / (2.0 * PI * (2.5f64 * (120e-12 + 20.0 * 100e-12)).sqrt()) / 1000.0;
        assert!((khz - expected).abs() < 0.05, "{khz} vs {expected}");
        // The same cable on a line out: nothing to say.
        s.di.source = DiSource::LineOut;
        assert!(!has(&advise(&s, None), "Long cable"));
    }

    #[test]
    fn a_passive_mic_on_a_low_input() {
        let mut s = base();
        s.mic.model = MicModel::Ribbon;
        s.mic.in_z_ohms = 2400.0;
        assert!(
            !has(&advise(&s, None), "ribbon"),
            "{}",
            texts(&advise(&s, None))
        );
        s.mic.in_z_ohms = 1200.0;
        let a = advise(&s, None);
        let ribbon = a
            .iter()
            .find(|a| a.text.contains("A ribbon on a 1200 ohm input"));
        let text = &ribbon.unwrap_or_else(|| panic!("{}", texts(&a))).text;
        // The loss and the span, on a 1 Hz grid (independent of the
        // advice's 1/48-octave one): 1.90 dB and 3.53 dB (docs/DESIGN.md).
        let level = |f: f64| {
            let z = MicModel::Ribbon.impedance(f);
            20.0 * (1200.0 / (1200.0 + z).norm()).log10()
        };
        let loss = number_after(text, "loses");
        assert!((loss + level(1000.0)).abs() < 0.05, "{loss}");
        let (lo, hi) = (20..=20_000)
            .map(|f| level(f64::from(f)))
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), l| {
                (lo.min(l), hi.max(l))
            });
        let span = number_after(text, "spans");
        assert!((span - (hi - lo)).abs() < 0.05, "{span} vs {}", hi - lo);
        // A dynamic on 300 ohm: a note, not a warning.
        s.mic.model = MicModel::Dynamic;
        s.mic.in_z_ohms = 300.0;
        let a = advise(&s, None);
        let note = a.iter().find(|a| a.text.contains("A dynamic on a 300 ohm"));
        assert_eq!(
            note.map(|a| a.severity),
            Some(Severity::Info),
            "{}",
            texts(&a)
        );
        // A condenser drives anything: nothing to say.
        s.mic.model = MicModel::Condenser;
        assert!(
            !has(&advise(&s, None), "input"),
            "{}",
            texts(&advise(&s, None))
        );
        // With the preamp out, or the DI in, the advice says what happens.
        s.mic.model = MicModel::Ribbon;
        s.pre_on = false;
        assert!(has(&advise(&s, None), "acts with the preamp in"));
        s.pre_on = true;
        s.di_on = true;
        assert!(has(&advise(&s, None), "A mic and the DI at once"));
    }

    #[test]
    fn tube_settings_on_the_solid_state_preamp() {
        let mut s = base();
        s.pre_type = PreampType::SolidState;
        assert!(!has(&advise(&s, None), "no tubes"));
        s.preamp.bias = 0.5;
        assert!(has(&advise(&s, None), "no tubes"));
        s.pre_type = PreampType::Tube;
        assert!(!has(&advise(&s, None), "no tubes"));
    }

    /// Independent of `divider_shift`: a 1 Hz linear grid over 20 Hz … 20 kHz.
    fn span_1hz(model: HeadphoneModel, zo: f64) -> f64 {
        let (mut hi, mut lo) = (f64::NEG_INFINITY, f64::INFINITY);
        for f in 20..=20_000 {
            let z = model.impedance(f64::from(f));
            let l = 20.0 * (z.norm() / (z + zo).norm()).log10();
            hi = hi.max(l);
            lo = lo.min(l);
        }
        hi - lo
    }

    #[test]
    fn output_impedance_above_an_eighth_of_the_headphone() {
        let mut s = base();
        s.hp_on = true;
        for (model, zo, kind) in [
            (HeadphoneModel::Closed32, 600.0, "bass shift"),
            (HeadphoneModel::Closed32, 10.0, "bass shift"),
            (HeadphoneModel::Open300, 120.0, "bass shift"),
            (HeadphoneModel::Iem, 10.0, "treble shift"),
        ] {
            s.headphone.model = model;
            s.headphone.amp_z_ohms = zo;
            let a = advise(&s, None);
            let Some(adv) = a.iter().find(|a| a.text.contains("above 1/8")) else {
                panic!("{model:?} at {zo} ohm: no advice: {}", texts(&a));
            };
            assert!(adv
                .text
                .starts_with("Output impedance above 1/8 of the headphone's impedance"));
            assert!(adv.text.contains(kind), "{}", adv.text);
            let quoted = number_after(&adv.text, &format!("{kind} of"));
            let expected = span_1hz(model, zo);
            assert!(
                (quoted - expected).abs() <= 0.06,
                "{model:?} at {zo}: says {quoted}, 1 Hz grid gives {expected:.3}"
            );
            assert_eq!(zo >= 300.0, adv.text.contains("line output"));
        }
        // At or under 1/8: silent (32/8 = 4 ohm, 300/8 = 37.5 ohm).
        for (model, zo) in [
            (HeadphoneModel::Closed32, 4.0),
            (HeadphoneModel::Open300, 30.0),
            (HeadphoneModel::Iem, 0.5),
        ] {
            s.headphone.model = model;
            s.headphone.amp_z_ohms = zo;
            assert!(!has(&advise(&s, None), "above 1/8"), "{model:?} {zo}");
        }
        // The amp switched out: silent.
        s.hp_on = false;
        s.headphone.amp_z_ohms = 600.0;
        assert!(!has(&advise(&s, None), "above 1/8"));
    }

    #[test]
    fn preamp_clipping_before_the_tube() {
        let s = base();
        let mut m = meters();
        // Bias −1.2 V, peak −0.2 V: 1.0 V of swing, under conduction.
        m.grid_peak_volts[0] = -0.2;
        assert!(!has(&advise(&s, Some(&m)), "Preamp clipping"));
        // Peak +0.6 V: swing 1.8 V where 1.2 V fits: 20·log10(1.8/1.2) = 3.52 dB.
        m.grid_peak_volts[0] = 0.6;
        let a = advise(&s, Some(&m));
        assert!(
            has(&a, "Preamp clipping before the tube: lower Gain"),
            "{}",
            texts(&a)
        );
        let db = number_after(&a[0].text, "by about");
        assert!((db - 3.52).abs() < 0.05, "{db}");
        // Without meters, or with the preamp out, nothing is known.
        assert!(!has(&advise(&s, None), "Preamp clipping"));
        let out = ChainSettings { pre_on: false, ..s };
        assert!(!has(&advise(&out, Some(&m)), "Preamp clipping"));
        // A reading that covers no samples is no reading.
        m.samples = 0;
        assert!(!has(&advise(&s, Some(&m)), "Preamp clipping"));
    }

    #[test]
    fn second_stage_in_grid_current_is_information() {
        let s = base();
        let mut m = meters();
        m.grid_peak_volts[1] = 0.3;
        let a = advise(&s, Some(&m));
        let adv = a
            .iter()
            .find(|a| a.text.contains("second tube"))
            .expect("advice");
        assert_eq!(adv.severity, Severity::Info);
        let db = number_after(&adv.text, "by about");
        assert!((db - gain_to_db(1.5 / 1.2)).abs() < 0.05, "{db}");
        m.grid_peak_volts[1] = -0.1;
        assert!(!has(&advise(&s, Some(&m)), "second tube"));
    }

    #[test]
    fn di_core_saturation() {
        let s = ChainSettings {
            source: Source::ProLine,
            di_on: true,
            ..base()
        };
        let mut m = meters();
        m.di_saturation = 0.8;
        assert!(!has(&advise(&s, Some(&m)), "saturates"));
        m.di_saturation = 1.7;
        let a = advise(&s, Some(&m));
        assert!(
            has(&a, "core saturates (1.7x") && has(&a, "DI pad"),
            "{}",
            texts(&a)
        );
        // At the −30 dB pad already, the only fix left is the source.
        let mut padded = s;
        padded.di.pad = DiPad::Db30;
        let a = advise(&padded, Some(&m));
        assert!(has(&a, "saturates") && !has(&a, "DI pad"), "{}", texts(&a));
    }

    #[test]
    fn headphone_amp_swing_clipping() {
        let mut s = base();
        s.hp_on = true;
        s.headphone.amp_z_ohms = 0.1;
        s.headphone.swing_volts = 2.0;
        s.headphone.volume_db = 6.0;
        let mut m = meters();
        m.preamp_out = LevelReading {
            peak_volts: 0.9,
            rms_volts: 0.6,
        };
        // 0.9 V × 2 (6.02 dB) = 1.8 V < 2 V.
        assert!(!has(&advise(&s, Some(&m)), "Headphone amp clipping"));
        m.preamp_out.peak_volts = 2.0;
        // 4 V asked of 2 V rails: 6.0 dB over.
        let a = advise(&s, Some(&m));
        assert!(has(&a, "Headphone amp clipping"), "{}", texts(&a));
        let db = number_after(&a[0].text, "Amp Volume by");
        assert!((db - 6.0).abs() < 0.05, "{db}");
        s.hp_on = false;
        assert!(!has(&advise(&s, Some(&m)), "Headphone amp clipping"));
    }

    #[test]
    fn output_above_full_scale() {
        let s = ChainSettings {
            cal_dbu: 18.0,
            ..base()
        };
        let fs = full_scale_peak_volts(18.0); // √2 · 0.7746 · 10^(18/20) = 8.70 V
        assert!((fs - 8.70).abs() < 0.01);
        let mut m = meters();
        m.output.peak_volts = fs * 0.9;
        assert!(!has(&advise(&s, Some(&m)), "0 dBFS"));
        m.output.peak_volts = fs * 2.0;
        let a = advise(&s, Some(&m));
        assert!(
            has(&a, "Output above 0 dBFS (peak +6.0 dBFS)"),
            "{}",
            texts(&a)
        );
        // The trim counts: −7 dB brings it under.
        let trimmed = ChainSettings {
            out_trim_db: -7.0,
            ..s
        };
        assert!(!has(&advise(&trimmed, Some(&m)), "0 dBFS"));
    }

    #[test]
    fn advice_comes_in_signal_flow_order() {
        let mut s = ChainSettings {
            source: Source::Mic,
            di_on: true,
            hp_on: true,
            ..base()
        };
        s.di.ground_lift = false;
        s.headphone.amp_z_ohms = 600.0;
        let mut m = meters();
        m.grid_peak_volts[0] = 1.0;
        m.output.peak_volts = 100.0;
        let a = advise(&s, Some(&m));
        let stages: Vec<Stage> = a.iter().map(|a| a.stage).collect();
        let mut sorted = stages.clone();
        sorted.sort();
        assert_eq!(stages, sorted);
        assert!(stages.contains(&Stage::Di) && stages.contains(&Stage::Output));
    }
}
