//! The chain's settings, in physical units, and what a change of each
//! kind does.
//!
//! [`ChainSettings`] is everything a person sets, `Copy`, handed to
//! `Chain::set_settings` once per block. The chain sorts a change by what
//! it moves (see "Moving a control" in the module header):
//!
//! - **Gains** ramp per sample over 20 ms: the calibration (dBFS → volts
//!   and back), source and input trim, the pad, the output trim, the
//!   preamp's output level, and the amounts of mix, bypass and compare.
//!   The polarity of the path that stands in for the preamp ramps through
//!   zero.
//! - **Switches** (`di_on`, `pre_on`, `auto_gain`, `hp_on`) crossfade a
//!   stage's input with its output.
//! - The DI's settings ([`DiSettings`]) retune the DI: a change crossfades
//!   its two instances (the DI's morph).
//! - What the oversampled section is set to ([`SectionSettings`]: the
//!   preamp bar its output level, the quality, the **drive** and the
//!   polarity) retunes the section: a change crossfades its two instances
//!   (the section's morph). The drive, the small-signal gain at 1 kHz from
//!   the track to the section's input ([`front_gain`] of the calibration,
//!   source and trim, pad and DI), moves with every gain in front of the
//!   section, so each of those is a section change as well.
//! - The headphone amp's settings go to the stage, which retunes itself
//!   smoothly.

use super::{
    db_to_gain, full_scale_peak_volts, DiSettings, HeadphoneSettings, MicSettings, MicSource,
    MicTransformer, MicTransformerSettings, PreampSettings, Quality, Stage, DBU_REF_VOLTS,
    NOMINAL_RATIO,
};
use num_complex::Complex;

/// Oversampling factor for the live (low-latency) quality.
pub const LIVE_FACTOR: usize = 4;
/// Oversampling factor for the high quality (and offline rendering): 16×,
/// linear-phase FIR half-bands. Below grid current 4× and 16× measure the
/// same (both at the f32 floor, about −148 dB, `tests/aliasing.rs`), but
/// where stage 2 clips on its grid current (Gain 45…60 at Level −20) the
/// first-order ADAA at 4× leaves −81.3…−61.6 dB; at 16× −150.1…−104.5 dB,
/// for four times the stages' work (the half-bands' extra two octaves add
/// 4 host samples of latency at 48 kHz).
pub const HIGH_FACTOR: usize = 16;

/// Gain of the preamp's pad, −20 dB.
pub const PAD_DB: f64 = -20.0;

/// Nominal level of a pro line (+4 dBu): the reference the source levels are
/// measured from.
pub const PRO_LINE_DBU: f64 = 4.0;

/// How the section drives the input transformer behind the mic: its
/// settings, the gain in front of it and the gain after it.
///
/// The mic stage has already divided the mic's voltage by the input
/// impedance (`V·Z_in/(Z_in + Z_mic(f))`, the shape of the mic's
/// impedance against the input); the transformer sees the mic's 1 kHz
/// impedance R_s as its source, which sets its low-frequency distortion
/// and damps its resonance. So that the mid-band loading is not counted
/// twice, its input is the divider's output times (Z_in + R_s)/Z_in: the
/// open-circuit voltage the divider had at 1 kHz. The transformer then
/// loads R_s with its real input impedance (the core loss pulls the
/// highest settings down: 5.9 kΩ at 10 kΩ). After it, 1/N: the Gain
/// control is the clean gain at the mic input with the transformer in as
/// without (its 20 dB of step-up are part of it), so switching it changes
/// the character, not the level.
pub fn transformer_drive(mic: &MicSettings) -> (MicTransformerSettings, f64, f64) {
    let source_ohms = mic.model.impedance(1000.0).norm();
    let in_z = mic.in_z_ohms;
    let settings = MicTransformerSettings {
        source_ohms,
        in_z_ohms: in_z,
    };
    (settings, (in_z + source_ohms) / in_z, 1.0 / NOMINAL_RATIO)
}

/// The response at `freq_hz` of what stands in front of the preamp: the
/// mic's loading `mic` and, when `in_xfmr`, the transformer `xfmr` with the
/// gains around it ([`transformer_drive`]). The section's small-signal
/// gain and the editor's plot both take it from here.
pub fn input_response(
    mic: &MicSource,
    xfmr: &MicTransformer,
    settings: &MicSettings,
    in_xfmr: bool,
    freq_hz: f64,
) -> Complex<f64> {
    let mut h = mic.response(freq_hz);
    if in_xfmr {
        let (_, into, out) = transformer_drive(settings);
        h *= xfmr.response(freq_hz) * into * out;
    }
    h
}

