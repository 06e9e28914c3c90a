//! The egui editor: the chain as hardware, laid out as the signal flows.
//!
//! ```text
//!  ┌ top bar: presets · A/B slots · compare ───────────────────────────────┐
//!  │ Input │ DI box │ Tube preamp │ Headphone amp │ Output                 │
//!  │ (faceplates: in/out switch, knobs, setup values, LED meters, advice)  │
//!  ├ chain response │ output spectrum │ tube transfer curve │ headphone |Z| ┤
//!  └────────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! The drawing code is [`App::draw`]: it needs only an `egui::Ui` and a
//! [`GuiContext`], so tests run it headless with `egui::Context::run_ui` and a
//! fake context (see the tests below). nice-plug-egui calls it through
//! [`NiceEguiApp::ui`].
//!
//! Meters come from [`crate::meters::SharedMeters`] (lock-free, written by the
//! audio thread only while the editor is open) and are shown through
//! [`meter::Ballistics`]. The window size is saved in
//! the plugin state as an [`EditorSize`] (`#[persist = "editor"]`) and
//! restored when the window opens.
//!
//! With `TUBELINE_PROBE=/path/file.json` in the environment, the editor
//! writes (at most 4× a second, temp file + rename) what the audio thread
//! published: the block counter and the settings `process()` applied, plus
//! the rectangle of every control (`"controls": {"pre_on": [x0, y0, x1, y1]}`
//! in window points; multiply by `"pixels_per_point"` for pixels). The
//! standalone GUI test (tests/gui/) reads it to find the Preamp switch and
//! to see the click arrive at the audio thread.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use egui::{Rect, RichText, Ui, Vec2};
use nice_plug::context::gui::GuiContext;
use nice_plug_egui::NiceEguiApp;
use serde::{Deserialize, Serialize};

use crate::meters::SharedMeters;
use crate::params::TubelineParams;

pub mod audition;
pub mod faceplate;
pub mod help;
pub mod knob;
pub mod meter;
pub mod panels;
pub mod plots;
pub mod widgets;

use audition::Audition;
use meter::Ballistics;
use panels::{Note, Panel, PanelInputs, PanelState};
use plots::{Axes, MeasuredCurve, ResponseModel, Series, Spectrum};
use widgets::Controls;

/// The editor's size when first opened, in logical points.
pub const DEFAULT_SIZE: (f32, f32) = (1360.0, 900.0);
/// The smallest size the window can be resized to.
pub const MIN_SIZE: (f32, f32) = (900.0, 600.0);
/// Height of the top bar, in points (the GUI test derives click positions
/// from the layout constants here).
pub const TOP_BAR_HEIGHT: f32 = 34.0;
/// Narrowest a stage panel gets (narrower windows scroll).
pub const PANEL_MIN_WIDTH: f32 = 230.0;
/// Height of the plot row.
pub const PLOT_HEIGHT: f32 = 170.0;
/// How often the probe file is written.
const PROBE_INTERVAL: Duration = Duration::from_millis(250);

/// The editor's window size, saved in the plugin state.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EditorSize {
    /// Width in logical points.
    pub width: f32,
    /// Height in logical points.
    pub height: f32,
}

impl Default for EditorSize {
    fn default() -> Self {
        Self {
            width: DEFAULT_SIZE.0,
            height: DEFAULT_SIZE.1,
        }
    }
}

impl EditorSize {
    /// The size clamped to the allowed range (a corrupt state cannot open a
    /// zero-sized or gigantic window).
    pub fn sanitized(self) -> Self {
        let ok = |v: f32, lo: f32, default: f32| {
            if v.is_finite() {
                v.clamp(lo, 8192.0)
            } else {
                default
            }
        };
        Self {
            width: ok(self.width, MIN_SIZE.0, DEFAULT_SIZE.0),
            height: ok(self.height, MIN_SIZE.1, DEFAULT_SIZE.1),
        }
    }
}

/// Everything the editor shares with the plugin.
#[derive(Clone)]
pub struct Shared {
    /// The parameters.
    pub params: Arc<TubelineParams>,
    /// Meters and what the audio thread sees.
    pub meters: Arc<SharedMeters>,
    /// Output samples for the spectrum (only the editor pops).
    pub spectrum: Arc<Mutex<rtrb::Consumer<f32>>>,
    /// The measured headphone curve's load error.
    pub curve_error: Arc<RwLock<Option<String>>>,
}

