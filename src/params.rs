//! The parameter tree: stable IDs, units, ranges and display formatting, and
//! the mapping from parameter values to the DSP core's settings.
//!
//! IDs never change (scripts, presets and host automation rely on them):
//! `cal`, `source`, `in_trim`, `pad`, `polarity`, `out_trim`, `mix`,
//! `bypass`, `compare`, `quality`; DI: `di_on`, `di_ratio`, `di_pad`, `di_lift`,
//! `mains_hz`, `di_source`, `di_load`, `cable_m`; mic: `mic`, `in_z`, `in_xfmr`; preamp: `pre_on`, `pre_type`, `gain`, `level`,
//! `tube`, `bias`, `hpf`, `pre_out`, `auto_gain`; headphone amp: `hp_on`,
//! `amp_z`, `amp_vol`, `amp_swing`, `hp_model`, `hp_norm`. Values are stored in physical units (dB, %), so the
//! renderer's `--set id=value` and preset files take plain values.
//!
//! Smoothing is owned by the DSP core, so no parameter here has a smoother.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use nice_plug::plugin::ParamValue;
use nice_plug::prelude::*;

use crate::dsp::chain::{ChainSettings, PreampType, Source};
use crate::dsp::headphone::{HeadphoneModel, HeadphoneSettings};
use crate::dsp::mic::{MicModel, MicSettings, IN_Z_OHMS};
use crate::dsp::oversampling::Quality;
use crate::dsp::transformer::{
    DiPad, DiSettings, DiSource, Mains, TurnsRatio, DEFAULT_CABLE_M, MAX_CABLE_M,
};
use crate::dsp::tube::{HighPass, PreampSettings, TubeType};

/// Range of the input and output trims, in dB.
pub const TRIM_RANGE_DB: (f32, f32) = (-24.0, 24.0);

/// Converter calibration: the dBu level of a full-scale sine.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Calibration {
    #[id = "18"]
    #[name = "+18 dBu"]
    Plus18,
    #[id = "20"]
    #[name = "+20 dBu"]
    Plus20,
    #[id = "22"]
    #[name = "+22 dBu"]
    Plus22,
    #[id = "24"]
    #[name = "+24 dBu"]
    Plus24,
}

impl Calibration {
    /// dBu rms of a full-scale sine.
    pub fn dbu(self) -> f64 {
        match self {
            Calibration::Plus18 => 18.0,
            Calibration::Plus20 => 20.0,
            Calibration::Plus22 => 22.0,
            Calibration::Plus24 => 24.0,
        }
    }
}

/// What the track stands for electrically.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceParam {
    #[id = "mic"]
    #[name = "Mic"]
    Mic,
    #[id = "instrument"]
    #[name = "Instrument"]
    Instrument,
    #[id = "consumer_line"]
    #[name = "Consumer line -10 dBV"]
    ConsumerLine,
    #[id = "pro_line"]
    #[name = "Pro line +4 dBu"]
    ProLine,
}

impl SourceParam {
    /// The DSP core's source.
    pub fn to_dsp(self) -> Source {
        match self {
            SourceParam::Mic => Source::Mic,
            SourceParam::Instrument => Source::Instrument,
            SourceParam::ConsumerLine => Source::ConsumerLine,
            SourceParam::ProLine => Source::ProLine,
        }
    }
}

/// Oversampling quality.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum QualityParam {
    #[id = "live"]
    #[name = "Live"]
    Live,
    #[id = "high"]
    #[name = "High"]
    High,
}

/// DI transformer turns ratio.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiRatioParam {
    #[id = "12"]
    #[name = "12:1"]
    R12,
    #[id = "10"]
    #[name = "10:1"]
    R10,
    #[id = "8"]
    #[name = "8:1"]
    R8,
}

/// DI input pad.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiPadParam {
    #[id = "0"]
    #[name = "0 dB"]
    Off,
    #[id = "-15"]
    #[name = "-15 dB"]
    Db15,
    #[id = "-30"]
    #[name = "-30 dB"]
    Db30,
}

/// Mains frequency of the ground-loop hum.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum MainsParam {
    #[id = "50"]
    #[name = "50 Hz"]
    Hz50,
    #[id = "60"]
    #[name = "60 Hz"]
    Hz60,
}

/// What feeds the DI.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiSourceParam {
    #[id = "line_out"]
    #[name = "Line out 100 ohm"]
    LineOut,
    #[id = "keyboard"]
    #[name = "Keyboard 1 kohm"]
    Keyboard,
    #[id = "pickup"]
    #[name = "Passive pickup"]
    PassivePickup,
}

/// The microphone feeding the preamp.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum MicParam {
    #[id = "none"]
    #[name = "None (ideal)"]
    None,
    #[id = "dynamic"]
    #[name = "Dynamic"]
    Dynamic,
    #[id = "ribbon"]
    #[name = "Ribbon"]
    Ribbon,
    #[id = "condenser"]
    #[name = "Condenser"]
    Condenser,
}