/// Which preamp the section runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PreampType {
    /// Two triode stages (`tube::Preamp`).
    #[default]
    Tube,
    /// A transformerless op-amp pre, as in an interface (`solid::SolidPreamp`).
    SolidState,
}

/// What the track stands for electrically.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A microphone: nominal −50 dBu (an SM58 gives −52.4 dBu at 94 dB SPL).
    Mic,
    /// A passive instrument pickup: nominal −20 dBu (about 77 mV rms).
    Instrument,
    /// Consumer line, −10 dBV = −7.78 dBu.
    ConsumerLine,
    /// Professional line, +4 dBu.
    ProLine,
}

impl Source {
    /// Every variant, in display order.
    pub const ALL: [Source; 4] = [
        Source::Mic,
        Source::Instrument,
        Source::ConsumerLine,
        Source::ProLine,
    ];

    /// Nominal level of this source in dBu.
    pub fn nominal_dbu(self) -> f64 {
        match self {
            Source::Mic => -50.0,
            Source::Instrument => -20.0,
            // −10 dBV = 20·log10(0.316 23 / 0.774 60) dBu
            Source::ConsumerLine => -10.0 - 20.0 * DBU_REF_VOLTS.log10(),
            Source::ProLine => PRO_LINE_DBU,
        }
    }
}

/// Every setting of the chain, in physical units. `Copy`, so the plugin can
/// build one per block and hand it over without allocating.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChainSettings {
    /// Converter calibration: the dBu rms level of a full-scale sine.
    pub cal_dbu: f64,
    /// What the track stands for: with source S, the level a +4 dBu line
    /// would have on this track stands for S's nominal level.
    pub source: Source,
    /// Trim before the chain, in dB.
    pub in_trim_db: f64,
    /// The preamp's −20 dB pad.
    pub pad: bool,
    /// Polarity (phase) reverse at the preamp input.
    pub polarity: bool,
    /// Trim after the chain, in dB.
    pub out_trim_db: f64,
    /// Wet fraction, 0 (dry) … 1 (wet).
    pub mix: f64,
    /// Host bypass: the output crossfades to the time-aligned dry signal.
    pub bypass: bool,
    /// Level-matched compare: the output crossfades to the time-aligned dry
    /// signal played at the loudness of the processed output.
    pub compare: bool,
    /// Oversampling quality.
    pub quality: Quality,
    /// DI box switched in.
    pub di_on: bool,
    /// DI box settings.
    pub di: DiSettings,
    /// The microphone feeding the preamp and the preamp's input impedance
    /// (they act with the preamp: it is its input that loads the mic).
    pub mic: MicSettings,
    /// The 1:10 mic input transformer in front of the preamp.
    pub in_xfmr: bool,
    /// Preamp switched in.
    pub pre_on: bool,
    /// Which preamp: the tube one or the solid-state reference (same
    /// controls, `preamp`).
    pub pre_type: PreampType,
    /// Tube preamp settings (`output_db` is applied by the chain, after the
    /// auto-gain).
    pub preamp: PreampSettings,
    /// Keep the preamp's output loudness matched to its input.
    pub auto_gain: bool,
    /// Headphone amp switched in.
    pub hp_on: bool,
    /// Headphone amp and load settings.
    pub headphone: HeadphoneSettings,
}

impl Default for ChainSettings {
    fn default() -> Self {
        Self {
            cal_dbu: 18.0,
            source: Source::ProLine,
            in_trim_db: 0.0,
            pad: false,
            polarity: false,
            out_trim_db: 0.0,
            mix: 1.0,
            bypass: false,
            compare: false,
            quality: Quality::Live,
            di_on: false,
            di: DiSettings::default(),
            mic: MicSettings::default(),
            in_xfmr: false,
            pre_on: false,
            pre_type: PreampType::Tube,
            preamp: PreampSettings::default(),
            auto_gain: true,
            hp_on: false,
            headphone: HeadphoneSettings::default(),
        }
    }
}

impl ChainSettings {
    /// Linear gain from a host sample to volts at the chain input.
    pub fn input_gain(&self) -> f64 {
        full_scale_peak_volts(self.cal_dbu) * self.source_and_trim_gain()
    }

