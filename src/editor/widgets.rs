//! Parameter widgets and meters.
//!
//! Every control changes its parameter through the host's [`ParamSetter`]
//! (begin → set → end), so hosts record automation and undo. Continuous
//! parameters use nice-plug-egui's `ParamSlider`: click or drag to set,
//! double-click or Ctrl+click to reset to the default, Shift+drag for fine
//! adjustment, click the value to type one. Switches are toggle buttons,
//! choices are combo boxes.
//!
//! [`Controls`] also records the rectangle of every control it places under
//! the parameter's ID: the headless layout tests check them for overlap and
//! overflow, and the GUI test derives click positions from the same layout.

use egui::{Color32, Pos2, Rect, Response, RichText, Sense, Stroke, Ui, Vec2};
use nice_plug::prelude::{BoolParam, Enum, EnumParam, FloatParam, Param, ParamSetter};

/// Width of a slider, in points.
pub const SLIDER_WIDTH: f32 = 118.0;

/// Help shown when hovering a slider.
const SLIDER_HELP: &str = "Drag to set · Shift or Ctrl+drag: fine (1/10) · double-click: default";

/// Fine adjustment (Shift or Ctrl held) moves this much slower.
pub const FINE_FACTOR: f32 = 0.1;

/// A horizontal slider for `param` with its value and unit beside it.
///
/// Dragging moves the value relative to where it was (a full slider width
/// spans the whole range; Shift or Ctrl: a tenth of that); a drag is one
/// host gesture (begin at the start, end when released). A double-click
/// resets to the default as one begin/set/end gesture. A plain click changes
/// nothing.
pub fn param_slider(ui: &mut Ui, param: &FloatParam, setter: &ParamSetter<'_>) -> Response {
    ui.horizontal(|ui| {
        let (rect, response) =
            ui.allocate_exact_size(Vec2::new(SLIDER_WIDTH, 16.0), Sense::click_and_drag());
        let memory = response.id.with("unquantized");
        if response.double_clicked() {
            setter.begin_set_parameter(param);
            setter.set_parameter(param, param.default_plain_value());
            setter.end_set_parameter(param);
        } else {
            if response.drag_started() {
                setter.begin_set_parameter(param);
                let start = param.unmodulated_normalized_value();
                ui.data_mut(|d| d.insert_temp(memory, start));
            }
            if response.dragged() {
                let fine =
                    ui.input(|i| i.modifiers.shift || i.modifiers.command || i.modifiers.ctrl);
                let scale = if fine { FINE_FACTOR } else { 1.0 };
                // The first frame of a drag also carries the movement
                // egui waited for before calling it a drag.
                let moved = if response.drag_started() {
                    response.total_drag_delta().unwrap_or(response.drag_delta())
                } else {
                    response.drag_delta()
                };
                let delta = moved.x / rect.width() * scale;
                // Accumulate unquantized, so slow fine drags still move a
                // stepped parameter.
                let before: f32 = ui
                    .data(|d| d.get_temp(memory))
                    .unwrap_or_else(|| param.unmodulated_normalized_value());
                let next = (before + delta).clamp(0.0, 1.0);
                ui.data_mut(|d| d.insert_temp(memory, next));
                if (param.preview_normalized(param.preview_plain(next))
                    - param.unmodulated_normalized_value())
                .abs()
                    > 0.0
                {
                    setter.set_parameter_normalized(param, next);
                }
            }
            if response.drag_stopped() {
                setter.end_set_parameter(param);
            }
        }
        if ui.is_rect_visible(rect) {
            let painter = ui.painter();
            let visuals = ui.style().interact(&response);
            painter.rect_filled(rect, 2.0, ui.visuals().extreme_bg_color);
            let norm = param.unmodulated_normalized_value().clamp(0.0, 1.0);
            let filled = Rect::from_min_max(
                rect.min,
                Pos2::new(rect.left() + rect.width() * norm, rect.bottom()),
            );
            painter.rect_filled(filled, 2.0, ui.visuals().selection.bg_fill);
            painter.rect_stroke(rect, 2.0, visuals.bg_stroke, egui::StrokeKind::Inside);
            // The default as a tick.
            let d = param.preview_normalized(param.default_plain_value());
            let dx = rect.left() + rect.width() * d;
            painter.line_segment(
                [
                    Pos2::new(dx, rect.bottom() - 4.0),
                    Pos2::new(dx, rect.bottom()),
                ],
                Stroke::new(1.0, ui.visuals().text_color()),
            );
        }
        ui.label(RichText::new(param.to_string()).monospace().small());
        response
    })
    .inner
}

