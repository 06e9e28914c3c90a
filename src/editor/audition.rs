//! Auditioning: A/B slots, the preset menu and "Save preset…".
//!
//! Every state change goes through the host, parameter by parameter
//! (`raw_begin_set_parameter` → `raw_set_parameter_normalized` →
//! `raw_end_set_parameter`), from a plan that `TubelineParams::plan_state`
//! validated first: a corrupt preset changes nothing and its error is shown.
//! The persisted fields that belong to the sound (the measured curve's
//! points and path) follow; the editor's window size does not (a preset should not resize
//! the window).
//!
//! A/B: two complete settings. The slot being edited is live; switching
//! stores the live state into it and applies the other slot (the first
//! switch copies A into an empty B, so B starts where A is). "Copy A→B"
//! (or B→A) overwrites the other slot with the live state.

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use egui::{RichText, Ui};
use nice_plug::context::gui::GuiContext;
use nice_plug::prelude::PluginState;

use super::widgets::{CLIP_COLOUR, ON_COLOUR};
use super::Shared;
use crate::presets::{self, Preset};

/// Persisted fields a state may carry that are not part of the sound.
const NOT_SOUND_FIELDS: &[&str] = &["editor"];

/// Apply `state` through the host. Changes nothing and returns the reason
/// when the state does not fit this plugin.
pub fn apply_through_host(
    shared: &Shared,
    gui: &GuiContext,
    state: &PluginState,
) -> Result<(), String> {
    let plan = shared.params.plan_state(state).map_err(|e| e.to_string())?;
    for (ptr, normalized) in plan {
        // SAFETY: every pointer comes from `shared.params`, which the host
        // and this editor keep alive.
        unsafe {
            gui.raw_begin_set_parameter(ptr);
            gui.raw_set_parameter_normalized(ptr, normalized);
            gui.raw_end_set_parameter(ptr);
        }
    }
    let mut state = state.clone();
    crate::headphone_curve::upgrade_state(&mut state);
    let mut fields = state.fields;
    fields.retain(|k, _| !NOT_SOUND_FIELDS.contains(&k.as_str()));
    if !fields.is_empty() {
        use nice_plug::prelude::Params;
        shared.params.deserialize_fields(&fields);
        // The measured curve may have changed: design it anew (from the
        // saved points, or the file of an older state).
        shared.meters.redesign_curve.store(true, Ordering::Release);
    }
    Ok(())
}

/// The state of the A/B slots and the preset menu.
pub struct Audition {
    /// The two slots (`None`: never filled).
    slots: [Option<PluginState>; 2],
    /// The slot being edited (0 = A, 1 = B).
    active: usize,
    /// Name typed for "Save preset…".
    save_name: String,
    /// Last message for the person (error or confirmation) and whether it
    /// is an error.
    status: Option<(String, bool)>,
    /// Name of the preset last loaded.
    loaded: Option<String>,
    /// The user preset folder.
    user_dir: PathBuf,
    /// Set when a state was applied: the panel re-reads the curve path.
    pub state_applied: bool,
}

impl Default for Audition {
    fn default() -> Self {
        Self {
            slots: [None, None],
            active: 0,
            save_name: String::new(),
            status: None,
            loaded: None,
            user_dir: presets::user_dir(),
            state_applied: false,
        }
    }
}

impl Audition {
    /// The slot being edited, 0 (A) or 1 (B).
    pub fn active(&self) -> usize {
        self.active
    }

    /// Use another folder for user presets (tests).
    pub fn set_user_dir(&mut self, dir: PathBuf) {
        self.user_dir = dir;
    }

    /// The last message shown, if any.
    pub fn status(&self) -> Option<&str> {
        self.status.as_ref().map(|(s, _)| s.as_str())
    }

    /// Switch to slot `to` (0 = A, 1 = B).
    pub fn switch_to(&mut self, shared: &Shared, gui: &GuiContext, to: usize) {
        if to == self.active {
            return;
        }
        let live = shared.params.to_state();
        let target = self.slots[to].clone().unwrap_or_else(|| live.clone());
        self.slots[self.active] = Some(live);
        match apply_through_host(shared, gui, &target) {
            Ok(()) => {
                self.active = to;
                self.state_applied = true;
                self.status = None;
            }
            Err(e) => self.status = Some((format!("Cannot switch: {e}"), true)),
        }
    }

    /// Copy the live settings into the other slot.
    pub fn copy_to_other(&mut self, shared: &Shared) {
        self.slots[1 - self.active] = Some(shared.params.to_state());
        let (from, to) = if self.active == 0 {
            ("A", "B")
        } else {
            ("B", "A")
        };
        self.status = Some((format!("Copied {from} to {to}"), false));
    }

