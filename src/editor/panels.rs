//! The stage panels, laid out as the signal flows: Input → DI → Preamp →
//! Headphone amp → Output. Each panel carries its in/out switch, every
//! parameter of its stage (the main controls as knobs), the level where the
//! stage ends (dBu rms and dBFS peak, and an LED ladder with peak hold), the
//! stage's own readings and the advice that concerns it.

use egui::{Color32, RichText, Ui};

use super::faceplate;
use super::help;
use super::meter::{led_meter, Ballistics, LedLevels, LedScale, Tap};
use super::widgets::{fmt_db, grid_bar, Controls, CLIP_COLOUR, WARN_COLOUR};
use crate::dsp::mic::{MicModel, MicSettings};
use crate::dsp::solid::{RAIL_VOLTS, SWING_VOLTS};
use crate::dsp::{full_scale_peak_volts, gain_to_db, volts_rms_to_dbu};
use crate::params::{PreTypeParam, TubelineParams};

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
    /// Meter readings (display-smoothed, with held peaks).
    pub meters: &'a Ballistics,
    /// True when the readings are live (editor open and audio running).
    pub live: bool,
    /// Advice per panel.
    pub notes: &'a [(Panel, Note)],
    /// The measured headphone curve's load error, if any.
    pub curve_error: Option<String>,
}

/// Draw one stage panel, its body `width` points wide and at least
/// `min_height` high, on its faceplate (see [`faceplate`]): the main
/// controls (knobs, switches) first, then the setup values, then the
/// stage's meters and the advice that concerns it. Returns the height its
/// body needed.
pub fn panel(
    ui: &mut Ui,
    which: Panel,
    (width, min_height): (f32, f32),
    inputs: &PanelInputs<'_>,
    controls: &mut Controls<'_>,
    state: &mut PanelState,
) -> f32 {
    let p = inputs.params;
    let lamp_on = match which {
        Panel::Input => true,
        Panel::Di => p.di.on.value(),
        Panel::Preamp => p.preamp.on.value(),
        Panel::Headphone => p.headphone.on.value(),
        Panel::Output => !p.output.bypass.value(),
    };
    let mut cx = (controls, state);
    faceplate::stage_panel(
        ui,
        (width, min_height),
        which.title(),
        lamp_on,
        &mut cx,
        |ui, (controls, _)| match which {
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
        },
        |ui, (controls, state)| body(ui, which, inputs, controls, state),
    )
}