/// The preamp's input impedance (the positions of a real impedance switch,
/// `mic::IN_Z_OHMS`).
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum InZParam {
    #[id = "300"]
    #[name = "300 ohm"]
    Z300,
    #[id = "600"]
    #[name = "600 ohm"]
    Z600,
    #[id = "1200"]
    #[name = "1.2 kohm"]
    Z1200,
    #[id = "2400"]
    #[name = "2.4 kohm"]
    Z2400,
    #[id = "10000"]
    #[name = "10 kohm"]
    Z10000,
}

impl InZParam {
    /// Ohms.
    pub fn ohms(self) -> f64 {
        IN_Z_OHMS[self as usize]
    }
}

/// Which preamp.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreTypeParam {
    #[id = "tube"]
    #[name = "Tube"]
    Tube,
    #[id = "solid_state"]
    #[name = "Solid-state"]
    SolidState,
}

/// Tube type of both preamp stages.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TubeParam {
    #[id = "12ax7"]
    #[name = "12AX7"]
    T12AX7,
    #[id = "12at7"]
    #[name = "12AT7"]
    T12AT7,
    #[id = "12au7"]
    #[name = "12AU7"]
    T12AU7,
}

/// The preamp's high-pass filter.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum HighPassParam {
    #[id = "off"]
    #[name = "Off"]
    Off,
    #[id = "40"]
    #[name = "40 Hz"]
    Hz40,
    #[id = "80"]
    #[name = "80 Hz"]
    Hz80,
    #[id = "120"]
    #[name = "120 Hz"]
    Hz120,
}

/// Range of the preamp's Gain, in dB.
pub const GAIN_RANGE_DB: (f32, f32) = (0.0, 60.0);
/// Range of the interstage Level, in dB.
pub const LEVEL_RANGE_DB: (f32, f32) = (-60.0, 0.0);
/// Range of the preamp's output level, in dB.
pub const PRE_OUT_RANGE_DB: (f32, f32) = (-36.0, 24.0);

/// The modelled headphone the amp drives.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadphoneParam {
    #[id = "closed32"]
    #[name = "32 ohm closed-back"]
    Closed32,
    #[id = "dyn80"]
    #[name = "80 ohm dynamic"]
    Dynamic80,
    #[id = "dyn250"]
    #[name = "250 ohm dynamic"]
    Dynamic250,
    #[id = "open300"]
    #[name = "300 ohm open-back"]
    Open300,
    #[id = "dyn600"]
    #[name = "600 ohm dynamic"]
    Dynamic600,
    #[id = "planar"]
    #[name = "Planar"]
    Planar,
    #[id = "iem"]
    #[name = "Balanced-armature IEM"]
    Iem,
    #[id = "custom"]
    #[name = "Measured curve (CSV)"]
    Custom,
}

/// Range of the headphone amp's output impedance, in ohms.
pub const AMP_Z_RANGE_OHMS: (f32, f32) = (0.0, 1000.0);
/// Range of the headphone amp's volume, in dB.
pub const AMP_VOL_RANGE_DB: (f32, f32) = (-40.0, 24.0);
/// Range of the headphone amp's peak voltage swing, in volts.
pub const AMP_SWING_RANGE_VOLTS: (f32, f32) = (0.5, 30.0);

/// Range of the DI's load (the mic preamp's input impedance), in ohms.
pub const DI_LOAD_RANGE_OHMS: (f32, f32) = (150.0, 10_000.0);

/// Input group: how the track's samples become volts.
#[derive(Params)]
pub struct InputParams {
    /// Converter calibration.
    #[id = "cal"]
    pub cal: EnumParam<Calibration>,
    /// What the track stands for.
    #[id = "source"]
    pub source: EnumParam<SourceParam>,
    /// Trim before the chain.
    #[id = "in_trim"]
    pub in_trim: FloatParam,
}

/// DI box group.
#[derive(Params)]
pub struct DiParams {
    /// DI switched in.
    #[id = "di_on"]
    pub on: BoolParam,
    /// Turns ratio.
    #[id = "di_ratio"]
    pub ratio: EnumParam<DiRatioParam>,
    /// Input pad.
    #[id = "di_pad"]
    pub pad: EnumParam<DiPadParam>,
    /// Ground lift (on = no hum).
    #[id = "di_lift"]
    pub lift: BoolParam,
    /// Mains frequency of the hum.
    #[id = "mains_hz"]
    pub mains: EnumParam<MainsParam>,
    /// What feeds the DI.
    #[id = "di_source"]
    pub source: EnumParam<DiSourceParam>,
    /// The mic preamp's input impedance.
    #[id = "di_load"]
    pub load: FloatParam,
    /// Cable length from the source to the DI.
    #[id = "cable_m"]
    pub cable: FloatParam,
}

impl PreampParams {
    /// The DSP core's preamp settings.
    pub fn to_dsp(&self) -> PreampSettings {
        PreampSettings {
            gain_db: f64::from(self.gain.value()),
            level_db: f64::from(self.level.value()),
            tube: match self.tube.value() {
                TubeParam::T12AX7 => TubeType::Tube12AX7,
                TubeParam::T12AT7 => TubeType::Tube12AT7,
                TubeParam::T12AU7 => TubeType::Tube12AU7,
            },
            bias: f64::from(self.bias.value()),
            hpf: match self.hpf.value() {
                HighPassParam::Off => HighPass::Off,
                HighPassParam::Hz40 => HighPass::Hz40,
                HighPassParam::Hz80 => HighPass::Hz80,
                HighPassParam::Hz120 => HighPass::Hz120,
            },
            output_db: f64::from(self.out.value()),
        }
    }
}