/// Colour of an engaged switch.
pub const ON_COLOUR: Color32 = Color32::from_rgb(0xd8, 0x8a, 0x2a);
/// Colour of good levels in meters.
pub const OK_COLOUR: Color32 = Color32::from_rgb(0x4c, 0xb0, 0x5a);
/// Colour of warning levels in meters.
pub const WARN_COLOUR: Color32 = Color32::from_rgb(0xe0, 0xc0, 0x30);
/// Colour of clipping levels in meters.
pub const CLIP_COLOUR: Color32 = Color32::from_rgb(0xe0, 0x40, 0x30);

/// Places parameter controls and remembers where each one went.
pub struct Controls<'a> {
    /// The host's parameter setter.
    pub setter: &'a ParamSetter<'a>,
    /// (parameter ID or widget name, rectangle) of every control this frame.
    pub placed: &'a mut Vec<(String, Rect)>,
}

impl Controls<'_> {
    fn record(&mut self, id: &str, rect: Rect) {
        self.placed.push((id.to_string(), rect));
    }

    /// A labelled slider for a continuous parameter (name above, value and
    /// unit beside it).
    pub fn slider(&mut self, ui: &mut Ui, id: &str, param: &FloatParam) {
        let r = ui
            .vertical(|ui| {
                ui.label(RichText::new(param.name()).small());
                param_slider(ui, param, self.setter).on_hover_text(SLIDER_HELP);
            })
            .response;
        self.record(id, r.rect);
    }

    /// A toggle button for an on/off parameter, labelled with its name.
    pub fn toggle(&mut self, ui: &mut Ui, id: &str, param: &BoolParam) -> Response {
        let on = param.value();
        let text = RichText::new(param.name());
        let text = if on { text.color(Color32::BLACK) } else { text };
        let button = egui::Button::new(text).fill(if on {
            ON_COLOUR
        } else {
            ui.visuals().widgets.inactive.weak_bg_fill
        });
        let r = ui
            .add(button)
            .on_hover_text(format!("{}: {}", param.name(), param));
        if r.clicked() {
            self.setter.begin_set_parameter(param);
            self.setter.set_parameter(param, !on);
            self.setter.end_set_parameter(param);
        }
        self.record(id, r.rect);
        r
    }

    /// A labelled combo box for a choice parameter.
    pub fn choice<T: Enum + PartialEq + 'static>(
        &mut self,
        ui: &mut Ui,
        id: &str,
        param: &EnumParam<T>,
    ) {
        let r = ui
            .vertical(|ui| {
                ui.label(RichText::new(param.name()).small());
                let current = param.value().to_index();
                let names = T::variants();
                let mut chosen = None;
                egui::ComboBox::from_id_salt(id)
                    .width(SLIDER_WIDTH + 50.0)
                    .selected_text(names[current])
                    .show_ui(ui, |ui| {
                        for (i, name) in names.iter().enumerate() {
                            if ui.selectable_label(i == current, *name).clicked() {
                                chosen = Some(i);
                            }
                        }
                    });
                if let Some(i) = chosen.filter(|&i| i != current) {
                    self.setter.begin_set_parameter(param);
                    self.setter.set_parameter(param, T::from_index(i));
                    self.setter.end_set_parameter(param);
                }
            })
            .response;
        self.record(id, r.rect);
    }
}

/// Map a level in dB to 0..1 over `range_db`.
fn fraction(db: f64, range_db: (f64, f64)) -> f32 {
    (((db - range_db.0) / (range_db.1 - range_db.0)).clamp(0.0, 1.0)) as f32
}