/// A panel's body.
fn body(
    ui: &mut Ui,
    which: Panel,
    inputs: &PanelInputs<'_>,
    controls: &mut Controls<'_>,
    state: &mut PanelState,
) {
    let p = inputs.params;
    let cal = p.input.cal.value().dbu();
    let m = inputs.meters.display();
    match which {
        Panel::Input => {
            controls.knobs(ui, &[("in_trim", &p.input.in_trim)]);
            faceplate::divider(ui);
            controls.choice(ui, "cal", &p.input.cal);
            controls.choice(ui, "source", &p.input.source);
            controls.choice(ui, "quality", &p.quality);
            faceplate::divider(ui);
            let level = Level::new(inputs, Tap::Input, cal, 0.0);
            level_meter(
                ui,
                controls,
                "meter_input",
                "Chain input",
                level,
                inputs.live,
            );
        }
        Panel::Di => {
            controls.choice(ui, "di_ratio", &p.di.ratio);
            controls.choice(ui, "di_pad", &p.di.pad);
            controls.choice(ui, "di_source", &p.di.source);
            controls.slider(ui, "di_load", &p.di.load);
            controls.slider(ui, "cable_m", &p.di.cable);
            ui.horizontal(|ui| {
                controls.toggle(ui, "di_lift", &p.di.lift);
            });
            controls.choice(ui, "mains_hz", &p.di.mains);
            faceplate::divider(ui);
            let level = Level::new(inputs, Tap::DiOut, cal, 0.0);
            level_meter(ui, controls, "meter_di", "DI out", level, inputs.live);
            let sat = m.di_saturation;
            ui.label(
                RichText::new(format!("Core flux: {:.0} % of saturation", 100.0 * sat)).small(),
            );
            let sat_db = gain_to_db(sat);
            led_meter(
                ui,
                ui.available_width(),
                LedLevels {
                    rms_db: sat_db,
                    peak_db: sat_db,
                    hold_db: None,
                },
                &LedScale::SATURATION,
            );
        }
        Panel::Preamp => {
            controls.knobs(
                ui,
                &[
                    ("gain", &p.preamp.gain),
                    ("level", &p.preamp.level),
                    ("pre_out", &p.preamp.out),
                ],
            );
            ui.horizontal_wrapped(|ui| {
                controls.toggle(ui, "pad", &p.preamp.pad);
                controls.toggle(ui, "polarity", &p.preamp.polarity);
                controls.toggle(ui, "auto_gain", &p.preamp.auto_gain);
            });
            faceplate::divider(ui);
            controls.choice(ui, "pre_type", &p.preamp.pre_type);
            controls.choice(ui, "tube", &p.preamp.tube);
            controls.slider(ui, "bias", &p.preamp.bias);
            controls.choice(ui, "hpf", &p.preamp.hpf);
            faceplate::divider(ui);
            // The mic and the input it sees, before the tubes.
            controls.choice(ui, "mic", &p.mic.mic);
            controls.choice(ui, "in_z", &p.mic.in_z);
            ui.horizontal(|ui| {
                controls.toggle(ui, "in_xfmr", &p.mic.in_xfmr);
            });
            ui.label(RichText::new(mic_reading(&p.mic.to_dsp())).small());
            faceplate::divider(ui);
            let level = Level::new(inputs, Tap::PreampIn, cal, 0.0);
            level_meter(ui, controls, "meter_mic", "Mic input", level, inputs.live);
            // The grid readings belong to the tubes: the solid-state pre
            // has none (its section does not run the tubes), so it says
            // where its op-amps clip instead of showing the tubes at rest.
            let tubes = p.preamp.pre_type.value() == PreTypeParam::Tube;
            if !tubes {
                ui.label(RichText::new(solid_state_reading()).small());
            }
            for stage in (0..2).filter(|_| tubes) {
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
                    ui.available_width(),
                    m.grid_peak_volts[stage],
                    m.grid_bias_volts[stage],
                    m.grid_conduction_volts,
                );
            }
            let level = Level::new(inputs, Tap::PreampOut, cal, 0.0);
            level_meter(
                ui,
                controls,
                "meter_preamp",
                "Preamp out",
                level,
                inputs.live,
            );
        }
        Panel::Headphone => {
            controls.knobs(
                ui,
                &[
                    ("amp_z", &p.headphone.amp_z),
                    ("amp_vol", &p.headphone.volume),
                ],
            );
            ui.horizontal(|ui| {
                controls.toggle(ui, "hp_norm", &p.headphone.normalize);
            });
            faceplate::divider(ui);
            controls.slider(ui, "amp_swing", &p.headphone.swing);
            controls.choice(ui, "hp_model", &p.headphone.model);
            csv_field(ui, inputs, controls, state);
            faceplate::divider(ui);
            // Volts across the headphone against the amp's rails.
            let swing = f64::from(p.headphone.swing.value());
            let hold = inputs.meters.held_peak_volts(Tap::Headphone);
            let r = ui
                .vertical(|ui| {
                    ui.label(
                        RichText::new(format!(
                            "Headphone: {:.2} V rms, {:.3} V peak",
                            m.headphone.rms_volts, m.headphone.peak_volts
                        ))
                        .small(),
                    );
                    ui.label(
                        RichText::new(format!(
                            "{:.2} mW, {:.1} mA rms · dB re the rails",
                            1e3 * m.headphone_power_watts,
                            1e3 * m.headphone_current_amps
                        ))
                        .small(),
                    );
                    led_meter(
                        ui,
                        ui.available_width(),
                        LedLevels {
                            rms_db: gain_to_db(
                                m.headphone.rms_volts * std::f64::consts::SQRT_2 / swing,
                            ),
                            peak_db: gain_to_db(m.headphone.peak_volts / swing),
                            hold_db: Some(gain_to_db(hold / swing)),
                        },
                        &LedScale::FULL_SCALE,
                    );
                })
                .response
                .on_hover_text(help::help("meter_headphone"));
            controls
                .placed
                .push(("meter_headphone".to_string(), r.rect));
        }
        Panel::Output => {
            controls.knobs(
                ui,
                &[("out_trim", &p.output.out_trim), ("mix", &p.output.mix)],
            );
            ui.horizontal(|ui| {
                controls.toggle(ui, "compare", &p.output.compare);
            });
            faceplate::divider(ui);
            let trim = f64::from(p.output.out_trim.value());
            let level = Level::new(inputs, Tap::Output, cal, trim);
            level_meter(ui, controls, "meter_output", "Output", level, inputs.live);
        }
    }
    let notes: Vec<&Note> = inputs
        .notes
        .iter()
        .filter(|(w, _)| *w == which)
        .map(|(_, n)| n)
        .collect();
    if !notes.is_empty() {
        faceplate::divider(ui);
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

/// The mic's impedance against the input's, and what the loading leaves at
/// 1 kHz, in words.
fn mic_reading(mic: &MicSettings) -> String {
    if mic.model == MicModel::None {
        return "Ideal source: no loading.".to_string();
    }
    let z = mic.model.impedance(1000.0);
    let h = mic.in_z_ohms / (mic.in_z_ohms + z);
    format!(
        "Mic {:.0} ohm at 1 kHz on {:.0} ohm: {:+.1} dB at 1 kHz",
        z.norm(),
        mic.in_z_ohms,
        gain_to_db(h.norm())
    )
}

/// A stage-boundary level in the units its meter shows.
struct Level {
    /// dBu rms.
    dbu: f64,
    /// dBFS peak.
    dbfs_peak: f64,
    /// dBFS rms, on the peak's scale (a full-scale sine reads 0).
    dbfs_rms: f64,
    /// The held peak, dBFS.
    dbfs_hold: f64,
}

impl Level {
    /// The level at `tap`; `trim_db` is added to the dBFS figures (the
    /// output trim acts after the metering point).
    fn new(inputs: &PanelInputs<'_>, tap: Tap, cal_dbu: f64, trim_db: f64) -> Self {
        let level = tap.of(inputs.meters.display());
        let full_scale = full_scale_peak_volts(cal_dbu);
        let dbfs = |volts: f64| gain_to_db(volts / full_scale) + trim_db;
        Self {
            dbu: volts_rms_to_dbu(level.rms_volts),
            dbfs_peak: dbfs(level.peak_volts),
            // A full-scale sine's rms is 1/√2 of its peak: it reads 0 dBFS
            // rms at 0 dBFS peak.
            dbfs_rms: dbfs(level.rms_volts * std::f64::consts::SQRT_2),
            dbfs_hold: dbfs(inputs.meters.held_peak_volts(tap)),
        }
    }
}

/// The level at a stage boundary: dBu rms and dBFS peak in figures, and an
/// LED ladder in dBFS (recorded as `id`, with the meter's hover help).
fn level_meter(
    ui: &mut Ui,
    controls: &mut Controls<'_>,
    id: &str,
    name: &str,
    level: Level,
    live: bool,
) {
    let r = ui
        .vertical(|ui| {
            let text = if live {
                format!(
                    "{name}: {} dBu · {} dBFS pk",
                    fmt_db(level.dbu),
                    fmt_db(level.dbfs_peak)
                )
            } else {
                format!("{name}: (no audio)")
            };
            let colour = if level.dbfs_peak >= 0.0 {
                CLIP_COLOUR
            } else {
                ui.visuals().text_color()
            };
            ui.label(RichText::new(text).small().color(colour));
            led_meter(
                ui,
                ui.available_width(),
                LedLevels {
                    rms_db: level.dbfs_rms,
                    peak_db: level.dbfs_peak,
                    hold_db: Some(level.dbfs_hold),
                },
                &LedScale::FULL_SCALE,
            );
        })
        .response
        .on_hover_text(help::help(id));
    controls.placed.push((id.to_string(), r.rect));
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

/// What the preamp panel says of the solid-state pre's stages in place of
/// the tubes' grid readings: where its op-amps clip.
fn solid_state_reading() -> String {
    let clip_dbu = volts_rms_to_dbu(SWING_VOLTS / std::f64::consts::SQRT_2);
    format!(
        "Op-amp stages on ±{RAIL_VOLTS:.0} V rails: clean to ±{SWING_VOLTS:.1} V, clipping at {clip_dbu:+.1} dBu at each stage's output (no grids, no bias). The Preamp out meter shows how close the output is."
    )
}
