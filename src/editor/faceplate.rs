//! The stage panels' hardware look, the same for every stage: a framed
//! faceplate with a title strip (a lamp lit while the stage is in, the
//! stage's name, its in/out switch on the right), then the body with
//! consistent margins and spacing, its sections divided by engraved lines.
//!
//! ```text
//!  ╭──────────────────────────────╮
//!  │ ● Tube preamp      [Preamp]  │  title strip
//!  ├──────────────────────────────┤
//!  │  (knobs)  (switches)         │  body: main controls,
//!  │ ─────────────────────────    │  the setup values,
//!  │  (meters)                    │  the stage's meters
//!  ╰──────────────────────────────╯
//! ```

use egui::{Color32, CornerRadius, Layout, Margin, RichText, Sense, Stroke, Ui, Vec2};

use super::widgets::ON_COLOUR;

/// Margin around the body of a panel, points.
pub const BODY_MARGIN: f32 = 8.0;
/// Width of the faceplate's edge, points.
const EDGE_WIDTH: f32 = 1.0;
/// Width a panel adds to its contents (margins and edges, both sides).
pub const PANEL_EXTRA: f32 = 2.0 * (BODY_MARGIN + EDGE_WIDTH);
/// Corner radius of the faceplate.
const CORNER: u8 = 6;
/// Size of the title, points.
const TITLE_SIZE: f32 = 14.0;
/// Size of the in/out switch's text in the title strip, points.
const SWITCH_TEXT_SIZE: f32 = 11.0;
/// Space between the items of a panel's body, points.
pub const BODY_SPACING: Vec2 = Vec2::new(6.0, 5.0);

/// The faceplate's fill.
const FACEPLATE: Color32 = Color32::from_rgb(0x2c, 0x2d, 0x31);
/// Its edge.
const EDGE: Color32 = Color32::from_rgb(0x4e, 0x51, 0x57);
/// The title strip's fill.
const STRIP: Color32 = Color32::from_rgb(0x1c, 0x1d, 0x20);
/// The title's colour.
const TITLE: Color32 = Color32::from_rgb(0xe8, 0xe4, 0xda);
/// The dark half of an engraved line.
const GROOVE: Color32 = Color32::from_rgb(0x1a, 0x1b, 0x1d);
/// Its light half.
const GROOVE_LIGHT: Color32 = Color32::from_rgb(0x3c, 0x3e, 0x43);

/// One stage panel, its body `width` points wide and at least
/// `min_body_height` high (so a row of panels can be made even): the title
/// strip with the lamp (`lamp_on`: the stage is in), `title` and what
/// `switch` adds on the right (in a smaller font), then `body`. `cx` is
/// handed to both (they usually need the same mutable state). Returns the
/// height the body needed.
pub fn stage_panel<C>(
    ui: &mut Ui,
    (width, min_body_height): (f32, f32),
    title: &str,
    lamp_on: bool,
    cx: &mut C,
    switch: impl FnOnce(&mut Ui, &mut C),
    body: impl FnOnce(&mut Ui, &mut C),
) -> f32 {
    egui::Frame::NONE
        .fill(FACEPLATE)
        .stroke(Stroke::new(EDGE_WIDTH, EDGE))
        .corner_radius(CornerRadius::same(CORNER))
        .show(ui, |ui| {
            // The frame's contents stack vertically whatever the layout
            // around it (the panels sit in a row).
            ui.vertical(|ui| {
                ui.set_width(width + 2.0 * BODY_MARGIN);
                ui.spacing_mut().item_spacing = Vec2::ZERO;
                egui::Frame::NONE
                    .fill(STRIP)
                    .corner_radius(CornerRadius {
                        nw: CORNER - 1,
                        ne: CORNER - 1,
                        sw: 0,
                        se: 0,
                    })
                    .inner_margin(Margin::symmetric(BODY_MARGIN as i8, 4))
                    .show(ui, |ui| {
                        ui.set_width(width);
                        ui.spacing_mut().item_spacing = BODY_SPACING;
                        ui.horizontal(|ui| {
                            lamp(ui, lamp_on);
                            ui.label(RichText::new(title).size(TITLE_SIZE).strong().color(TITLE));
                            ui.with_layout(Layout::right_to_left(egui::Align::Center), |ui| {
                                // Compact, so the longest title and its
                                // switch share the narrowest panel.
                                ui.style_mut().text_styles.insert(
                                    egui::TextStyle::Button,
                                    egui::FontId::proportional(SWITCH_TEXT_SIZE),
                                );
                                ui.spacing_mut().button_padding.x = 5.0;
                                switch(ui, cx);
                            });
                        });
                    });
                let strip = ui.min_rect();
                ui.painter()
                    .hline(strip.x_range(), strip.bottom(), Stroke::new(1.0, EDGE));
                egui::Frame::NONE
                    .inner_margin(BODY_MARGIN)
                    .show(ui, |ui| {
                        ui.set_width(width);
                        ui.spacing_mut().item_spacing = BODY_SPACING;
                        // Before the contents: egui counts a minimum height
                        // from where the next widget would go.
                        ui.set_min_height(min_body_height);
                        ui.vertical(|ui| body(ui, cx)).response.rect.height()
                    })
                    .inner
            })
            .inner
        })
        .inner
}

/// The stage's lamp: lit (with a glow) while the stage is in.
fn lamp(ui: &mut Ui, on: bool) {
    let (rect, _) = ui.allocate_exact_size(Vec2::splat(12.0), Sense::hover());
    let painter = ui.painter();
    let c = rect.center();
    if on {
        painter.circle_filled(c, 6.0, ON_COLOUR.gamma_multiply(0.25));
        painter.circle_filled(c, 3.5, ON_COLOUR);
    } else {
        painter.circle_filled(c, 3.5, Color32::from_rgb(0x40, 0x30, 0x22));
    }
    painter.circle_stroke(c, 4.0, Stroke::new(1.0, Color32::from_black_alpha(160)));
}

/// An engraved line across the body, between its sections.
pub fn divider(ui: &mut Ui) {
    let (rect, _) = ui.allocate_exact_size(Vec2::new(ui.available_width(), 6.0), Sense::hover());
    let y = rect.center().y;
    let painter = ui.painter();
    painter.hline(rect.x_range(), y, Stroke::new(1.0, GROOVE));
    painter.hline(rect.x_range(), y + 1.0, Stroke::new(1.0, GROOVE_LIGHT));
}