/// Editor-only state that lives across frames.
struct View {
    /// Rectangles of the controls placed in the last frame.
    placed: Vec<(String, Rect)>,
    /// Non-parameter panel state (the CSV path field).
    panel: PanelState,
    /// The chain response model (built on first use).
    response: Option<ResponseModel>,
    /// The live spectrum.
    spectrum: Spectrum,
    /// The measured headphone curve (`hp_model` = custom), read in the
    /// editor thread and cached by path and modification time.
    measured: MeasuredCurve,
    /// Display-smoothed meter readings with held peaks.
    meters: Ballistics,
    /// Sequence number of the last reading taken.
    last_seq: u64,
    /// When a reading last arrived.
    last_reading: Option<Instant>,
    /// Probe file, from `TUBELINE_PROBE`.
    probe_path: Option<PathBuf>,
    /// When the probe was last written.
    last_probe: Option<Instant>,
    /// The saved size still has to be applied to the window.
    restore_size: bool,
    /// Last probe write error (shown once).
    probe_error: Option<String>,
    /// A/B slots and presets.
    audition: Audition,
    /// The tallest stage panel's body in the last frame: every panel is
    /// made this high, so the row reads as one rack.
    panel_height: f32,
}

/// The editor application.
pub struct App {
    shared: Shared,
    /// Set by `build`; `None` in headless tests that pass their own context.
    gui: Option<GuiContext>,
    view: View,
}

impl App {
    /// An editor for the plugin's shared state.
    pub fn new(shared: Shared) -> Self {
        Self {
            shared,
            gui: None,
            view: View {
                placed: Vec::new(),
                panel: PanelState::default(),
                response: None,
                spectrum: Spectrum::new(),
                measured: MeasuredCurve::default(),
                meters: Ballistics::default(),
                last_seq: 0,
                last_reading: None,
                probe_path: std::env::var_os("TUBELINE_PROBE").map(PathBuf::from),
                last_probe: None,
                restore_size: true,
                probe_error: None,
                audition: Audition::default(),
                panel_height: 0.0,
            },
        }
    }

    /// Rectangles of the controls placed in the last frame, by parameter ID
    /// (or widget name).
    pub fn placed(&self) -> &[(String, Rect)] {
        &self.view.placed
    }

    /// True once the CSV path field was committed (Enter) since the last
    /// call: the audio side must redesign the measured curve.
    pub fn take_csv_commit(&mut self) -> bool {
        std::mem::take(&mut self.view.panel.csv_committed)
    }

    /// Draw one frame. Needs only a `Ui` and the host context.
    pub fn draw(&mut self, ui: &mut Ui, gui: &GuiContext) {
        self.poll_meters();
        self.write_probe(ui.ctx().pixels_per_point());
        ui.ctx().request_repaint_after(Duration::from_millis(40));

        let setter = gui.param_setter();
        let mut placed = std::mem::take(&mut self.view.placed);
        placed.clear();
        let params = self.shared.params.clone();
        let settings = params.snapshot(false);
        let curve_error = self.shared.curve_error.read().ok().and_then(|e| e.clone());
        let live = self
            .view
            .last_reading
            .is_some_and(|t| t.elapsed() < Duration::from_millis(500));
        // Advice from the settings and, while audio runs, the meters.
        let notes: Vec<(Panel, Note)> =
            crate::advice::advise(&settings, live.then_some(self.view.meters.display()))
                .into_iter()
                .map(|a| {
                    let panel = match a.stage {
                        crate::advice::Stage::Input => Panel::Input,
                        crate::advice::Stage::Di => Panel::Di,
                        crate::advice::Stage::Preamp => Panel::Preamp,
                        crate::advice::Stage::Headphone => Panel::Headphone,
                        crate::advice::Stage::Output => Panel::Output,
                    };
                    let warning = a.severity == crate::advice::Severity::Warning;
                    (
                        panel,
                        Note {
                            warning,
                            text: a.text,
                        },
                    )
                })
                .collect();

        egui::ScrollArea::both()
            .auto_shrink([false, false])
            .show(ui, |ui| {
                ui.spacing_mut().item_spacing = Vec2::new(6.0, 4.0);
                // Top bar.
                let shared = self.shared.clone();
                let audition = &mut self.view.audition;
                ui.allocate_ui(Vec2::new(ui.available_width(), TOP_BAR_HEIGHT), |ui| {
                    ui.horizontal(|ui| {
                        ui.label(RichText::new("TUBELINE").heading().strong());
                        ui.separator();
                        audition.ui(ui, &shared, gui, &mut placed);
                    });
                });
                if std::mem::take(&mut audition.state_applied) {
                    self.view.panel.csv_path_loaded = false;
                }
                ui.separator();

                // Stage panels.
                let mut controls = Controls {
                    setter: &setter,
                    placed: &mut placed,
                };
                let inputs = PanelInputs {
                    params: &params,
                    meters: &self.view.meters,
                    live,
                    notes: &notes,
                    curve_error: curve_error.clone(),
                };
                let panel_state = &mut self.view.panel;
                let count = Panel::ALL.len() as f32;
                let spacing = ui.spacing().item_spacing.x;
                let width = ((ui.available_width() - (count - 1.0) * spacing) / count
                    - faceplate::PANEL_EXTRA)
                    .max(PANEL_MIN_WIDTH);
                let even = self.view.panel_height;
                let tallest = ui
                    .horizontal_top(|ui| {
                        Panel::ALL
                            .map(|which| {
                                let size = (width, even);
                                panels::panel(ui, which, size, &inputs, &mut controls, panel_state)
                            })
                            .into_iter()
                            .fold(0.0, f32::max)
                    })
                    .inner;
                if tallest != even {
                    self.view.panel_height = tallest;
                    ui.ctx().request_repaint();
                }
                ui.separator();

                // Plots.
                self.draw_plots(ui, &settings);
            });
        self.view.placed = placed;
    }