fn db_param(name: &str, default: f32, range: (f32, f32)) -> FloatParam {
    FloatParam::new(
        name,
        default,
        FloatRange::Linear {
            min: range.0,
            max: range.1,
        },
    )
    .with_unit(" dB")
    .with_step_size(0.01)
    .with_value_to_string(formatters::v2s_f32_rounded(2))
    .with_string_to_value(s2v_number())
}

/// A parameter's text parser, as nice-plug takes it.
type StringToValue = Arc<dyn Fn(&str) -> Option<f32> + Send + Sync>;

/// The parser of every continuous parameter's text: the number the display
/// shows, with or without its unit or label (what [`parse_display_number`]
/// reads). Shown texts parse back to the value shown, so a host's text entry
/// and its value → text → value round trips keep the value.
fn s2v_number() -> StringToValue {
    Arc::new(parse_display_number)
}

/// Bias display: two decimals, and the character in words. The words
/// follow the digits shown: what shows as 0.00 is nominal (also -0.004).
fn v2s_bias(v: f32) -> String {
    let digits = format!("{:.2}", v.abs());
    if digits == "0.00" {
        "0.00 (nominal)".to_string()
    } else if v < 0.0 {
        format!("-{digits} (cold)")
    } else {
        format!("+{digits} (hot)")
    }
}

impl DiParams {
    /// The DSP core's DI settings.
    pub fn to_dsp(&self) -> DiSettings {
        DiSettings {
            ratio: match self.ratio.value() {
                DiRatioParam::R12 => TurnsRatio::R12,
                DiRatioParam::R10 => TurnsRatio::R10,
                DiRatioParam::R8 => TurnsRatio::R8,
            },
            pad: match self.pad.value() {
                DiPadParam::Off => DiPad::Off,
                DiPadParam::Db15 => DiPad::Db15,
                DiPadParam::Db30 => DiPad::Db30,
            },
            ground_lift: self.lift.value(),
            mains_hz: match self.mains.value() {
                MainsParam::Hz50 => Mains::Hz50,
                MainsParam::Hz60 => Mains::Hz60,
            },
            source: match self.source.value() {
                DiSourceParam::LineOut => DiSource::LineOut,
                DiSourceParam::Keyboard => DiSource::Keyboard,
                DiSourceParam::PassivePickup => DiSource::PassivePickup,
            },
            load_ohms: f64::from(self.load.value()),
            cable_m: f64::from(self.cable.value()),
        }
    }
}

/// Mic group: the microphone and the input it sees.
#[derive(Params)]
pub struct MicParams {
    /// The microphone (its output impedance).
    #[id = "mic"]
    pub mic: EnumParam<MicParam>,
    /// The preamp's input impedance.
    #[id = "in_z"]
    pub in_z: EnumParam<InZParam>,
    /// The 1:10 input transformer.
    #[id = "in_xfmr"]
    pub in_xfmr: BoolParam,
}

impl MicParams {
    /// The DSP core's mic settings.
    pub fn to_dsp(&self) -> MicSettings {
        MicSettings {
            model: match self.mic.value() {
                MicParam::None => MicModel::None,
                MicParam::Dynamic => MicModel::Dynamic,
                MicParam::Ribbon => MicModel::Ribbon,
                MicParam::Condenser => MicModel::Condenser,
            },
            in_z_ohms: self.in_z.value().ohms(),
        }
    }
}

/// Preamp group.
#[derive(Params)]
pub struct PreampParams {
    /// Preamp switched in.
    #[id = "pre_on"]
    pub on: BoolParam,
    /// Tube or solid-state.
    #[id = "pre_type"]
    pub pre_type: EnumParam<PreTypeParam>,
    /// Gain at the mic input.
    #[id = "gain"]
    pub gain: FloatParam,
    /// The Level pot between the two triode stages (its wiper is stage 2's grid).
    #[id = "level"]
    pub level: FloatParam,
    /// Tube type.
    #[id = "tube"]
    pub tube: EnumParam<TubeParam>,
    /// Bias (character): −1 cold … +1 hot.
    #[id = "bias"]
    pub bias: FloatParam,
    /// High-pass filter.
    #[id = "hpf"]
    pub hpf: EnumParam<HighPassParam>,
    /// Output level of the preamp.
    #[id = "pre_out"]
    pub out: FloatParam,
    /// Loudness matching of the preamp's output to its input.
    #[id = "auto_gain"]
    pub auto_gain: BoolParam,
    /// −20 dB pad at the preamp input.
    #[id = "pad"]
    pub pad: BoolParam,
    /// Polarity (phase) reverse.
    #[id = "polarity"]
    pub polarity: BoolParam,
}

