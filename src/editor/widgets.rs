//! Parameter widgets.
//!
//! Every control changes its parameter through the host's [`ParamSetter`]
//! (begin → set → end), so hosts record automation and undo. Continuous
//! parameters are knobs ([`super::knob::param_knob`], the stages' main
//! controls) or sliders ([`param_slider`], the setup values), and both do
//! the same thing with the pointer ([`drive_param`]): drag to set
//! (relative), Shift or Ctrl+drag for fine adjustment, double-click for the
//! default, right-click or Ctrl+click to type a value (parsed like the
//! renderer's `--set`, by [`crate::params::parse_number`]: "35 dB", "1.5k",
//! "600 ohm"; Enter applies, Escape cancels, a bad value shows what is
//! expected and changes nothing). Switches are toggle buttons, choices are
//! combo boxes.
//!
//! Every control shows its hover help from [`super::help::help`] (the
//! README's words).
//!
//! [`Controls`] also records the rectangle of every control it places under
//! the parameter's ID: the headless layout tests check them for overlap and
//! overflow, and the GUI test derives click positions from the same layout.

use egui::{Color32, Id, Key, Pos2, Rect, Response, RichText, Sense, Stroke, Ui, Vec2};
use nice_plug::prelude::{BoolParam, Enum, EnumParam, FloatParam, Param, ParamSetter};

use crate::params::{parse_number, ParamError};

/// Width of a slider, in points.
pub const SLIDER_WIDTH: f32 = 118.0;

/// How the shared interactions are used, after how a control is dragged.
macro_rules! usage_tail {
    () => {
        "Shift or Ctrl+drag: fine (1/10) · double-click: default · right-click or Ctrl+click: type a value"
    };
}

/// How to use a slider, shown when hovering it.
pub const SLIDER_USAGE: &str = concat!("Drag to set · ", usage_tail!());

/// How to use a knob, shown when hovering it.
pub const KNOB_USAGE: &str = concat!("Drag up or right to raise · ", usage_tail!());

/// Fine adjustment (Shift or Ctrl held) moves this much slower.
pub const FINE_FACTOR: f32 = 0.1;

/// How pointer movement maps onto a control's normalized value.
#[derive(Clone, Copy, Debug)]
pub struct DragSpan {
    /// Points of movement that span the whole range.
    pub points: f32,
    /// Vertical movement counts too, up raising the value (a knob); a
    /// slider follows the horizontal movement only.
    pub vertical: bool,
}