/// A horizontal level bar: rms filled, peak as a tick, with `warn_db` and
/// `clip_db` colouring (same scale as the values).
pub fn level_bar(
    ui: &mut Ui,
    width: f32,
    rms_db: f64,
    peak_db: f64,
    range_db: (f64, f64),
    warn_db: f64,
    clip_db: f64,
) -> Response {
    let (rect, response) = ui.allocate_exact_size(Vec2::new(width, 8.0), Sense::hover());
    let painter = ui.painter();
    painter.rect_filled(rect, 1.0, ui.visuals().extreme_bg_color);
    let colour = if peak_db >= clip_db {
        CLIP_COLOUR
    } else if peak_db >= warn_db {
        WARN_COLOUR
    } else {
        OK_COLOUR
    };
    let x = |db: f64| rect.left() + rect.width() * fraction(db, range_db);
    if rms_db.is_finite() {
        let filled = Rect::from_min_max(rect.min, Pos2::new(x(rms_db), rect.max.y));
        painter.rect_filled(filled, 1.0, colour);
    }
    if peak_db.is_finite() {
        let px = x(peak_db);
        painter.line_segment(
            [Pos2::new(px, rect.top()), Pos2::new(px, rect.bottom())],
            Stroke::new(2.0, colour),
        );
    }
    for mark in [warn_db, clip_db] {
        let mx = x(mark);
        painter.line_segment(
            [Pos2::new(mx, rect.top()), Pos2::new(mx, rect.bottom())],
            Stroke::new(1.0, ui.visuals().weak_text_color()),
        );
    }
    response
}

/// The tube drive bar: the grid's most positive swing (peak Vgk) on a volt
/// scale from `bias - span` to `conduction + margin`, with the conduction
/// point marked. Left of the mark the grid draws no current.
pub fn grid_bar(
    ui: &mut Ui,
    width: f32,
    peak_vgk: f64,
    bias_vgk: f64,
    conduction_vgk: f64,
) -> Response {
    let (rect, response) = ui.allocate_exact_size(Vec2::new(width, 10.0), Sense::hover());
    let painter = ui.painter();
    painter.rect_filled(rect, 1.0, ui.visuals().extreme_bg_color);
    // Scale: from twice the bias below zero to 1 V past conduction.
    let lo = (2.0 * bias_vgk).min(conduction_vgk - 1.0).min(-1.0);
    let hi = conduction_vgk + 1.0;
    let x = |v: f64| rect.left() + rect.width() * (((v - lo) / (hi - lo)).clamp(0.0, 1.0)) as f32;
    if peak_vgk.is_finite() {
        let colour = if peak_vgk >= conduction_vgk {
            CLIP_COLOUR
        } else if peak_vgk >= conduction_vgk - 0.25 * (conduction_vgk - bias_vgk).abs() {
            WARN_COLOUR
        } else {
            OK_COLOUR
        };
        let from = x(bias_vgk.min(peak_vgk));
        painter.rect_filled(
            Rect::from_min_max(
                Pos2::new(from, rect.top()),
                Pos2::new(x(peak_vgk), rect.bottom()),
            ),
            1.0,
            colour,
        );
    }
    let bx = x(bias_vgk);
    painter.line_segment(
        [Pos2::new(bx, rect.top()), Pos2::new(bx, rect.bottom())],
        Stroke::new(1.0, ui.visuals().weak_text_color()),
    );
    let cx = x(conduction_vgk);
    painter.line_segment(
        [
            Pos2::new(cx, rect.top() - 2.0),
            Pos2::new(cx, rect.bottom() + 2.0),
        ],
        Stroke::new(2.0, CLIP_COLOUR),
    );
    response
}

/// Format a level in dB for display ("-inf" below -150).
pub fn fmt_db(db: f64) -> String {
    if db.is_finite() && db > -150.0 {
        format!("{db:+.1}")
    } else {
        "-inf".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fraction_maps_the_range_and_clamps() {
        assert_eq!(fraction(-60.0, (-60.0, 0.0)), 0.0);
        assert_eq!(fraction(-30.0, (-60.0, 0.0)), 0.5);
        assert_eq!(fraction(6.0, (-60.0, 0.0)), 1.0);
        assert_eq!(fraction(f64::NEG_INFINITY, (-60.0, 0.0)), 0.0);
    }

    #[test]
    fn db_text_handles_silence() {
        assert_eq!(fmt_db(-3.04), "-3.0");
        assert_eq!(fmt_db(4.0), "+4.0");
        assert_eq!(fmt_db(f64::NEG_INFINITY), "-inf");
    }
}