/// Headphone amp group.
#[derive(Params)]
pub struct HeadphoneParams {
    /// Headphone amp switched in.
    #[id = "hp_on"]
    pub on: BoolParam,
    /// The amp's output impedance.
    #[id = "amp_z"]
    pub amp_z: FloatParam,
    /// The amp's volume.
    #[id = "amp_vol"]
    pub volume: FloatParam,
    /// The amp's peak voltage swing (its rails).
    #[id = "amp_swing"]
    pub swing: FloatParam,
    /// The headphone it drives.
    #[id = "hp_model"]
    pub model: EnumParam<HeadphoneParam>,
    /// Keep the 1 kHz level, keep the shape.
    #[id = "hp_norm"]
    pub normalize: BoolParam,
}

impl HeadphoneParams {
    /// The DSP core's headphone settings.
    pub fn to_dsp(&self) -> HeadphoneSettings {
        HeadphoneSettings {
            amp_z_ohms: f64::from(self.amp_z.value()),
            volume_db: f64::from(self.volume.value()),
            swing_volts: f64::from(self.swing.value()),
            model: match self.model.value() {
                HeadphoneParam::Closed32 => HeadphoneModel::Closed32,
                HeadphoneParam::Dynamic80 => HeadphoneModel::Dynamic80,
                HeadphoneParam::Dynamic250 => HeadphoneModel::Dynamic250,
                HeadphoneParam::Open300 => HeadphoneModel::Open300,
                HeadphoneParam::Dynamic600 => HeadphoneModel::Dynamic600,
                HeadphoneParam::Planar => HeadphoneModel::Planar,
                HeadphoneParam::Iem => HeadphoneModel::Iem,
                HeadphoneParam::Custom => HeadphoneModel::Custom,
            },
            normalize: self.normalize.value(),
        }
    }
}

/// Output group.
#[derive(Params)]
pub struct OutputParams {
    /// Trim after the chain.
    #[id = "out_trim"]
    pub out_trim: FloatParam,
    /// Dry/wet mix in percent.
    #[id = "mix"]
    pub mix: FloatParam,
    /// The host's bypass.
    #[id = "bypass"]
    pub bypass: BoolParam,
    /// Level-matched compare: play the dry signal at the output's loudness.
    #[id = "compare"]
    pub compare: BoolParam,
}

/// Every parameter of the plugin.
#[derive(Params)]
pub struct TubelineParams {
    #[nested(group = "Input")]
    pub input: InputParams,
    #[nested(group = "DI")]
    pub di: DiParams,
    #[nested(group = "Mic")]
    pub mic: MicParams,
    #[nested(group = "Preamp")]
    pub preamp: PreampParams,
    #[nested(group = "Headphone")]
    pub headphone: HeadphoneParams,
    #[nested(group = "Output")]
    pub output: OutputParams,
    /// Oversampling quality (offline rendering always uses High).
    #[id = "quality"]
    pub quality: EnumParam<QualityParam>,
    /// Path of the measured headphone impedance curve (CSV) that
    /// `hp_model` = "Measured curve" uses. Saved in the plugin state, but
    /// only a hint once `hp_curve` holds the file's points.
    #[persist = "hp_csv"]
    pub hp_csv: Arc<RwLock<String>>,
    /// The measured curve's points and the file they came from, saved in
    /// the plugin state so a session or preset keeps its load on a machine
    /// without the file (see `headphone_curve`).
    #[persist = "hp_curve"]
    pub hp_curve: crate::headphone_curve::CurveSlot,
    /// The editor window's size, restored when it opens.
    #[persist = "editor"]
    pub editor_size: Arc<RwLock<crate::editor::EditorSize>>,
}

fn trim_param(name: &str) -> FloatParam {
    db_param(name, 0.0, TRIM_RANGE_DB)
}

fn on_off(name: &str, default: bool) -> BoolParam {
    BoolParam::new(name, default)
        .with_value_to_string(Arc::new(|v| if v { "On" } else { "Off" }.to_string()))
        .with_string_to_value(Arc::new(parse_bool))
}