    fn draw_plots(&mut self, ui: &mut Ui, settings: &crate::dsp::chain::ChainSettings) {
        let rate = {
            let seen = self.shared.meters.seen().sample_rate;
            if seen > 0.0 {
                seen
            } else {
                48_000.0
            }
        };
        if self
            .view
            .response
            .as_ref()
            .is_none_or(|m| m.sample_rate() != rate)
        {
            self.view.response = Some(ResponseModel::new(rate));
        }
        let model = self.view.response.as_mut().expect("built above");
        model.update(settings);
        let freqs = plots::log_freqs(120);
        let zo = settings.headphone.amp_z_ohms;
        // The load: the chosen model, or the measured curve (its parse
        // error, or the missing path, shows in the plot).
        let (z, dev, load, problem) = if settings.headphone.model
            == crate::dsp::headphone::HeadphoneModel::Custom
        {
            let path = self
                .shared
                .params
                .hp_csv
                .read()
                .map(|p| p.trim().to_string())
                .unwrap_or_default();
            let saved = &self.shared.params.hp_curve;
            if path.is_empty() && saved.hint().is_none() {
                let none = "No measured curve: type the path of a CSV file (Hz, ohm, degrees) in the Headphone amp panel and press Enter.";
                (Vec::new(), Vec::new(), "measured", Some(none.to_string()))
            } else {
                match self.view.measured.get(&path, saved) {
                    Ok(curve) => {
                        let (z, dev) = plots::divider_curves(|f| curve.impedance(f), zo, &freqs);
                        (z, dev, "measured", None)
                    }
                    Err(e) => (Vec::new(), Vec::new(), "measured", Some(e.to_string())),
                }
            }
        } else {
            let (z, dev) = plots::headphone_curves(settings.headphone.model, zo, &freqs);
            (z, dev, "model", None)
        };
        let z_max = z.iter().map(|p| p.1).fold(1.0, f64::max) * 1.2;
        // ±6 dB, or wider to fit the deviation.
        let dev_span = dev.iter().map(|p| p.1.abs()).fold(6.0, f64::max).min(60.0);
        let dev_span = (dev_span / 2.0).ceil() * 2.0;
        let spectrum = self.view.spectrum.points(rate);
        // Tube transfer: span twice the mic-input voltage at which the
        // output reaches 90 % of its swing (found on a log grid).
        let span = model.transfer_span();
        let transfer = model.transfer_curve(span);
        let out_max = transfer.iter().map(|p| p.1.abs()).fold(1e-3, f64::max) * 1.1;
        let track_gain = plots::fmt_gain_db(model.track_gain_1k_db);
        let curve = model.curve_db.clone();
        let mic_peak = self.view.meters.display().preamp_in.peak_volts;
        // The mic against the input it sees.
        let (mic, in_z) = (settings.mic.model, settings.mic.in_z_ohms);
        let (mic_z, mic_level) = plots::mic_curves(mic, in_z, &freqs);
        let mic_z_max = mic_z.iter().map(|p| p.1).fold(in_z, f64::max) * 1.2;
        let mic_span = mic_level.iter().map(|p| -p.1).fold(6.0, f64::max).min(60.0);
        let mic_span = (mic_span / 3.0).ceil() * 3.0;
        let to_mic_axis = |v: f64| mic_span * (v / mic_z_max) - mic_span;
        let mic_z_scaled: Vec<(f64, f64)> =
            mic_z.iter().map(|&(f, v)| (f, to_mic_axis(v))).collect();
        let in_z_line = vec![(20.0, to_mic_axis(in_z)), (20_000.0, to_mic_axis(in_z))];
        let cols = 5;
        let height = (ui.available_height() - 24.0).max(PLOT_HEIGHT);
        ui.columns(cols, |c| {
            let size = |ui: &Ui| Vec2::new(ui.available_width(), height);
            let s0 = size(&c[0]);
            plots::plot(
                &mut c[0],
                &format!("Chain response re 1 kHz · track to track at 1 kHz: {track_gain}"),
                s0,
                &Axes::audio((-24.0, 12.0), 6.0),
                &[Series {
                    points: &curve,
                    colour: widgets::ON_COLOUR,
                }],
            );
            let s1 = size(&c[1]);
            plots::plot(
                &mut c[1],
                "Output spectrum (dBFS)",
                s1,
                &Axes::audio((-140.0, 0.0), 20.0),
                &[Series {
                    points: &spectrum,
                    colour: widgets::OK_COLOUR,
                }],
            );
            let s2 = size(&c[2]);
            let marks = [
                vec![(-mic_peak, -out_max), (-mic_peak, out_max)],
                vec![(mic_peak, -out_max), (mic_peak, out_max)],
            ];
            let mut series = vec![Series {
                points: &transfer,
                colour: widgets::ON_COLOUR,
            }];
            if mic_peak > 0.0 && mic_peak < span {
                for m in &marks {
                    series.push(Series {
                        points: m,
                        colour: widgets::WARN_COLOUR,
                    });
                }
            }
            plots::plot(
                &mut c[2],
                "Preamp transfer curve (V out vs mic V in; |peak| marked)",
                s2,
                &Axes {
                    x: (-span, span),
                    y: (-out_max, out_max),
                    log_x: false,
                    x_grid: vec![
                        (-span / 2.0, format!("{:.3}", -span / 2.0)),
                        (0.0, "0".into()),
                        (span / 2.0, format!("{:.3}", span / 2.0)),
                    ],
                    y_grid: vec![
                        (-out_max / 2.0, format!("{:.0}", -out_max / 2.0)),
                        (0.0, "0".into()),
                        (out_max / 2.0, format!("{:.0}", out_max / 2.0)),
                    ],
                },
                &series,
            );
            let s3 = size(&c[3]);
            let z_scaled: Vec<(f64, f64)> = z
                .iter()
                .map(|&(f, v)| (f, dev_span * (2.0 * v / z_max - 1.0)))
                .collect();
            let step = if dev_span > 12.0 { 6.0 } else { 2.0 };
            let axes = Axes::audio((-dev_span, dev_span), step);
            let rect = plots::plot(
                &mut c[3],
                &format!("Headphone |Z| {load}, 0-{z_max:.0} ohm (grey) · dB on {zo:.1} ohm"),
                s3,
                &axes,
                &[
                    Series {
                        points: &z_scaled,
                        colour: egui::Color32::GRAY,
                    },
                    Series {
                        points: &dev,
                        colour: widgets::ON_COLOUR,
                    },
                ],
            );
            if let Some(problem) = &problem {
                plots::message(&c[3], rect, problem, widgets::CLIP_COLOUR);
            }
            let s4 = size(&c[4]);
            let rect = plots::plot(
                &mut c[4],
                &format!(
                    "Mic |Z| 0-{mic_z_max:.0} ohm (grey) on {in_z:.0} ohm (orange) · dB at the preamp input"
                ),
                s4,
                &Axes::audio((-mic_span, 0.0), if mic_span > 12.0 { 6.0 } else { 3.0 }),
                &[
                    Series {
                        points: &mic_z_scaled,
                        colour: egui::Color32::GRAY,
                    },
                    Series {
                        points: &in_z_line,
                        colour: widgets::WARN_COLOUR,
                    },
                    Series {
                        points: &mic_level,
                        colour: widgets::ON_COLOUR,
                    },
                ],
            );
            if mic == crate::dsp::mic::MicModel::None {
                let ideal = "Mic: none (an ideal source). Choose a mic in the Tube preamp panel to see it loaded by the input impedance.";
                plots::message(&c[4], rect, ideal, egui::Color32::GRAY);
            } else if !settings.pre_on {
                let out = "The preamp is out: nothing loads the mic.";
                plots::message(&c[4], rect, out, widgets::WARN_COLOUR);
            }
        });
    }

