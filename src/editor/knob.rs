//! The rotary knob: a stage's main controls (Gain, Level, output levels,
//! trims, the amp's output impedance and volume).
//!
//! A knob does with the pointer exactly what a slider does (the same
//! [`driven_area`]): drag up or right to raise the value, relative to where
//! it was ([`KNOB_DRAG_POINTS`] of movement span the range), Shift or Ctrl
//! for [`super::widgets::FINE_FACTOR`] of that, double-click for the
//! default, right-click or Ctrl+click to type a value in place of the
//! readout ([`typed_entry`]). It shows the parameter's normalized value, so
//! a skewed range (ohms) turns as it drags.
//!
//! ```text
//!      ╭─────╮      the arc runs over 270°, from the minimum (7:30) to
//!    ╱  ╲     ╲     the value, or from 0 to the value when the range has
//!   │    ●     │    0 inside it and 0 is the default (a trim: the arc
//!    ╲        ╱     shows the boost or cut); the dot on the track is the
//!      ╰─────╯      default
//!      Gain
//!    20.00 dB
//! ```

use egui::{Align, Color32, Layout, Pos2, Response, RichText, Shape, Stroke, Ui, Vec2};
use nice_plug::prelude::{FloatParam, Param, ParamSetter};

use super::widgets::{driven_area, open_entry, typed_entry, DragSpan, ON_COLOUR};

/// Width of a knob with its label and readout, in points: three fit a
/// stage panel at its narrowest (`PANEL_MIN_WIDTH`).
pub const KNOB_CELL_WIDTH: f32 = 72.0;
/// Height of the knob's own area (body and arc) above the label.
pub const KNOB_AREA_HEIGHT: f32 = 56.0;
/// Diameter of the knob's body.
pub const KNOB_DIAMETER: f32 = 38.0;
/// Pointer movement, in points, that turns a knob over its whole range.
pub const KNOB_DRAG_POINTS: f32 = 200.0;
/// Angle of the minimum, radians clockwise from 12 o'clock (7:30).
const START_RAD: f32 = -0.75 * std::f32::consts::PI;
/// Angle the whole range turns through (270°).
const SWEEP_RAD: f32 = 1.5 * std::f32::consts::PI;
/// Gap between the body and the arc's track.
const ARC_GAP: f32 = 5.0;

/// Colour of the knob's body.
const BODY: Color32 = Color32::from_rgb(0x26, 0x27, 0x2a);
/// Colour of its cap, a shade lighter.
const CAP: Color32 = Color32::from_rgb(0x35, 0x37, 0x3b);
/// Colour of the rim, at rest.
const RIM: Color32 = Color32::from_rgb(0x5a, 0x5d, 0x63);
/// Colour of the arc's track.
const TRACK: Color32 = Color32::from_rgb(0x18, 0x19, 0x1b);
/// Colour of the value readout's window.
const READOUT: Color32 = Color32::from_rgb(0x15, 0x16, 0x18);
/// Colour of its text.
const READOUT_TEXT: Color32 = Color32::from_rgb(0xd8, 0xd2, 0xc4);
/// Colour of the pointer line.
const POINTER: Color32 = Color32::from_rgb(0xf0, 0xec, 0xe2);

/// A knob for `param` with its name (in a box `name_lines` high, see
/// [`name_lines`]) and value with unit under it; returns the knob's own
/// response (hover help goes there).
pub fn param_knob(
    ui: &mut Ui,
    param: &FloatParam,
    setter: &ParamSetter<'_>,
    name_lines: usize,
) -> Response {
    let entry = open_entry(ui, param);
    ui.allocate_ui_with_layout(
        Vec2::new(KNOB_CELL_WIDTH, KNOB_AREA_HEIGHT),
        Layout::top_down(Align::Center),
        |ui| {
            ui.set_min_width(KNOB_CELL_WIDTH);
            ui.set_max_width(KNOB_CELL_WIDTH);
            ui.spacing_mut().item_spacing.y = 1.0;
            let size = Vec2::new(KNOB_CELL_WIDTH, KNOB_AREA_HEIGHT);
            let span = DragSpan {
                points: KNOB_DRAG_POINTS,
                vertical: true,
            };
            let (rect, response) = driven_area(ui, size, param, setter, span);
            if ui.is_rect_visible(rect) {
                paint(ui, rect.center(), &response, param);
            }
            name_plate(ui, param.name(), name_lines);
            match entry {
                Some((entry_id, entry)) => {
                    // Room for the unit beside the field.
                    typed_entry(ui, param, setter, entry_id, entry, KNOB_CELL_WIDTH - 28.0);
                }
                None => readout(ui, param.to_string()),
            }
            response
        },
    )
    .inner
}

/// The knob's name laid out centred in the cell's width.
fn name_galley(ui: &Ui, name: &str) -> std::sync::Arc<egui::Galley> {
    let font = egui::TextStyle::Small.resolve(ui.style());
    let mut job = egui::text::LayoutJob::simple(
        name.to_string(),
        font,
        ui.visuals().strong_text_color(),
        KNOB_CELL_WIDTH,
    );
    job.halign = Align::Center;
    ui.fonts_mut(|f| f.layout_job(job))
}

/// How many lines a knob's name takes.
pub fn name_lines(ui: &Ui, name: &str) -> usize {
    name_galley(ui, name).rows.len().max(1)
}