impl Default for TubelineParams {
    fn default() -> Self {
        Self {
            input: InputParams {
                cal: EnumParam::new("Calibration", Calibration::Plus18),
                source: EnumParam::new("Source", SourceParam::Mic),
                in_trim: trim_param("Input Trim"),
            },
            di: DiParams {
                on: on_off("DI", false),
                ratio: EnumParam::new("DI Ratio", DiRatioParam::R12),
                pad: EnumParam::new("DI Pad", DiPadParam::Off),
                lift: on_off("Ground Lift", true),
                mains: EnumParam::new("Mains", MainsParam::Hz50),
                source: EnumParam::new("DI Source", DiSourceParam::LineOut),
                load: FloatParam::new(
                    "DI Load",
                    1500.0,
                    FloatRange::Skewed {
                        min: DI_LOAD_RANGE_OHMS.0,
                        max: DI_LOAD_RANGE_OHMS.1,
                        factor: FloatRange::skew_factor(-1.5),
                    },
                )
                .with_unit(" ohm")
                .with_step_size(1.0)
                .with_value_to_string(formatters::v2s_f32_rounded(0))
                .with_string_to_value(s2v_number()),
                cable: FloatParam::new(
                    "Cable",
                    DEFAULT_CABLE_M as f32,
                    FloatRange::Linear {
                        min: 0.0,
                        max: MAX_CABLE_M as f32,
                    },
                )
                .with_unit(" m")
                .with_step_size(0.1)
                .with_value_to_string(formatters::v2s_f32_rounded(1))
                .with_string_to_value(s2v_number()),
            },
            mic: MicParams {
                mic: EnumParam::new("Mic", MicParam::None),
                in_z: EnumParam::new("Input Impedance", InZParam::Z2400),
                in_xfmr: on_off("Input Transformer", false),
            },
            preamp: PreampParams {
                on: on_off("Preamp", true),
                pre_type: EnumParam::new("Preamp Type", PreTypeParam::Tube),
                gain: db_param("Gain", 20.0, GAIN_RANGE_DB),
                level: db_param("Level", -20.0, LEVEL_RANGE_DB),
                tube: EnumParam::new("Tube", TubeParam::T12AX7),
                bias: FloatParam::new(
                    "Bias",
                    0.0,
                    FloatRange::Linear {
                        min: -1.0,
                        max: 1.0,
                    },
                )
                // Continuous (no step size): a host shows and automates it
                // as a knob, not as a list of 201 steps.
                .with_value_to_string(Arc::new(v2s_bias))
                .with_string_to_value(s2v_number()),
                hpf: EnumParam::new("High-pass", HighPassParam::Off),
                out: db_param("Preamp Output", 0.0, PRE_OUT_RANGE_DB),
                auto_gain: on_off("Auto Gain", true),
                pad: on_off("Pad", false),
                polarity: on_off("Polarity", false),
            },
            headphone: HeadphoneParams {
                on: on_off("Headphone Amp", false),
                amp_z: FloatParam::new(
                    "Amp Output Impedance",
                    0.1,
                    FloatRange::Skewed {
                        min: AMP_Z_RANGE_OHMS.0,
                        max: AMP_Z_RANGE_OHMS.1,
                        factor: FloatRange::skew_factor(-2.5),
                    },
                )
                .with_unit(" ohm")
                .with_step_size(0.1)
                .with_value_to_string(formatters::v2s_f32_rounded(1))
                .with_string_to_value(s2v_number()),
                volume: db_param("Amp Volume", 0.0, AMP_VOL_RANGE_DB),
                swing: FloatParam::new(
                    "Amp Swing",
                    10.0,
                    FloatRange::Skewed {
                        min: AMP_SWING_RANGE_VOLTS.0,
                        max: AMP_SWING_RANGE_VOLTS.1,
                        factor: FloatRange::skew_factor(-1.0),
                    },
                )
                .with_unit(" V")
                .with_step_size(0.01)
                .with_value_to_string(formatters::v2s_f32_rounded(2))
                .with_string_to_value(s2v_number()),
                model: EnumParam::new("Headphone", HeadphoneParam::Closed32),
                normalize: on_off("Normalize Level", false),
            },
            output: OutputParams {
                out_trim: trim_param("Output Trim"),
                mix: FloatParam::new(
                    "Mix",
                    100.0,
                    FloatRange::Linear {
                        min: 0.0,
                        max: 100.0,
                    },
                )
                .with_unit(" %")
                .with_step_size(0.1)
                .with_value_to_string(formatters::v2s_f32_rounded(1))
                .with_string_to_value(s2v_number()),
                bypass: on_off("Bypass", false).make_bypass(),
                compare: on_off("Compare Dry", false),
            },
            quality: EnumParam::new("Quality", QualityParam::Live),
            hp_csv: Arc::new(RwLock::new(String::new())),
            hp_curve: crate::headphone_curve::CurveSlot::default(),
            editor_size: Arc::new(RwLock::new(crate::editor::EditorSize::default())),
        }
    }
}

impl TubelineParams {
    /// The DSP settings for the current parameter values. `offline` forces the
    /// highest quality, as the host's offline render mode demands.
    pub fn snapshot(&self, offline: bool) -> ChainSettings {
        let quality = if offline {
            Quality::High
        } else {
            match self.quality.value() {
                QualityParam::Live => Quality::Live,
                QualityParam::High => Quality::High,
            }
        };
        ChainSettings {
            cal_dbu: self.input.cal.value().dbu(),
            source: self.input.source.value().to_dsp(),
            in_trim_db: f64::from(self.input.in_trim.value()),
            pad: self.preamp.pad.value(),
            polarity: self.preamp.polarity.value(),
            out_trim_db: f64::from(self.output.out_trim.value()),
            mix: f64::from(self.output.mix.value()) / 100.0,
            bypass: self.output.bypass.value(),
            compare: self.output.compare.value(),
            quality,
            di_on: self.di.on.value(),
            di: self.di.to_dsp(),
            mic: self.mic.to_dsp(),
            in_xfmr: self.mic.in_xfmr.value(),
            pre_on: self.preamp.on.value(),
            pre_type: match self.preamp.pre_type.value() {
                PreTypeParam::Tube => PreampType::Tube,
                PreTypeParam::SolidState => PreampType::SolidState,
            },
            preamp: self.preamp.to_dsp(),
            auto_gain: self.preamp.auto_gain.value(),
            hp_on: self.headphone.on.value(),
            headphone: self.headphone.to_dsp(),
        }
    }