    /// Linear gain of the source level and the input trim: the input
    /// conversion without the calibration.
    pub fn source_and_trim_gain(&self) -> f64 {
        db_to_gain(self.source.nominal_dbu() - PRO_LINE_DBU) * db_to_gain(self.in_trim_db)
    }

    /// Linear gain of the preamp's pad (1 when off).
    pub fn pad_gain(&self) -> f64 {
        if self.pad {
            db_to_gain(PAD_DB)
        } else {
            1.0
        }
    }

    /// −1 with the polarity reversed, else 1.
    pub fn polarity_sign(&self) -> f64 {
        if self.polarity {
            -1.0
        } else {
            1.0
        }
    }

    /// Linear gain of pad and polarity.
    pub fn preamp_input_gain(&self) -> f64 {
        self.polarity_sign() * self.pad_gain()
    }

    /// Linear gain from volts at the chain output to a host sample.
    pub fn output_gain(&self) -> f64 {
        db_to_gain(self.out_trim_db) / full_scale_peak_volts(self.cal_dbu)
    }

    /// The preamp settings handed to the stage: its output level is the
    /// chain's to apply.
    pub(super) fn preamp_stage_settings(&self) -> PreampSettings {
        PreampSettings {
            output_db: 0.0,
            ..self.preamp
        }
    }

    /// What the auto-gain compensates at once (its slow loudness correction
    /// does the rest): the small-signal gain at 1 kHz from the track (in
    /// output volts) to the oversampled section's output — input
    /// conversion, the DI when in (`di_gain_1k`), pad, and the preamp when
    /// in (`preamp_gain`: the mic's loading of its input times the preamp,
    /// its output level excluded: the chain applies that after the
    /// auto-gain).
    pub fn auto_gain_static_gain(&self, di_gain_1k: f64, preamp_gain: f64) -> f64 {
        let di = if self.di_on { di_gain_1k } else { 1.0 };
        let pre = if self.pre_on { preamp_gain } else { 1.0 };
        let source_and_trim = self.input_gain() / full_scale_peak_volts(self.cal_dbu);
        source_and_trim * di * self.preamp_input_gain().abs() * pre
    }

    /// Oversampling factor of the chosen quality.
    pub fn oversampling_factor(&self) -> usize {
        quality_factor(self.quality)
    }
}

/// What the oversampled section is set to: the preamp (its output level
/// excluded: the chain applies it), the oversampling quality and the drive.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct SectionSettings {
    /// The preamp's settings, its output level at 0 dB.
    pub(super) preamp: PreampSettings,
    /// The oversampling quality.
    pub(super) quality: Quality,
    /// Volts at the section's input per unit of track at 1 kHz: the
    /// calibration, source and trim, the DI, the pad. The section runs at
    /// this drive whatever ramps in front of it (its input is scaled by
    /// drive / ramped front gain), so a change of drive is a crossfade
    /// between two sections, each at its own drive and exactly compensated.
    pub(super) drive: f64,
    /// ±1: the polarity switch in front of the tubes.
    pub(super) polarity: f64,
    /// The mic and the input impedance it sees.
    pub(super) mic: MicSettings,
    /// Which preamp runs.
    pub(super) pre_type: PreampType,
    /// The input transformer in.
    pub(super) in_xfmr: bool,
}

impl SectionSettings {
    /// The section's part of `s`, at `drive`.
    pub(super) fn of(s: &ChainSettings, drive: f64) -> Self {
        Self {
            preamp: s.preamp_stage_settings(),
            quality: s.quality,
            drive,
            polarity: s.polarity_sign(),
            mic: s.mic,
            pre_type: s.pre_type,
            in_xfmr: s.in_xfmr,
        }
    }
}

/// The gain in front of the section from its parts, in the order
/// `Chain::plan_chunk` multiplies their curves (`1 + (di − 1)` is the DI
/// switch's `1 + on·(di − 1)` fully in), so the drive a section is set to
/// and the settled front gain are the same number.
#[inline(always)]
pub(super) fn front_gain(cal: f64, source_trim: f64, pad: f64, di: f64) -> f64 {
    cal * source_trim * pad * (1.0 + (di - 1.0))
}

/// Oversampling factor of a quality.
pub(super) fn quality_factor(q: Quality) -> usize {
    match q {
        Quality::Live => LIVE_FACTOR,
        Quality::High => HIGH_FACTOR,
    }
}

/// Index of a quality in per-quality tables.
pub(super) fn quality_index(q: Quality) -> usize {
    match q {
        Quality::Live => 0,
        Quality::High => 1,
    }
}
