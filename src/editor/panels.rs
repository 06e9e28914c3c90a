//! The stage panels, laid out as the signal flows: Input → DI → Preamp →
//! Headphone amp → Output. Each panel carries its in/out switch, every
//! parameter of its stage, the level where the stage ends (dBu rms and dBFS
//! peak), the stage's own readings and the advice that concerns it.

use egui::{Color32, RichText, Ui};

use super::widgets::{fmt_db, grid_bar, level_bar, Controls, CLIP_COLOUR, WARN_COLOUR};
use crate::dsp::{full_scale_peak_volts, gain_to_db, volts_rms_to_dbu};
use crate::meters::{ChainMeters, LevelReading};
use crate::params::TubelineParams;

/// Width of the level bars, in points.
const BAR_WIDTH: f32 = 190.0;

/// A piece of advice, already placed in its stage.
#[derive(Clone, Debug, PartialEq)]
pub struct Note {
    /// Shown in warning colours.
    pub warning: bool,
    /// The advice in plain words.
    pub text: String,
}

/// The stages that have panels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Panel {
    /// Calibration, source, input trim.
    Input,
    /// The DI box.
    Di,
    /// The tube preamp.
    Preamp,
    /// The headphone amp.
    Headphone,
    /// Output trim, mix, bypass.
    Output,
}

impl Panel {
    /// Every panel, in signal order.
    pub const ALL: [Panel; 5] = [
        Panel::Input,
        Panel::Di,
        Panel::Preamp,
        Panel::Headphone,
        Panel::Output,
    ];

    /// Panel title.
    pub fn title(self) -> &'static str {
        match self {
            Panel::Input => "Input",
            Panel::Di => "DI box",
            Panel::Preamp => "Tube preamp",
            Panel::Headphone => "Headphone amp",
            Panel::Output => "Output",
        }
    }
}

/// Editor-side state a panel may edit that is not a parameter.
#[derive(Default)]
pub struct PanelState {
    /// The measured-curve path being edited.
    pub csv_path: String,
    /// True once `csv_path` was loaded from the parameters.
    pub csv_path_loaded: bool,
    /// Set when the path was committed: the audio side should redesign.
    pub csv_committed: bool,
}

/// What every panel reads.
pub struct PanelInputs<'a> {
    /// The parameters.
    pub params: &'a TubelineParams,
    /// Meter readings (display-smoothed).
    pub meters: &'a ChainMeters,
    /// True when the readings are live (editor open and audio running).
    pub live: bool,
    /// Advice per panel.
    pub notes: &'a [(Panel, Note)],
    /// The measured headphone curve's load error, if any.
    pub curve_error: Option<String>,
}