    /// Set one parameter from text, as a person types it on the renderer's
    /// command line: a plain number (units such as "dB" or "%" may follow),
    /// an on/off word, or an enum variant's ID or name.
    pub fn set_from_text(&self, id: &str, text: &str) -> Result<(), ParamError> {
        let map = self.param_map();
        let Some((_, ptr, _)) = map.iter().find(|(pid, _, _)| pid == id) else {
            return Err(ParamError::UnknownId {
                id: id.to_string(),
                known: map.iter().map(|(pid, _, _)| pid.clone()).collect(),
            });
        };
        let bad = |expected: String| ParamError::BadValue {
            id: id.to_string(),
            value: text.to_string(),
            expected,
        };
        // SAFETY: every `ParamPtr` in `map` points into `self`, which outlives this call.
        unsafe {
            match ptr {
                ParamPtr::FloatParam(_) | ParamPtr::IntParam(_) => {
                    let number = parse_display_number(text)
                        .ok_or_else(|| bad(format!("a number{}", ptr.unit())))?;
                    let (min, max) = (ptr.preview_plain(0.0), ptr.preview_plain(1.0));
                    if !(min..=max).contains(&number) {
                        return Err(bad(format!("a value from {min} to {max}{}", ptr.unit())));
                    }
                    ptr._internal_set_normalized_value(ptr.preview_normalized(number));
                }
                ParamPtr::BoolParam(_) => {
                    let value = parse_bool(text).ok_or_else(|| bad("on or off".to_string()))?;
                    ptr._internal_set_normalized_value(if value { 1.0 } else { 0.0 });
                }
                ParamPtr::EnumParam(p) => {
                    if !(**p).set_from_id(text.trim()) {
                        let names = enum_choices(ptr);
                        let wanted = simplify(text);
                        let index = names
                            .iter()
                            .position(|n| simplify(n) == wanted)
                            .ok_or_else(|| bad(format!("one of: {}", names.join(", "))))?;
                        let steps = ptr.step_count().unwrap_or(1).max(1);
                        ptr._internal_set_normalized_value(index as f32 / steps as f32);
                    }
                }
            }
        }
        Ok(())
    }

    /// Check a saved state (a preset file or a host's saved state, which share
    /// one JSON format) against this parameter tree and return, for every
    /// parameter it names, the pointer into `self` and the normalized value
    /// to give it. Nothing is changed, so a caller can apply the result
    /// itself: the editor goes through the host (`raw_begin_set_parameter`,
    /// `raw_set_parameter_normalized`, `raw_end_set_parameter` per pointer),
    /// then restores the persisted fields with
    /// `deserialize_fields(&state.fields)`. Parameters the state does not
    /// name are not in the plan (they keep their values).
    ///
    /// Fails on the first entry that does not fit: an unknown ID, a value of
    /// the wrong type, a number outside the parameter's range or not finite,
    /// or an enum choice that does not exist; and on a saved measured curve
    /// (`hp_curve`) that is corrupt.
    pub fn plan_state(&self, state: &PluginState) -> Result<Vec<(ParamPtr, f32)>, ParamError> {
        let map = self.param_map();
        // Enum IDs can only be resolved by setting a parameter, so they are
        // resolved on a scratch copy of the tree, never on `self`. (It stays
        // where it is while its pointers are used.)
        let scratch = TubelineParams::default();
        let scratch_map = scratch.param_map();
        let mut plan = Vec::with_capacity(state.params.len());
        for (id, value) in &state.params {
            let Some((_, ptr, _)) = map.iter().find(|(pid, _, _)| pid == id) else {
                return Err(ParamError::CorruptState(format!(
                    "unknown parameter ID \"{id}\" (this file was not saved by this version of Tubeline, or was edited: remove that entry)"
                )));
            };
            // SAFETY: `ptr` points into `self`, which outlives this call, and
            // the scratch pointers point into `scratch`, which lives (unmoved)
            // until the end of this function.
            let normalized = unsafe {
                match (ptr, value) {
                    (ParamPtr::FloatParam(_), ParamValue::F32(v)) if v.is_finite() => {
                        let (min, max) = (ptr.preview_plain(0.0), ptr.preview_plain(1.0));
                        if !(min..=max).contains(v) {
                            return Err(ParamError::CorruptState(format!(
                                "\"{id}\" = {v} is outside {min} … {max}{}",
                                ptr.unit()
                            )));
                        }
                        ptr.preview_normalized(*v)
                    }
                    (ParamPtr::FloatParam(_), ParamValue::F32(v)) => {
                        return Err(ParamError::CorruptState(format!(
                            "\"{id}\" = {v} is not a finite number"
                        )))
                    }
                    (ParamPtr::BoolParam(_), ParamValue::Bool(v)) => f32::from(u8::from(*v)),
                    (ParamPtr::EnumParam(_), ParamValue::String(s)) => {
                        let Some((_, ParamPtr::EnumParam(p), _)) =
                            scratch_map.iter().find(|(pid, _, _)| pid == id)
                        else {
                            unreachable!("the scratch tree has the same parameters as self");
                        };
                        if !(**p).set_from_id(s) {
                            let scratch_ptr = ParamPtr::EnumParam(*p);
                            return Err(ParamError::CorruptState(format!(
                                "\"{id}\" has no choice \"{s}\"; the choices are: {}",
                                enum_choices(&scratch_ptr).join(", ")
                            )));
                        }
                        ParamPtr::EnumParam(*p).unmodulated_normalized_value()
                    }
                    (ParamPtr::EnumParam(_), ParamValue::I32(i)) => {
                        let steps = ptr.step_count().unwrap_or(0) as i32;
                        if !(0..=steps).contains(i) {
                            return Err(ParamError::CorruptState(format!(
                                "\"{id}\" has no choice number {i} (0 … {steps})"
                            )));
                        }
                        *i as f32 / steps.max(1) as f32
                    }
                    _ => {
                        return Err(ParamError::CorruptState(format!(
                            "\"{id}\" has a value of the wrong type: {value:?} (expected {})",
                            match ptr {
                                ParamPtr::FloatParam(_) => "a number, written {\"f32\": 1.0}",
                                ParamPtr::IntParam(_) => "an integer, written {\"i32\": 1}",
                                ParamPtr::BoolParam(_) => "true or false, written {\"bool\": true}",
                                ParamPtr::EnumParam(_) =>
                                    "a choice's ID, written {\"string\": \"id\"}",
                            }
                        )))
                    }
                }
            };
            plan.push((*ptr, normalized));
        }
        crate::headphone_curve::check_state(state).map_err(|e| {
            ParamError::CorruptState(format!("\"{}\": {e}", crate::headphone_curve::CURVE_KEY))
        })?;
        Ok(plan)
    }