    /// Take a new meter reading if one was published, smooth it for
    /// display, and drain the spectrum ring.
    fn poll_meters(&mut self) {
        let (reading, seq) = self.shared.meters.read();
        if seq != self.view.last_seq && reading.samples > 0 {
            self.view.last_seq = seq;
            self.view.last_reading = Some(Instant::now());
            self.view.meters.update(&reading);
        }
        let mut got = false;
        if let Ok(mut rx) = self.shared.spectrum.lock() {
            let n = rx.slots();
            if n > 0 {
                if let Ok(chunk) = rx.read_chunk(n) {
                    let (a, b) = chunk.as_slices();
                    self.view.spectrum.push(a.iter().chain(b.iter()).copied());
                    chunk.commit_all();
                    got = true;
                }
            }
        }
        if got {
            self.view.spectrum.analyse(0.5);
        }
    }

    /// Write the probe file (at most every `PROBE_INTERVAL`).
    fn write_probe(&mut self, pixels_per_point: f32) {
        let Some(path) = &self.view.probe_path else {
            return;
        };
        if self
            .view
            .last_probe
            .is_some_and(|t| t.elapsed() < PROBE_INTERVAL)
        {
            return;
        }
        self.view.last_probe = Some(Instant::now());
        // What the audio thread published, plus where the controls are (in
        // window points), so a GUI test can click them without guessing.
        let mut probe: serde_json::Value =
            serde_json::from_str(&self.shared.meters.probe_json()).unwrap_or_default();
        let controls: serde_json::Map<String, serde_json::Value> = self
            .view
            .placed
            .iter()
            .map(|(id, r)| {
                (
                    id.clone(),
                    serde_json::json!([r.min.x, r.min.y, r.max.x, r.max.y]),
                )
            })
            .collect();
        probe["controls"] = serde_json::Value::Object(controls);
        probe["pixels_per_point"] = serde_json::json!(pixels_per_point);
        if let Err(e) = crate::meters::write_atomically(path, &probe.to_string()) {
            if self.view.probe_error.is_none() {
                nice_plug::nice_log!("cannot write the probe file {}: {e}", path.display());
            }
            self.view.probe_error = Some(e.to_string());
        }
    }