/// Draw one stage panel.
pub fn panel(
    ui: &mut Ui,
    which: Panel,
    inputs: &PanelInputs<'_>,
    controls: &mut Controls<'_>,
    state: &mut PanelState,
) {
    let p = inputs.params;
    let cal = p.input.cal.value().dbu();
    ui.horizontal(|ui| {
        ui.label(RichText::new(which.title()).heading());
        match which {
            Panel::Di => {
                controls.toggle(ui, "di_on", &p.di.on);
            }
            Panel::Preamp => {
                controls.toggle(ui, "pre_on", &p.preamp.on);
            }
            Panel::Headphone => {
                controls.toggle(ui, "hp_on", &p.headphone.on);
            }
            Panel::Output => {
                controls.toggle(ui, "bypass", &p.output.bypass);
            }
            Panel::Input => {}
        }
    });
    ui.separator();
    match which {
        Panel::Input => {
            controls.choice(ui, "cal", &p.input.cal);
            controls.choice(ui, "source", &p.input.source);
            controls.slider(ui, "in_trim", &p.input.in_trim);
            controls.choice(ui, "quality", &p.quality);
            ui.separator();
            level_readout(
                ui,
                "Chain input",
                &inputs.meters.input,
                cal,
                0.0,
                inputs.live,
            );
        }
        Panel::Di => {
            controls.choice(ui, "di_ratio", &p.di.ratio);
            controls.choice(ui, "di_pad", &p.di.pad);
            controls.choice(ui, "di_source", &p.di.source);
            controls.slider(ui, "di_load", &p.di.load);
            ui.horizontal(|ui| {
                controls.toggle(ui, "di_lift", &p.di.lift);
            });
            controls.choice(ui, "mains_hz", &p.di.mains);
            ui.separator();
            level_readout(ui, "DI out", &inputs.meters.di_out, cal, 0.0, inputs.live);
            let sat = inputs.meters.di_saturation;
            ui.label(
                RichText::new(format!("Core flux: {:.0} % of saturation", 100.0 * sat)).small(),
            );
            level_bar(
                ui,
                BAR_WIDTH,
                gain_to_db(sat),
                gain_to_db(sat),
                (-40.0, 6.0),
                -6.0,
                0.0,
            );
        }
        Panel::Preamp => {
            controls.slider(ui, "gain", &p.preamp.gain);
            controls.slider(ui, "level", &p.preamp.level);
            controls.choice(ui, "tube", &p.preamp.tube);
            controls.slider(ui, "bias", &p.preamp.bias);
            controls.choice(ui, "hpf", &p.preamp.hpf);
            controls.slider(ui, "pre_out", &p.preamp.out);
            ui.horizontal_wrapped(|ui| {
                controls.toggle(ui, "pad", &p.preamp.pad);
                controls.toggle(ui, "polarity", &p.preamp.polarity);
                controls.toggle(ui, "auto_gain", &p.preamp.auto_gain);
            });
            ui.separator();
            level_readout(
                ui,
                "Mic input",
                &inputs.meters.preamp_in,
                cal,
                0.0,
                inputs.live,
            );
            let m = inputs.meters;
            for stage in 0..2 {
                ui.label(
                    RichText::new(format!(
                        "Stage {} grid: peak {:+.2} V, bias {:+.2} V, conducts at {:+.2} V",
                        stage + 1,
                        m.grid_peak_volts[stage],
                        m.grid_bias_volts[stage],
                        m.grid_conduction_volts
                    ))
                    .small(),
                );
                grid_bar(
                    ui,
                    BAR_WIDTH,
                    m.grid_peak_volts[stage],
                    m.grid_bias_volts[stage],
                    m.grid_conduction_volts,
                );
            }
            level_readout(ui, "Preamp out", &m.preamp_out, cal, 0.0, inputs.live);
        }
        Panel::Headphone => {
            controls.slider(ui, "amp_z", &p.headphone.amp_z);
            controls.slider(ui, "amp_vol", &p.headphone.volume);
            controls.slider(ui, "amp_swing", &p.headphone.swing);
            controls.choice(ui, "hp_model", &p.headphone.model);
            ui.horizontal(|ui| {
                controls.toggle(ui, "hp_norm", &p.headphone.normalize);
            });
            csv_field(ui, inputs, controls, state);
            ui.separator();
            let m = inputs.meters;
            ui.label(
                RichText::new(format!(
                    "Headphone: {:.2} V rms, {:.3} V peak",
                    m.headphone.rms_volts, m.headphone.peak_volts
                ))
                .small(),
            );
            ui.label(
                RichText::new(format!(
                    "{:.2} mW, {:.1} mA rms",
                    1e3 * m.headphone_power_watts,
                    1e3 * m.headphone_current_amps
                ))
                .small(),
            );
            let swing = f64::from(p.headphone.swing.value());
            level_bar(
                ui,
                BAR_WIDTH,
                gain_to_db(m.headphone.rms_volts * std::f64::consts::SQRT_2 / swing),
                gain_to_db(m.headphone.peak_volts / swing),
                (-60.0, 3.0),
                -6.0,
                0.0,
            );
        }
        Panel::Output => {
            controls.slider(ui, "out_trim", &p.output.out_trim);
            controls.slider(ui, "mix", &p.output.mix);
            ui.horizontal(|ui| {
                controls.toggle(ui, "compare", &p.output.compare);
            });
            ui.separator();
            let trim = f64::from(p.output.out_trim.value());
            level_readout(ui, "Output", &inputs.meters.output, cal, trim, inputs.live);
        }
    }
    let notes: Vec<&Note> = inputs
        .notes
        .iter()
        .filter(|(w, _)| *w == which)
        .map(|(_, n)| n)
        .collect();
    if !notes.is_empty() {
        ui.separator();
        for n in notes {
            let colour = if n.warning {
                WARN_COLOUR
            } else {
                ui.visuals().text_color()
            };
            ui.label(RichText::new(&n.text).color(colour).small());
        }
    }
}