    /// Load a saved state (a preset file or a host's saved state, which share
    /// one JSON format): [`Self::plan_state`], then set every planned value
    /// and restore the persisted fields. Every entry is checked before
    /// anything is changed, so a corrupt state leaves the parameters as they
    /// were.
    pub fn apply_state(&self, state: &PluginState) -> Result<(), ParamError> {
        for (ptr, normalized) in self.plan_state(state)? {
            // SAFETY: the plan's pointers point into `self`.
            unsafe { ptr._internal_set_normalized_value(normalized) };
        }
        let mut state = state.clone();
        crate::headphone_curve::upgrade_state(&mut state);
        self.deserialize_fields(&state.fields);
        Ok(())
    }

    /// The current values in the plugin's state format (what a host saves).
    pub fn to_state(&self) -> PluginState {
        let mut params = BTreeMap::new();
        for (id, ptr, _) in self.param_map() {
            // SAFETY: `ptr` points into `self`, which outlives this call.
            let value = unsafe {
                match ptr {
                    ParamPtr::FloatParam(p) => ParamValue::F32((*p).unmodulated_plain_value()),
                    ParamPtr::IntParam(p) => ParamValue::I32((*p).unmodulated_plain_value()),
                    ParamPtr::BoolParam(p) => ParamValue::Bool((*p).unmodulated_plain_value()),
                    ParamPtr::EnumParam(p) => match (*p).unmodulated_plain_id() {
                        Some(s) => ParamValue::String(s.to_string()),
                        None => ParamValue::I32((*p).unmodulated_plain_value()),
                    },
                }
            };
            params.insert(id, value);
        }
        PluginState {
            version: env!("CARGO_PKG_VERSION").to_string(),
            params,
            fields: self.serialize_fields(),
        }
    }
}

/// The display names of an enum parameter's choices.
///
/// # Safety
/// `ptr` must point to a live parameter.
unsafe fn enum_choices(ptr: &ParamPtr) -> Vec<String> {
    let steps = unsafe { ptr.step_count() }.unwrap_or(0);
    (0..=steps)
        .map(|i| unsafe { ptr.normalized_value_to_string(i as f32 / steps.max(1) as f32, false) })
        .collect()
}

/// Lower case with everything but letters and digits removed, so "Pro line
/// +4 dBu", "pro-line" and "ProLine" compare equal where they should.
fn simplify(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Parse a number that may carry a unit ("-6", "-6 dB", "50%", "1k").
pub fn parse_number(text: &str) -> Option<f32> {
    let t = text.trim();
    let end = t
        .char_indices()
        .find(|&(i, c)| {
            !(c.is_ascii_digit() || c == '.' || ((c == '-' || c == '+') && i == 0) || c == 'e')
        })
        .map_or(t.len(), |(i, _)| i);
    let (num, unit) = t.split_at(end);
    let value: f32 = num.parse().ok()?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "db" | "hz" | "%" | "ohm" | "ohms" | "Ω" | "v" | "m" | "metres" | "meters" => 1.0,
        "k" | "khz" | "kohm" | "kΩ" => 1000.0,
        _ => return None,
    };
    Some(value * scale).filter(|v| v.is_finite())
}

/// Parse a number as a parameter displays it or a person types it: a unit
/// may follow ("-6 dB", "50 %", "1.5k"), and so may a label in parentheses
/// ("-1.00 (cold)", "+0.25 (hot)"); "nominal" alone is zero (Bias).
pub fn parse_display_number(text: &str) -> Option<f32> {
    let t = text.trim();
    let t = match t.find('(') {
        Some(i) if t.ends_with(')') => t[..i].trim_end(),
        _ => t,
    };
    if t.eq_ignore_ascii_case("nominal") {
        return Some(0.0);
    }
    parse_number(t)
}