    /// Apply the saved window size on the first frame.
    fn maybe_restore_size(&mut self, ui: &Ui) {
        if !std::mem::take(&mut self.view.restore_size) {
            return;
        }
        let saved = self
            .shared
            .params
            .editor_size
            .read()
            .map(|s| s.sanitized())
            .unwrap_or_default();
        let now = ui.ctx().content_rect().size();
        if (now.x - saved.width).abs() > 1.0 || (now.y - saved.height).abs() > 1.0 {
            ui.send_viewport_cmd(egui::ViewportCommand::InnerSize(Vec2::new(
                saved.width,
                saved.height,
            )));
        }
    }
}

impl NiceEguiApp for App {
    fn build(
        &mut self,
        egui_ctx: egui::Context,
        nice_gui_ctx: GuiContext,
        _frame: &mut nice_plug_egui::Frame,
    ) -> Result<(), nice_plug_egui::baseview::HandlerError> {
        egui_ctx.set_visuals(egui::Visuals::dark());
        self.gui = Some(nice_gui_ctx);
        self.view.restore_size = true;
        Ok(())
    }

    fn ui(&mut self, ui: &mut Ui, _frame: &mut nice_plug_egui::Frame) {
        let Some(gui) = self.gui.clone() else {
            return;
        };
        self.maybe_restore_size(ui);
        nice_plug_egui::resizable_window::ResizableWindow::new("tubeline-editor")
            .min_size(Vec2::new(MIN_SIZE.0, MIN_SIZE.1))
            .show(ui, |ui| self.draw(ui, &gui));
        if self.take_csv_commit() {
            // Enter on the path: read the file, even if its points are saved.
            self.shared
                .meters
                .reload_curve_file
                .store(true, std::sync::atomic::Ordering::Release);
            self.shared
                .meters
                .redesign_curve
                .store(true, std::sync::atomic::Ordering::Release);
        }
    }

    fn resized(&mut self, new_size: nice_plug_egui::baseview::WindowSize) {
        let size = EditorSize {
            width: new_size.logical.width as f32,
            height: new_size.logical.height as f32,
        }
        .sanitized();
        if let Ok(mut saved) = self.shared.params.editor_size.write() {
            *saved = size;
        }
    }
}

#[cfg(test)]
mod tests;