/// The knob's name at the top of a box `lines` high, so the readouts of a
/// row of knobs line up whatever their names.
fn name_plate(ui: &mut Ui, name: &str, lines: usize) {
    let galley = name_galley(ui, name);
    let row = ui.fonts_mut(|f| f.row_height(&egui::TextStyle::Small.resolve(ui.style())));
    let height = (lines as f32 * row).max(galley.size().y);
    let (rect, _) =
        ui.allocate_exact_size(Vec2::new(KNOB_CELL_WIDTH, height), egui::Sense::hover());
    ui.painter().galley(
        Pos2::new(rect.center().x, rect.top()),
        galley,
        Color32::PLACEHOLDER,
    );
}

/// The value with its unit, on a dark readout.
fn readout(ui: &mut Ui, text: String) {
    egui::Frame::NONE
        .fill(READOUT)
        .corner_radius(2.0)
        .inner_margin(egui::Margin::symmetric(4, 1))
        .show(ui, |ui| {
            ui.label(RichText::new(text).monospace().small().color(READOUT_TEXT));
        });
}

/// Where the arc starts, normalized: at 0 when the range has 0 inside it
/// and 0 is the default (trims and output levels: the arc shows the boost
/// or cut), else at the minimum.
pub fn arc_origin(param: &FloatParam) -> f32 {
    let (min, max) = (param.preview_plain(0.0), param.preview_plain(1.0));
    if min < 0.0 && max > 0.0 && param.default_plain_value() == 0.0 {
        param.preview_normalized(0.0)
    } else {
        0.0
    }
}

/// The knob's angle at normalized value `norm`, radians clockwise from
/// 12 o'clock.
pub fn angle_rad(norm: f32) -> f32 {
    START_RAD + SWEEP_RAD * norm.clamp(0.0, 1.0)
}

/// The point at `angle` (radians clockwise from 12 o'clock), `radius` from
/// `centre`.
fn at(centre: Pos2, angle: f32, radius: f32) -> Pos2 {
    centre + radius * Vec2::new(angle.sin(), -angle.cos())
}

/// An arc from normalized `from` to `to` as a polyline.
fn arc(centre: Pos2, radius: f32, from: f32, to: f32, stroke: Stroke) -> Shape {
    let (a, b) = (angle_rad(from.min(to)), angle_rad(from.max(to)));
    // About one point per 4° of arc, at least two.
    let n = ((b - a) / 0.07).ceil().max(1.0) as usize;
    let points = (0..=n)
        .map(|i| at(centre, a + (b - a) * i as f32 / n as f32, radius))
        .collect();
    Shape::line(points, stroke)
}

fn paint(ui: &Ui, centre: Pos2, response: &Response, param: &FloatParam) {
    let painter = ui.painter();
    let r = KNOB_DIAMETER / 2.0;
    let track_r = r + ARC_GAP;
    let norm = param.unmodulated_normalized_value().clamp(0.0, 1.0);
    painter.add(arc(centre, track_r, 0.0, 1.0, Stroke::new(3.0, TRACK)));
    let origin = arc_origin(param);
    if (norm - origin).abs() > 1e-4 {
        painter.add(arc(
            centre,
            track_r,
            origin,
            norm,
            Stroke::new(3.0, ON_COLOUR),
        ));
    }
    // The default as a dot just outside the track.
    let default = param.preview_normalized(param.default_plain_value());
    painter.circle_filled(
        at(centre, angle_rad(default), track_r + 3.5),
        1.2,
        ui.visuals().weak_text_color(),
    );
    // Body: a soft shadow, the rim (brighter while hovered or turned), the cap.
    painter.circle_filled(
        centre + Vec2::new(0.0, 2.0),
        r,
        Color32::from_black_alpha(90),
    );
    let rim = if response.dragged() || response.hovered() {
        ui.visuals().widgets.hovered.fg_stroke.color
    } else {
        RIM
    };
    painter.circle(centre, r, BODY, Stroke::new(1.5, rim));
    painter.circle_filled(centre, 0.74 * r, CAP);
    let angle = angle_rad(norm);
    painter.line_segment(
        [at(centre, angle, 0.3 * r), at(centre, angle, 0.92 * r)],
        Stroke::new(2.5, POINTER),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::TubelineParams;

    #[test]
    fn the_arc_starts_at_zero_for_trims_and_at_the_minimum_otherwise() {
        let p = TubelineParams::default();
        assert_eq!(arc_origin(&p.input.in_trim), 0.5);
        assert_eq!(arc_origin(&p.output.out_trim), 0.5);
        // Preamp Output: −36 … +24 dB, from 0 dB.
        assert!((arc_origin(&p.preamp.out) - 0.6).abs() < 1e-6);
        assert_eq!(arc_origin(&p.preamp.gain), 0.0);
        // Level's default is −20 dB: it reads from the minimum.
        assert_eq!(arc_origin(&p.preamp.level), 0.0);
        assert_eq!(arc_origin(&p.headphone.amp_z), 0.0);
    }

    #[test]
    fn the_pointer_turns_270_degrees_from_half_past_seven() {
        assert!((angle_rad(0.0).to_degrees() + 135.0).abs() < 1e-4);
        assert!(angle_rad(0.5).abs() < 1e-6, "the middle points up");
        assert!((angle_rad(1.0).to_degrees() - 135.0).abs() < 1e-4);
        assert_eq!(angle_rad(2.0), angle_rad(1.0));
    }
}