/// Parse an on/off word.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" | "in" => Some(true),
        "off" | "false" | "no" | "0" | "out" => Some(false),
        _ => None,
    }
}

/// A parameter could not be set from a person's input.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamError {
    /// No parameter has this ID.
    UnknownId { id: String, known: Vec<String> },
    /// The value does not fit the parameter.
    BadValue {
        id: String,
        value: String,
        expected: String,
    },
    /// A saved state or preset is not one this plugin can load.
    CorruptState(String),
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamError::UnknownId { id, known } => write!(
                f,
                "unknown parameter ID \"{id}\"; the IDs are: {}",
                known.join(", ")
            ),
            ParamError::BadValue {
                id,
                value,
                expected,
            } => write!(
                f,
                "\"{value}\" is not a valid value for \"{id}\": expected {expected}"
            ),
            ParamError::CorruptState(why) => write!(f, "the state or preset is corrupt: {why}"),
        }
    }
}

impl std::error::Error for ParamError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_with_units_parse() {
        assert_eq!(parse_number("-6"), Some(-6.0));
        assert_eq!(parse_number("-6 dB"), Some(-6.0));
        assert_eq!(parse_number("+3.5dB"), Some(3.5));
        assert_eq!(parse_number("50%"), Some(50.0));
        assert_eq!(parse_number("1.5k"), Some(1500.0));
        assert_eq!(parse_number("10 m"), Some(10.0));
        assert_eq!(parse_number("2.5 metres"), Some(2.5));
        assert_eq!(parse_number("loud"), None);
        assert_eq!(parse_number("3 parsecs"), None);
        assert_eq!(parse_display_number("-1.00 (cold)"), Some(-1.0));
        assert_eq!(parse_display_number("+0.25 (hot)"), Some(0.25));
        assert_eq!(parse_display_number("0.00 (nominal)"), Some(0.0));
        assert_eq!(parse_display_number("nominal"), Some(0.0));
        assert_eq!(parse_display_number("-6 dB"), Some(-6.0));
        assert_eq!(parse_display_number("(cold)"), None);
        assert_eq!(parse_display_number("warm (hot)"), None);
    }

    #[test]
    fn set_from_text_accepts_plain_values_and_rejects_bad_ones() {
        let p = TubelineParams::default();
        p.set_from_text("in_trim", "-6 dB").unwrap();
        assert_eq!(p.input.in_trim.value(), -6.0);
        p.set_from_text("pad", "on").unwrap();
        assert!(p.preamp.pad.value());
        p.set_from_text("cal", "+24 dBu").unwrap();
        assert_eq!(p.input.cal.value(), Calibration::Plus24);
        p.set_from_text("cal", "20").unwrap();
        assert_eq!(p.input.cal.value(), Calibration::Plus20);
        p.set_from_text("source", "mic").unwrap();
        assert_eq!(p.input.source.value(), SourceParam::Mic);
        p.set_from_text("source", "Consumer line -10 dBV").unwrap();
        assert_eq!(p.input.source.value(), SourceParam::ConsumerLine);
        p.set_from_text("quality", "High").unwrap();
        assert_eq!(p.quality.value(), QualityParam::High);
        p.set_from_text("mix", "25").unwrap();
        assert_eq!(p.output.mix.value(), 25.0);

        assert!(matches!(
            p.set_from_text("gainz", "1"),
            Err(ParamError::UnknownId { .. })
        ));
        let e = p.set_from_text("in_trim", "99").unwrap_err();
        assert!(e.to_string().contains("-24"), "{e}");
        assert!(p.set_from_text("pad", "maybe").is_err());
        let e = p.set_from_text("source", "banjo").unwrap_err();
        assert!(e.to_string().contains("Mic"), "{e}");
    }

    #[test]
    fn every_choice_of_every_enum_reaches_the_dsp_settings() {
        let p = TubelineParams::default();
        for (id, ptr, _) in p.param_map() {
            let ParamPtr::EnumParam(_) = ptr else {
                continue;
            };
            // SAFETY: `ptr` points into `p`, alive for the test.
            let names = unsafe { enum_choices(&ptr) };
            let mut seen = Vec::new();
            for name in &names {
                p.set_from_text(&id, name).unwrap();
                let snap = format!("{:?}", p.snapshot(false));
                assert!(!seen.contains(&snap), "{id} = {name} changes nothing");
                seen.push(snap);
            }
        }
    }

    #[test]
    fn state_round_trips_and_corrupt_state_changes_nothing() {
        let p = TubelineParams::default();
        p.set_from_text("out_trim", "3.25").unwrap();
        p.set_from_text("polarity", "on").unwrap();
        p.set_from_text("source", "instrument").unwrap();
        let state = p.to_state();
        let json = serde_json::to_string(&state).unwrap();

        let q = TubelineParams::default();
        q.apply_state(&serde_json::from_str(&json).unwrap())
            .unwrap();
        assert_eq!(q.snapshot(false), p.snapshot(false));

        let mut bad = state.clone();
        bad.params.insert("in_trim".into(), ParamValue::F32(1000.0));
        let r = TubelineParams::default();
        assert!(r.apply_state(&bad).is_err());
        assert_eq!(r.snapshot(false), TubelineParams::default().snapshot(false));
    }
}