/// The level at a stage boundary in dBu rms and dBFS peak (`trim_db` is
/// added to the dBFS figure: the output trim acts after the metering point).
fn level_readout(
    ui: &mut Ui,
    name: &str,
    level: &LevelReading,
    cal_dbu: f64,
    trim_db: f64,
    live: bool,
) {
    let dbu = volts_rms_to_dbu(level.rms_volts);
    let dbfs_peak = gain_to_db(level.peak_volts / full_scale_peak_volts(cal_dbu)) + trim_db;
    // An rms in dBFS on the same scale as the peak: a full-scale sine's rms
    // is 1/√2 of its peak, i.e. it reads 0 dBFS rms at 0 dBFS peak.
    let dbfs_rms =
        gain_to_db(level.rms_volts * std::f64::consts::SQRT_2 / full_scale_peak_volts(cal_dbu))
            + trim_db;
    let text = if live {
        format!(
            "{name}: {} dBu · {} dBFS pk",
            fmt_db(dbu),
            fmt_db(dbfs_peak)
        )
    } else {
        format!("{name}: (no audio)")
    };
    let colour = if dbfs_peak >= 0.0 {
        CLIP_COLOUR
    } else {
        ui.visuals().text_color()
    };
    ui.label(RichText::new(text).small().color(colour));
    level_bar(ui, BAR_WIDTH, dbfs_rms, dbfs_peak, (-60.0, 6.0), -6.0, 0.0);
}

/// The measured-curve path and its load error.
fn csv_field(
    ui: &mut Ui,
    inputs: &PanelInputs<'_>,
    controls: &mut Controls<'_>,
    state: &mut PanelState,
) {
    let p = inputs.params;
    if !state.csv_path_loaded {
        state.csv_path = p.hp_csv.read().map(|s| s.clone()).unwrap_or_default();
        state.csv_path_loaded = true;
    }
    let r = ui
        .vertical(|ui| {
            ui.label(RichText::new("Measured curve (CSV: Hz, ohm, degrees)").small());
            let edit = ui
                .add(
                    egui::TextEdit::singleline(&mut state.csv_path)
                        .desired_width(super::widgets::SLIDER_WIDTH + 50.0)
                        .hint_text("/path/to/impedance.csv"),
                )
                .on_hover_text(super::help::help("hp_csv"));
            let commit = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            if commit {
                if let Ok(mut path) = p.hp_csv.write() {
                    *path = state.csv_path.trim().to_string();
                }
                state.csv_committed = true;
            }
            let saved = p.hp_curve.hint();
            if let Some(e) = &inputs.curve_error {
                ui.label(RichText::new(e).small().color(CLIP_COLOUR));
            } else if let Some((points, file)) = saved {
                // The points travel with the session; the path is a hint.
                ui.label(
                    RichText::new(format!(
                        "{points} points saved with the session, loaded from {file}"
                    ))
                    .small()
                    .color(Color32::GRAY),
                );
            } else if p.headphone.model.value() == crate::params::HeadphoneParam::Custom
                && state.csv_path.trim().is_empty()
            {
                ui.label(
                    RichText::new("Choose a CSV file, then press Enter")
                        .small()
                        .color(Color32::GRAY),
                );
            }
        })
        .response;
    controls.placed.push(("hp_csv".to_string(), r.rect));
}