    /// Load a preset through the host.
    pub fn load(&mut self, shared: &Shared, gui: &GuiContext, preset: &Preset) {
        match apply_through_host(shared, gui, &preset.state) {
            Ok(()) => {
                self.loaded = Some(preset.name.clone());
                self.state_applied = true;
                self.status = None;
            }
            Err(e) => {
                self.status = Some((format!("Preset \"{}\" not loaded: {e}", preset.name), true))
            }
        }
    }

    /// Save the live settings as a user preset named `name`.
    pub fn save(&mut self, shared: &Shared, name: &str) {
        let name = name.trim();
        if name.is_empty() {
            self.status = Some(("Type a name for the preset first".to_string(), true));
            return;
        }
        let path = self.user_dir.join(presets::file_name_for(name));
        let preset = Preset {
            name: name.to_string(),
            description: String::new(),
            state: shared.params.to_state(),
        };
        self.status = Some(match presets::save_user(&path, &preset) {
            Ok(()) => (format!("Saved {}", path.display()), false),
            Err(e) => (e.to_string(), true),
        });
        if self.status.as_ref().is_some_and(|s| !s.1) {
            self.loaded = Some(name.to_string());
        }
    }

    /// The top bar's audition controls.
    pub fn ui(
        &mut self,
        ui: &mut Ui,
        shared: &Shared,
        gui: &GuiContext,
        placed: &mut Vec<(String, egui::Rect)>,
    ) {
        let label = self.loaded.clone().unwrap_or_else(|| "Presets".to_string());
        let menu = ui.menu_button(label, |ui| {
            ui.label(RichText::new("Factory").strong());
            for p in presets::factory() {
                if ui.button(&p.name).on_hover_text(&p.description).clicked() {
                    self.load(shared, gui, &p);
                    ui.close();
                }
            }
            ui.separator();
            ui.label(RichText::new(format!("User ({})", self.user_dir.display())).strong());
            let user = presets::list_user(&self.user_dir);
            if user.is_empty() {
                ui.label(RichText::new("none saved yet").small());
            }
            for (path, preset) in user {
                match preset {
                    Ok(p) => {
                        if ui.button(&p.name).on_hover_text(&p.description).clicked() {
                            self.load(shared, gui, &p);
                            ui.close();
                        }
                    }
                    Err(e) => {
                        let name = path.file_name().map(|n| n.to_string_lossy().to_string());
                        ui.label(
                            RichText::new(format!("{}: cannot load", name.unwrap_or_default()))
                                .color(CLIP_COLOUR),
                        )
                        .on_hover_text(e.to_string());
                    }
                }
            }
        });
        let menu_response = menu.response.on_hover_text(super::help::help("presets"));
        placed.push(("presets".to_string(), menu_response.rect));
        ui.separator();
        for (i, name) in ["A", "B"].iter().enumerate() {
            let on = self.active == i;
            let text = RichText::new(*name).strong();
            let text = if on {
                text.color(egui::Color32::BLACK)
            } else {
                text
            };
            let mut button = egui::Button::new(text);
            if on {
                button = button.fill(ON_COLOUR);
            }
            let r = ui
                .add(button)
                .on_hover_text(super::help::help(&format!("slot_{name}")));
            if r.clicked() {
                self.switch_to(shared, gui, i);
            }
            placed.push((format!("slot_{name}"), r.rect));
        }
        let copy = if self.active == 0 {
            "Copy A to B"
        } else {
            "Copy B to A"
        };
        let r = ui
            .button(copy)
            .on_hover_text(super::help::help("copy_slot"));
        if r.clicked() {
            self.copy_to_other(shared);
        }
        placed.push(("copy_slot".to_string(), r.rect));
        ui.separator();
        let r = ui
            .add(
                egui::TextEdit::singleline(&mut self.save_name)
                    .desired_width(140.0)
                    .hint_text("preset name"),
            )
            .on_hover_text(super::help::help("preset_name"));
        placed.push(("preset_name".to_string(), r.rect));
        let r = ui
            .button("Save preset...")
            .on_hover_text(super::help::help("save_preset"));
        if r.clicked() {
            let name = self.save_name.clone();
            self.save(shared, &name);
        }
        placed.push(("save_preset".to_string(), r.rect));
        if let Some((text, error)) = &self.status {
            let colour = if *error {
                CLIP_COLOUR
            } else {
                ui.visuals().weak_text_color()
            };
            ui.label(RichText::new(text).small().color(colour));
        }
    }
}