/// A horizontal slider for `param` with its value and unit beside it.
///
/// Dragging moves the value relative to where it was (a full slider width
/// spans the whole range); the rest is [`drive_param`]'s. A right-click or
/// Ctrl+click opens a text field in the slider's place (see
/// [`typed_entry`]).
pub fn param_slider(ui: &mut Ui, param: &FloatParam, setter: &ParamSetter<'_>) -> Response {
    if let Some((entry_id, entry)) = open_entry(ui, param) {
        return typed_entry(ui, param, setter, entry_id, entry, SLIDER_WIDTH);
    }
    ui.horizontal(|ui| {
        let size = Vec2::new(SLIDER_WIDTH, 16.0);
        let span = DragSpan {
            points: SLIDER_WIDTH,
            vertical: false,
        };
        let (rect, response) = driven_area(ui, size, param, setter, span);
        if ui.is_rect_visible(rect) {
            let painter = ui.painter();
            let visuals = ui.style().interact(&response);
            painter.rect_filled(rect, 2.0, ui.visuals().extreme_bg_color);
            let norm = param.unmodulated_normalized_value().clamp(0.0, 1.0);
            let filled = Rect::from_min_max(
                rect.min,
                Pos2::new(rect.left() + rect.width() * norm, rect.bottom()),
            );
            painter.rect_filled(filled, 2.0, SLIDER_FILL);
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

/// The typed-value field of `param` if it is open: its ID (keyed by the
/// parameter's name, unique in the tree, so the field survives the layout
/// change that opening it causes) and its state.
pub(super) fn open_entry(ui: &Ui, param: &FloatParam) -> Option<(Id, TypedEntry)> {
    let entry_id = entry_id(param);
    ui.data(|d| d.get_temp::<TypedEntry>(entry_id))
        .map(|entry| (entry_id, entry))
}

fn entry_id(param: &FloatParam) -> Id {
    Id::unique(("tubeline_typed_entry", param.name()))
}

/// A `size` area that drives `param` as [`drive_param`] says: the part of
/// a slider or knob that takes the pointer.
pub(super) fn driven_area(
    ui: &mut Ui,
    size: Vec2,
    param: &FloatParam,
    setter: &ParamSetter<'_>,
    span: DragSpan,
) -> (Rect, Response) {
    let (rect, response) = ui.allocate_exact_size(size, Sense::click_and_drag());
    drive_param(ui, &response, param, setter, span);
    (rect, response)
}

/// What every continuous control (slider or knob) does with the pointer,
/// through the host's [`ParamSetter`]:
///
/// - a drag moves the normalized value relative to where it was, by the
///   movement over `span.points` (Shift or Ctrl: [`FINE_FACTOR`] of that),
///   as one host gesture (begin at the start, end when released); the
///   normalized value makes skewed ranges (dB, ohms) move as they look;
/// - a double-click resets to the default as one begin/set/end gesture;
/// - a right-click or Ctrl+click opens the typed-value field
///   ([`typed_entry`]); a plain click changes nothing.
fn drive_param(
    ui: &mut Ui,
    response: &Response,
    param: &FloatParam,
    setter: &ParamSetter<'_>,
    span: DragSpan,
) {
    let memory = response.id.with("unquantized");
    let ctrl = ui.input(|i| i.modifiers.command || i.modifiers.ctrl);
    if response.secondary_clicked() || (response.clicked() && ctrl) {
        ui.data_mut(|d| {
            d.insert_temp(
                entry_id(param),
                TypedEntry {
                    focus: true,
                    ..Default::default()
                },
            )
        });
        ui.ctx().request_repaint();
        return;
    }
    if response.double_clicked() {
        setter.begin_set_parameter(param);
        setter.set_parameter(param, param.default_plain_value());
        setter.end_set_parameter(param);
        return;
    }
    if response.drag_started() {
        setter.begin_set_parameter(param);
        let start = param.unmodulated_normalized_value();
        ui.data_mut(|d| d.insert_temp(memory, start));
    }
    if response.dragged() {
        let fine = ui.input(|i| i.modifiers.shift || i.modifiers.command || i.modifiers.ctrl);
        let scale = if fine { FINE_FACTOR } else { 1.0 };
        // The first frame of a drag also carries the movement egui waited
        // for before calling it a drag.
        let moved = if response.drag_started() {
            response.total_drag_delta().unwrap_or(response.drag_delta())
        } else {
            response.drag_delta()
        };
        // Right raises; on a knob, up raises too (screen y grows down).
        let along = if span.vertical {
            moved.x - moved.y
        } else {
            moved.x
        };
        let delta = along / span.points * scale;
        // Accumulate unquantized, so slow fine drags still move a stepped
        // parameter.
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

/// An open typed-value field, kept in egui's temporary memory while open.
#[derive(Clone, Debug, Default)]
pub(super) struct TypedEntry {
    /// What has been typed so far.
    text: String,
    /// Why the last Enter was refused (shown under the field).
    error: Option<String>,
    /// Give the field the keyboard focus in the next frame it is drawn.
    focus: bool,
}

/// Parse a typed value for `param`: a number with an optional unit
/// ([`parse_number`], as the renderer's `--set` and
/// `TubelineParams::set_from_text` take it) inside the parameter's range.
/// The error says what is expected.
pub fn parse_typed(param: &FloatParam, text: &str) -> Result<f32, ParamError> {
    let (min, max) = (param.preview_plain(0.0), param.preview_plain(1.0));
    let unit = param.unit();
    let bad = || ParamError::BadValue {
        id: param.name().to_string(),
        value: text.trim().to_string(),
        expected: format!("a number from {min} to {max}{unit}"),
    };
    let value = parse_number(text).ok_or_else(bad)?;
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(bad())
    }
}

/// The text field (`field_width` points wide, the unit beside it) a slider
/// turns into, and a knob's value readout: Enter applies the value through
/// the host (begin/set/end) if it parses and is in range, otherwise shows
/// what is expected and keeps the field open; Escape, or clicking
/// elsewhere, closes it and changes nothing.
pub(super) fn typed_entry(
    ui: &mut Ui,
    param: &FloatParam,
    setter: &ParamSetter<'_>,
    entry_id: Id,
    mut entry: TypedEntry,
    field_width: f32,
) -> Response {
    let mut open = true;
    let response = ui
        .vertical(|ui| {
            ui.horizontal(|ui| {
                let edit = ui.add_sized(
                    Vec2::new(field_width, 16.0),
                    egui::TextEdit::singleline(&mut entry.text)
                        .id(entry_id.with("field"))
                        .font(egui::TextStyle::Monospace)
                        .hint_text(RichText::new(param.to_string()).small()),
                );
                if std::mem::take(&mut entry.focus) {
                    edit.request_focus();
                    // Select what is there, so typing replaces a refused value.
                    let field = entry_id.with("field");
                    if let Some(mut state) = egui::TextEdit::load_state(ui.ctx(), field) {
                        state.cursor.set_char_range(Some(
                            egui::text::CCursorRange::select_all_str(&entry.text),
                        ));
                        state.store(ui.ctx(), field);
                    }
                }
                ui.label(RichText::new(param.unit().trim()).monospace().small());
                let (enter, escape) =
                    ui.input(|i| (i.key_pressed(Key::Enter), i.key_pressed(Key::Escape)));
                if escape {
                    open = false;
                } else if edit.lost_focus() && enter {
                    match parse_typed(param, &entry.text) {
                        Ok(value) => {
                            setter.begin_set_parameter(param);
                            setter.set_parameter(param, value);
                            setter.end_set_parameter(param);
                            open = false;
                        }
                        Err(e) => {
                            entry.error = Some(e.to_string());
                            entry.focus = true;
                        }
                    }
                } else if edit.lost_focus() {
                    open = false;
                }
                edit
            })
            .inner
        })
        .inner;
    if let Some(e) = &entry.error {
        ui.add(egui::Label::new(RichText::new(e).small().color(CLIP_COLOUR)).wrap());
    }
    ui.data_mut(|d| {
        if open {
            d.insert_temp(entry_id, entry);
        } else {
            d.remove::<TypedEntry>(entry_id);
        }
    });
    if !open {
        ui.ctx().request_repaint();
    }
    response
}

/// Colour of an engaged switch.
pub const ON_COLOUR: Color32 = Color32::from_rgb(0xd8, 0x8a, 0x2a);
/// Colour of a slider's filled part: the knobs' arc colour, dimmed (the
/// sliders are the setup values, the knobs the controls you play).
pub const SLIDER_FILL: Color32 = Color32::from_rgb(0x9a, 0x66, 0x26);
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
                param_slider(ui, param, self.setter).on_hover_ui(|ui| {
                    ui.label(super::help::help(id));
                    ui.label(RichText::new(SLIDER_USAGE).small().weak());
                });
            })
            .response;
        self.record(id, r.rect);
    }

    /// A row of rotary knobs for continuous parameters, `(ID, parameter)`
    /// each, their names and values under them (see
    /// [`super::knob::param_knob`]); the names get as many lines as the
    /// longest needs, so the values line up.
    pub fn knobs(&mut self, ui: &mut Ui, row: &[(&str, &FloatParam)]) {
        let lines = row
            .iter()
            .map(|(_, param)| super::knob::name_lines(ui, param.name()))
            .max()
            .unwrap_or(1);
        ui.horizontal_top(|ui| {
            for &(id, param) in row {
                let r = ui
                    .scope(|ui| {
                        super::knob::param_knob(ui, param, self.setter, lines).on_hover_ui(|ui| {
                            ui.label(super::help::help(id));
                            ui.label(RichText::new(KNOB_USAGE).small().weak());
                        });
                    })
                    .response;
                self.record(id, r.rect);
            }
        });
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
        let r = ui.add(button).on_hover_ui(|ui| {
            ui.label(super::help::help(id));
            ui.label(
                RichText::new(format!("{}: {} (click to switch)", param.name(), param))
                    .small()
                    .weak(),
            );
        });
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
                    })
                    .response
                    .on_hover_text(super::help::help(id));
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
    fn db_text_handles_silence() {
        assert_eq!(fmt_db(-3.04), "-3.0");
        assert_eq!(fmt_db(4.0), "+4.0");
        assert_eq!(fmt_db(f64::NEG_INFINITY), "-inf");
    }
}
