//! Headless editor tests: the drawing code runs in `egui::Context::run_ui`
//! with no window, at 100 %, 150 % and 200 % scale, against a fake host that
//! applies and records parameter changes.

use std::sync::{Arc, Mutex, RwLock};

use egui::{Event, Modifiers, PointerButton, Pos2, RawInput, Rect, Vec2, ViewportId};
use nice_plug::context::gui::{GuiContext, GuiContextInner};
use nice_plug::context::PluginApi;
use nice_plug::prelude::*;

use super::*;
use crate::dsp::{dbu_to_volts_rms, full_scale_peak_volts};
use crate::meters::{ChainMeters, LevelReading, SharedMeters};

/// A host that sets parameters directly and logs begin/set/end by ID.
struct FakeHost {
    params: Arc<TubelineParams>,
    log: Mutex<Vec<String>>,
}

impl FakeHost {
    fn id_of(&self, ptr: ParamPtr) -> String {
        self.params
            .param_map()
            .into_iter()
            .find(|(_, p, _)| *p == ptr)
            .map(|(id, _, _)| id)
            .unwrap_or_else(|| "?".to_string())
    }
}

impl GuiContextInner for FakeHost {
    fn plugin_api(&self) -> PluginApi {
        PluginApi::Clap
    }
    unsafe fn raw_begin_set_parameter(&self, param: ParamPtr) {
        let id = self.id_of(param);
        self.log.lock().unwrap().push(format!("begin {id}"));
    }
    unsafe fn raw_set_parameter_normalized(&self, param: ParamPtr, normalized: f32) {
        // SAFETY: `param` points into `self.params`, alive for the test.
        unsafe { param._internal_set_normalized_value(normalized) };
        let id = self.id_of(param);
        self.log
            .lock()
            .unwrap()
            .push(format!("set {id} {normalized}"));
    }
    unsafe fn raw_end_set_parameter(&self, param: ParamPtr) {
        let id = self.id_of(param);
        self.log.lock().unwrap().push(format!("end {id}"));
    }
    fn get_state(&self) -> PluginState {
        self.params.to_state()
    }
    fn set_state(&self, state: PluginState) {
        self.params.apply_state(&state).unwrap();
    }
    fn request_restart(&self) {}
}

struct Harness {
    ctx: egui::Context,
    app: App,
    gui: GuiContext,
    host: Arc<FakeHost>,
    params: Arc<TubelineParams>,
    meters: Arc<SharedMeters>,
    size: Vec2,
    ppp: f32,
}

impl Harness {
    fn new(size: Vec2, ppp: f32) -> Self {
        let params = Arc::new(TubelineParams::default());
        let meters = Arc::new(SharedMeters::new());
        let (_tx, rx) = crate::meters::spectrum_ring();
        let app = App::new(Shared {
            params: params.clone(),
            meters: meters.clone(),
            spectrum: Arc::new(Mutex::new(rx)),
            curve_error: Arc::new(RwLock::new(None)),
        });
        let host = Arc::new(FakeHost {
            params: params.clone(),
            log: Mutex::new(Vec::new()),
        });
        let gui = GuiContext::new(host.clone());
        let ctx = egui::Context::default();
        ctx.set_visuals(egui::Visuals::dark());
        Self {
            ctx,
            app,
            gui,
            host,
            params,
            meters,
            size,
            ppp,
        }
    }

    /// Run one frame with `events`; returns every text drawn.
    fn frame(&mut self, events: Vec<Event>) -> Vec<String> {
        self.frame_with_positions(events)
            .into_iter()
            .map(|(t, _)| t)
            .collect()
    }

    /// Run one frame; returns every text drawn with its position (the top
    /// left of where it shows).
    fn frame_with_positions(&mut self, events: Vec<Event>) -> Vec<(String, Pos2)> {
        self.frame_with_rects(events)
            .into_iter()
            .map(|(t, r)| (t, r.min))
            .collect()
    }

    /// Run one frame; returns every text drawn with the rectangle it shows in.
    fn frame_with_rects(&mut self, events: Vec<Event>) -> Vec<(String, Rect)> {
        let mut raw = RawInput {
            screen_rect: Some(Rect::from_min_size(Pos2::ZERO, self.size)),
            events,
            ..Default::default()
        };
        raw.viewports
            .entry(ViewportId::ROOT)
            .or_default()
            .native_pixels_per_point = Some(self.ppp);
        let (app, gui) = (&mut self.app, &self.gui);
        let mut out = self.ctx.run_ui(raw, |ui| app.draw(ui, gui));
        out.textures_delta.clear();
        assert_eq!(out.pixels_per_point, self.ppp);
        let mut texts = Vec::new();
        fn collect(shape: &egui::Shape, texts: &mut Vec<(String, Rect)>) {
            match shape {
                egui::Shape::Text(t) => {
                    texts.push((t.galley.text().to_string(), t.visual_bounding_rect()))
                }
                egui::Shape::Vec(v) => v.iter().for_each(|s| collect(s, texts)),
                _ => {}
            }
        }
        for s in &out.shapes {
            collect(&s.shape, &mut texts);
        }
        texts
    }

    fn rect_of(&self, id: &str) -> Rect {
        self.app
            .placed()
            .iter()
            .find(|(i, _)| i == id)
            .unwrap_or_else(|| panic!("no control for {id}"))
            .1
    }

    fn click(&mut self, at: Pos2) {
        self.click_with(at, PointerButton::Primary, Modifiers::NONE);
    }

    /// Press and release `button` at `at` with `modifiers` held.
    fn click_with(&mut self, at: Pos2, button: PointerButton, modifiers: Modifiers) {
        self.frame(vec![
            Event::ModifiersChanged(modifiers),
            Event::PointerMoved(at),
        ]);
        self.frame(vec![Event::PointerButton {
            pos: at,
            button,
            pressed: true,
            modifiers,
        }]);
        self.frame(vec![Event::PointerButton {
            pos: at,
            button,
            pressed: false,
            modifiers,
        }]);
        self.frame(vec![Event::ModifiersChanged(Modifiers::NONE)]);
    }

    /// Type `text` into the focused widget and press `key`; returns the
    /// texts drawn in the frame after.
    fn type_and_press(&mut self, text: &str, key: egui::Key) -> Vec<String> {
        if !text.is_empty() {
            self.frame(vec![Event::Text(text.to_string())]);
        }
        self.frame(vec![Event::Key {
            key,
            physical_key: None,
            pressed: true,
            repeat: false,
            modifiers: Modifiers::NONE,
        }]);
        self.frame(vec![Event::Key {
            key,
            physical_key: None,
            pressed: false,
            repeat: false,
            modifiers: Modifiers::NONE,
        }])
    }
}

fn default_size() -> Vec2 {
    Vec2::new(DEFAULT_SIZE.0, DEFAULT_SIZE.1)
}

#[test]
fn every_parameter_has_a_labelled_control_at_100_150_and_200_percent() {
    for ppp in [1.0, 1.5, 2.0] {
        let mut h = Harness::new(default_size(), ppp);
        h.frame(vec![]);
        let texts = h.frame(vec![]);
        let all = texts.join("\n");
        for (id, ptr, _) in h.params.param_map() {
            // SAFETY: `ptr` points into `h.params`.
            let name = unsafe { ptr.name() }.to_string();
            // The host's bypass is the Output panel's switch: it has a
            // control like every other parameter.
            assert!(
                h.app.placed().iter().any(|(i, _)| *i == id),
                "{id} has no control at {ppp}x"
            );
            assert!(
                all.contains(&name),
                "label \"{name}\" ({id}) not drawn at {ppp}x"
            );
        }
        for title in ["Input", "DI box", "Tube preamp", "Headphone amp", "Output"] {
            assert!(texts.iter().any(|t| t == title), "panel {title} missing");
        }
    }
}

#[test]
fn controls_neither_overlap_nor_leave_the_window_at_any_scale() {
    for ppp in [1.0, 1.5, 2.0] {
        let mut h = Harness::new(default_size(), ppp);
        h.frame(vec![]);
        h.frame(vec![]);
        let screen = Rect::from_min_size(Pos2::ZERO, default_size());
        let placed = h.app.placed().to_vec();
        assert!(placed.len() >= 30, "{}", placed.len());
        for (i, (a_id, a)) in placed.iter().enumerate() {
            assert!(a.is_positive(), "{a_id} has no size at {ppp}x: {a:?}");
            assert!(
                screen.contains_rect(*a),
                "{a_id} leaves the {screen:?} window at {ppp}x: {a:?}"
            );
            for (b_id, b) in &placed[i + 1..] {
                // Touching edges are fine; overlapping areas are not.
                let overlap = a.intersect(*b);
                assert!(
                    !(overlap.width() > 0.5 && overlap.height() > 0.5),
                    "{a_id} {a:?} overlaps {b_id} {b:?} at {ppp}x"
                );
            }
        }
    }
}

#[test]
fn a_small_window_scrolls_instead_of_overlapping() {
    let size = Vec2::new(MIN_SIZE.0, MIN_SIZE.1);
    let mut h = Harness::new(size, 1.0);
    h.frame(vec![]);
    h.frame(vec![]);
    let placed = h.app.placed().to_vec();
    for (i, (a_id, a)) in placed.iter().enumerate() {
        for (b_id, b) in &placed[i + 1..] {
            let overlap = a.intersect(*b);
            assert!(
                !(overlap.width() > 0.5 && overlap.height() > 0.5),
                "{a_id} overlaps {b_id} in a {size:?} window"
            );
        }
    }
}

#[test]
fn clicking_the_preamp_switch_goes_through_the_host() {
    let mut h = Harness::new(default_size(), 1.0);
    h.frame(vec![]);
    h.frame(vec![]);
    assert!(h.params.preamp.on.value(), "the preamp is in by default");
    let at = h.rect_of("pre_on").center();
    h.click(at);
    assert!(
        !h.params.preamp.on.value(),
        "the click did not switch the preamp out"
    );
    let log = h.host.log.lock().unwrap().clone();
    assert_eq!(log, vec!["begin pre_on", "set pre_on 0", "end pre_on"]);
    // And back in.
    h.click(at);
    assert!(h.params.preamp.on.value());
}

/// Where to grab a knob: the middle of its body (the cell's top part; the
/// name and value are under it).
fn knob_point(h: &Harness, id: &str) -> Pos2 {
    let r = h.rect_of(id);
    Pos2::new(r.center().x, r.top() + knob::KNOB_AREA_HEIGHT / 2.0)
}

/// The parameter with this ID.
fn param_ptr(h: &Harness, id: &str) -> ParamPtr {
    h.params
        .param_map()
        .into_iter()
        .find(|(i, _, _)| i == id)
        .unwrap_or_else(|| panic!("no parameter {id}"))
        .1
}

/// The plain value of the parameter with this ID.
fn plain(h: &Harness, id: &str) -> f32 {
    // SAFETY: the pointer points into `h.params`.
    unsafe { param_ptr(h, id).unmodulated_plain_value() }
}

#[test]
fn double_clicking_a_knob_or_a_slider_resets_it_to_the_default_in_one_gesture() {
    // (ID, where to click, a value off the default, the default, normalized)
    let cases: [(&str, Point, &str, f32, &str); 2] = [
        ("gain", knob_point, "47", 20.0, "0.33333334"),
        ("bias", slider_point, "0.5", 0.0, "0.5"),
    ];
    for (id, point, off, default, normalized) in cases {
        let mut h = Harness::new(default_size(), 1.0);
        h.params.set_from_text(id, off).unwrap();
        let before = plain(&h, id);
        h.frame(vec![]);
        h.frame(vec![]);
        let at = point(&h, id);
        h.click(at);
        assert_eq!(
            plain(&h, id),
            before,
            "{id}: a single click changes nothing"
        );
        h.click(at);
        assert_eq!(plain(&h, id), default, "{id}");
        let log = h.host.log.lock().unwrap().clone();
        assert_eq!(
            log,
            vec![
                format!("begin {id}"),
                format!("set {id} {normalized}"),
                format!("end {id}")
            ]
        );
    }
}

/// Press at `from`, move by `by` in ten steps with `modifiers` held,
/// release.
fn drag(h: &mut Harness, from: Pos2, by: Vec2, modifiers: Modifiers) {
    h.frame(vec![Event::PointerMoved(from)]);
    h.frame(vec![Event::PointerButton {
        pos: from,
        button: PointerButton::Primary,
        pressed: true,
        modifiers,
    }]);
    let steps = 10;
    for i in 1..=steps {
        let p = from + by * (i as f32 / steps as f32);
        let mut events = vec![Event::PointerMoved(p)];
        if i == 1 {
            events.insert(0, Event::ModifiersChanged(modifiers));
        }
        h.frame(events);
    }
    let to = from + by;
    h.frame(vec![Event::PointerButton {
        pos: to,
        button: PointerButton::Primary,
        pressed: false,
        modifiers,
    }]);
    h.frame(vec![Event::ModifiersChanged(Modifiers::NONE)]);
}

/// The begin and end gestures in the host's log.
fn gestures(h: &Harness) -> (usize, usize) {
    let log = h.host.log.lock().unwrap();
    let count = |what: &str| log.iter().filter(|l| l.starts_with(what)).count();
    (count("begin"), count("end"))
}

/// Where to grab a control.
type Point = fn(&Harness, &str) -> Pos2;

/// Drag the control `id`, grabbed at `point`, by each case's movement with
/// its modifiers, and check the value moved by the case's change (within
/// `tolerance`), relative to where it was, one host gesture per drag.
fn check_drags(id: &str, point: Point, cases: &[(Vec2, Modifiers, f32)], tolerance: f32) {
    let mut h = Harness::new(default_size(), 1.0);
    h.frame(vec![]);
    h.frame(vec![]);
    let from = point(&h, id);
    for &(by, modifiers, change) in cases {
        let before = plain(&h, id);
        drag(&mut h, from, by, modifiers);
        let moved = plain(&h, id) - before;
        assert!(
            (moved - change).abs() < tolerance,
            "{id}: dragging {by:?} with {modifiers:?} moved {moved}, not {change}"
        );
    }
    assert_eq!(gestures(&h), (cases.len(), cases.len()));
    assert_eq!(
        h.host.log.lock().unwrap().last().unwrap(),
        &format!("end {id}")
    );
}

#[test]
fn dragging_a_slider_moves_relative_and_shift_is_ten_times_finer() {
    // A full slider width spans the -1 … +1 range: a quarter of it is 0.5.
    let quarter = Vec2::new(widgets::SLIDER_WIDTH / 4.0, 0.0);
    check_drags(
        "bias",
        slider_point,
        &[
            (quarter, Modifiers::NONE, 0.5),
            (quarter, Modifiers::SHIFT, 0.05),
        ],
        0.005,
    );
}

#[test]
fn dragging_a_knob_up_or_right_moves_relative_and_shift_is_ten_times_finer() {
    // KNOB_DRAG_POINTS span the -24 … +24 dB range: a quarter of it is 12 dB.
    let quarter = knob::KNOB_DRAG_POINTS / 4.0;
    check_drags(
        "in_trim",
        knob_point,
        &[
            (Vec2::new(0.0, -quarter), Modifiers::NONE, 12.0),
            (Vec2::new(0.0, -quarter), Modifiers::SHIFT, 1.2),
            // Relative, not absolute: from wherever it is, down lowers it.
            (Vec2::new(0.0, quarter / 2.0), Modifiers::NONE, -6.0),
            // Right raises as up does; Ctrl is fine too.
            (Vec2::new(quarter / 2.0, 0.0), Modifiers::CTRL, 0.6),
        ],
        0.05,
    );
}

#[test]
fn a_knob_on_a_skewed_range_turns_by_its_normalized_value() {
    let mut h = Harness::new(default_size(), 1.0);
    h.frame(vec![]);
    h.frame(vec![]);
    let amp_z = &h.params.headphone.amp_z;
    let start = amp_z.unmodulated_normalized_value();
    let from = knob_point(&h, "amp_z");
    drag(
        &mut h,
        from,
        Vec2::new(0.0, -knob::KNOB_DRAG_POINTS / 2.0),
        Modifiers::NONE,
    );
    let amp_z = &h.params.headphone.amp_z;
    let moved = amp_z.unmodulated_normalized_value() - start;
    assert!((moved - 0.5).abs() < 0.01, "{moved}");
    // Half the travel is far less than half of 0 … 1000 ohm (skewed).
    assert!(amp_z.value() < 200.0, "{}", amp_z.value());
}

#[test]
fn levels_are_shown_in_dbu_and_dbfs() {
    let mut h = Harness::new(default_size(), 1.0);
    // A +4 dBu sine at the chain input: its peak is √2 times its rms, and
    // with 0 dBFS = +18 dBu (the default calibration) it peaks at -14 dBFS.
    let rms = dbu_to_volts_rms(4.0);
    let peak = rms * std::f64::consts::SQRT_2;
    assert!((20.0 * (peak / full_scale_peak_volts(18.0)).log10() + 14.0).abs() < 1e-9);
    h.meters.publish(&ChainMeters {
        input: LevelReading {
            peak_volts: peak,
            rms_volts: rms,
        },
        samples: 1024,
        ..Default::default()
    });
    let texts = h.frame(vec![]);
    assert!(
        texts
            .iter()
            .any(|t| t.contains("Chain input: +4.0 dBu · -14.0 dBFS pk")),
        "{texts:#?}"
    );
}

#[test]
fn the_probe_file_reports_what_the_audio_thread_published() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("probe.json");
    let mut h = Harness::new(default_size(), 1.0);
    h.app.view.probe_path = Some(path.clone());
    h.meters.publish_seen(
        &crate::meters::SeenSettings {
            gain_db: 33.0,
            pre_on: true,
            ..Default::default()
        },
        256,
    );
    h.frame(vec![]);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(json["blocks"], 1);
    assert_eq!(json["gain_db"], 33.0);
    assert_eq!(json["pre_on"], true);
}

#[test]
fn the_editor_size_is_saved_in_the_state_and_sanitized() {
    let p = TubelineParams::default();
    *p.editor_size.write().unwrap() = EditorSize {
        width: 1500.0,
        height: 950.0,
    };
    let state = p.to_state();
    let q = TubelineParams::default();
    q.apply_state(&state).unwrap();
    assert_eq!(
        *q.editor_size.read().unwrap(),
        EditorSize {
            width: 1500.0,
            height: 950.0
        }
    );
    let bad = EditorSize {
        width: f32::NAN,
        height: 1.0,
    }
    .sanitized();
    assert_eq!(bad.width, DEFAULT_SIZE.0);
    assert_eq!(bad.height, MIN_SIZE.1);
}

#[test]
fn ab_slots_switch_through_the_host_and_b_starts_as_a_copy_of_a() {
    let mut h = Harness::new(default_size(), 1.0);
    h.frame(vec![]);
    h.frame(vec![]);
    h.params.set_from_text("gain", "30").unwrap();
    let b = h.rect_of("slot_B").center();
    let a = h.rect_of("slot_A").center();
    h.click(b);
    assert_eq!(h.app.view.audition.active(), 1);
    assert_eq!(
        h.params.preamp.gain.value(),
        30.0,
        "B starts as a copy of A"
    );
    h.params.set_from_text("gain", "50").unwrap();
    h.params.set_from_text("pad", "on").unwrap();
    h.host.log.lock().unwrap().clear();
    h.click(a);
    assert_eq!(h.params.preamp.gain.value(), 30.0);
    assert!(!h.params.preamp.pad.value());
    let log = h.host.log.lock().unwrap().clone();
    let i = log
        .iter()
        .position(|l| l == "begin gain")
        .expect("gain went through the host");
    assert!(
        log[i + 1].starts_with("set gain") && log[i + 2] == "end gain",
        "{log:?}"
    );
    h.click(b);
    assert_eq!(h.params.preamp.gain.value(), 50.0);
    assert!(h.params.preamp.pad.value());
    // Copy B to A, then A has B's settings.
    h.click(h.rect_of("copy_slot").center());
    h.click(a);
    assert_eq!(h.params.preamp.gain.value(), 50.0);
}

#[test]
fn presets_load_through_the_host_and_a_corrupt_one_changes_nothing() {
    let mut h = Harness::new(default_size(), 1.0);
    h.frame(vec![]);
    let shared = h.app.shared.clone();
    for preset in crate::presets::factory() {
        h.app.view.audition.load(&shared, &h.gui, &preset);
        assert_eq!(h.app.view.audition.status(), None, "{}", preset.name);
        let expected = TubelineParams::default();
        expected.apply_state(&preset.state).unwrap();
        assert_eq!(
            h.params.snapshot(false),
            expected.snapshot(false),
            "{} did not load",
            preset.name
        );
    }
    let before = h.params.snapshot(false);
    let mut bad = crate::presets::factory()[0].clone();
    bad.state
        .params
        .insert("in_trim".into(), nice_plug::plugin::ParamValue::F32(1000.0));
    h.app.view.audition.load(&shared, &h.gui, &bad);
    assert_eq!(h.params.snapshot(false), before);
    let status = h.app.view.audition.status().unwrap();
    assert!(status.contains("in_trim"), "{status}");
}

#[test]
fn a_saved_user_preset_is_a_file_that_loads_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::new(default_size(), 1.0);
    h.app.view.audition.set_user_dir(dir.path().to_path_buf());
    h.params.set_from_text("gain", "41").unwrap();
    let shared = h.app.shared.clone();
    h.app.view.audition.save(&shared, "My vocal");
    let listed = crate::presets::list_user(dir.path());
    assert_eq!(listed.len(), 1, "{:?}", h.app.view.audition.status());
    let preset = listed[0].1.as_ref().unwrap();
    assert_eq!(preset.name, "My vocal");
    h.params.set_from_text("gain", "5").unwrap();
    h.app.view.audition.load(&shared, &h.gui, preset);
    assert_eq!(h.params.preamp.gain.value(), 41.0);
    // No name: a message says what to do, nothing is written.
    h.app.view.audition.save(&shared, "  ");
    assert!(h.app.view.audition.status().unwrap().contains("name"));
    assert_eq!(crate::presets::list_user(dir.path()).len(), 1);
}

#[test]
fn the_solid_state_pre_shows_where_it_clips_not_grid_readings() {
    let mut h = Harness::new(default_size(), 1.0);
    let texts = h.frame(vec![]);
    assert!(
        texts.iter().any(|t| t.starts_with("Stage 1 grid")),
        "{texts:#?}"
    );
    h.params.set_from_text("pre_type", "solid_state").unwrap();
    let texts = h.frame(vec![]);
    assert!(!texts.iter().any(|t| t.contains(" grid: ")), "{texts:#?}");
    // ±13.3 V of swing is 13.3/√2 V rms: 20·log10(9.405/0.7746) = +21.7 dBu.
    let clip_dbu = 20.0 * (13.3 / 2f64.sqrt() / 0.774_596_669).log10();
    let expected = format!("clipping at {clip_dbu:+.1} dBu");
    assert_eq!(expected, "clipping at +21.7 dBu");
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("Op-amp stages") && t.contains(&expected)),
        "{texts:#?}"
    );
}

#[test]
fn advice_shows_in_the_panel_of_its_stage() {
    let mut h = Harness::new(default_size(), 1.0);
    h.frame(vec![]);
    let texts = h.frame_with_positions(vec![]);
    assert!(!texts
        .iter()
        .any(|(t, _)| t.contains("Line level into a mic input")));
    // A pro line into the mic input with neither DI nor pad.
    h.params.set_from_text("source", "pro_line").unwrap();
    let texts = h.frame_with_positions(vec![]);
    let (_, pos) = texts
        .iter()
        .find(|(t, _)| t.contains("Line level into a mic input"))
        .expect("the line-into-mic advice is shown");
    let expected = crate::advice::advise(&h.params.snapshot(false), None)
        .into_iter()
        .find(|a| a.text.starts_with("Line level into a mic input"))
        .unwrap()
        .stage;
    let anchor = match expected {
        crate::advice::Stage::Input => "in_trim",
        crate::advice::Stage::Di => "di_load",
        crate::advice::Stage::Preamp => "gain",
        crate::advice::Stage::Headphone => "amp_z",
        crate::advice::Stage::Output => "out_trim",
    };
    let column = h.rect_of(anchor);
    assert!(
        pos.x >= column.left() - 1.0 && pos.x < column.left() + 2.0 * widgets::SLIDER_WIDTH,
        "advice at {pos:?}, its panel's controls at {column:?}"
    );
}

/// Where to click on a slider: its bar is the lower part of the control
/// (the name is above it).
fn slider_point(h: &Harness, id: &str) -> Pos2 {
    let r = h.rect_of(id);
    Pos2::new(r.left() + 40.0, r.bottom() - 8.0)
}

#[test]
fn a_typed_value_with_its_unit_goes_through_the_host() {
    let mut h = Harness::new(default_size(), 1.0);
    h.frame(vec![]);
    h.frame(vec![]);
    h.click_with(
        knob_point(&h, "gain"),
        PointerButton::Secondary,
        Modifiers::NONE,
    );
    assert!(
        h.host.log.lock().unwrap().is_empty(),
        "opening changes nothing"
    );
    h.type_and_press("35 dB", egui::Key::Enter);
    assert_eq!(h.params.preamp.gain.value(), 35.0);
    // 35 dB of the 0 … 60 dB range, as one gesture.
    let log = h.host.log.lock().unwrap().clone();
    assert_eq!(log.len(), 3, "{log:?}");
    assert_eq!(log[0], "begin gain");
    let normalized: f32 = log[1].strip_prefix("set gain ").unwrap().parse().unwrap();
    assert!((normalized - 35.0 / 60.0).abs() < 1e-6, "{log:?}");
    assert_eq!(log[2], "end gain");
    // The field closed: the knob's readout is back with the new value.
    let texts = h.frame(vec![]);
    assert!(texts.iter().any(|t| t == "35.00 dB"), "{texts:?}");
}

#[test]
fn ctrl_click_types_kilo_ohms_into_the_di_load() {
    let mut h = Harness::new(default_size(), 1.0);
    h.frame(vec![]);
    h.frame(vec![]);
    h.click_with(
        slider_point(&h, "di_load"),
        PointerButton::Primary,
        Modifiers::CTRL,
    );
    h.type_and_press("2.2k", egui::Key::Enter);
    assert_eq!(h.params.di.load.value(), 2200.0);
}

#[test]
fn a_bad_typed_value_changes_nothing_and_says_what_is_expected() {
    let mut h = Harness::new(default_size(), 1.0);
    h.frame(vec![]);
    h.frame(vec![]);
    let at = knob_point(&h, "gain");
    h.click_with(at, PointerButton::Secondary, Modifiers::NONE);
    let texts = h.type_and_press("abc", egui::Key::Enter);
    assert_eq!(h.params.preamp.gain.value(), 20.0);
    assert!(h.host.log.lock().unwrap().is_empty());
    let error = texts
        .iter()
        .find(|t| t.contains("\"abc\""))
        .unwrap_or_else(|| panic!("no error shown: {texts:?}"));
    assert!(error.contains("from 0 to 60 dB"), "{error}");
    // The field and its message stay inside the knob's cell.
    let (gain, level) = (h.rect_of("gain"), h.rect_of("level"));
    assert_eq!(gain.width(), knob::KNOB_CELL_WIDTH, "{gain:?}");
    assert!(gain.right() <= level.left(), "{gain:?} runs into {level:?}");
    // Out of range is refused the same way; the field stays open for a
    // fix, with the refused text selected so typing replaces it.
    let texts = h.type_and_press("75", egui::Key::Enter);
    assert_eq!(h.params.preamp.gain.value(), 20.0);
    assert!(
        texts
            .iter()
            .any(|t| t.contains("\"75\"") && t.contains("from 0 to 60 dB")),
        "{texts:?}"
    );
    // Escape closes the field and changes nothing.
    let texts = h.type_and_press("", egui::Key::Escape);
    assert!(!texts.iter().any(|t| t.contains("expected")), "{texts:?}");
    assert_eq!(h.params.preamp.gain.value(), 20.0);
    assert!(h.host.log.lock().unwrap().is_empty());
    // And the knob works again: a double-click still resets.
    h.params.set_from_text("gain", "47").unwrap();
    h.frame(vec![]);
    h.click(at);
    h.click(at);
    assert_eq!(h.params.preamp.gain.value(), 20.0);
}

#[test]
fn typed_values_parse_like_the_renderer_and_check_the_range() {
    let p = TubelineParams::default();
    assert_eq!(widgets::parse_typed(&p.preamp.gain, " 35 dB "), Ok(35.0));
    assert_eq!(
        widgets::parse_typed(&p.headphone.amp_z, "600 ohm"),
        Ok(600.0)
    );
    assert_eq!(widgets::parse_typed(&p.di.load, "1.5k"), Ok(1500.0));
    assert_eq!(widgets::parse_typed(&p.output.mix, "50%"), Ok(50.0));
    let e = widgets::parse_typed(&p.input.in_trim, "-30").unwrap_err();
    assert!(e.to_string().contains("from -24 to 24 dB"), "{e}");
    assert!(widgets::parse_typed(&p.preamp.gain, "loud").is_err());
}

#[test]
fn every_control_on_screen_has_hover_help() {
    let mut h = Harness::new(default_size(), 1.0);
    h.frame(vec![]);
    h.frame(vec![]);
    for (id, _) in h.app.placed() {
        assert!(!help::help(id).trim().is_empty(), "{id} has no hover help");
    }
}

#[test]
fn hovering_a_knob_or_a_slider_shows_its_help() {
    for (id, usage, point) in [
        (
            "amp_z",
            widgets::KNOB_USAGE,
            knob_point as fn(&Harness, &str) -> Pos2,
        ),
        ("amp_swing", widgets::SLIDER_USAGE, slider_point),
    ] {
        let mut h = Harness::new(default_size(), 1.0);
        h.frame(vec![]);
        h.frame(vec![]);
        // egui waits for the pointer to rest before it shows a tooltip: no
        // waiting in a test.
        h.ctx.all_styles_mut(|s| {
            s.interaction.tooltip_delay = 0.0;
            s.interaction.show_tooltips_only_when_still = false;
        });
        let at = point(&h, id);
        h.frame(vec![Event::PointerMoved(at)]);
        h.frame(vec![]);
        let texts = h.frame(vec![]);
        assert!(
            texts.iter().any(|t| t == help::help(id)),
            "the {id} tooltip did not show: {texts:?}"
        );
        assert!(texts.iter().any(|t| t == usage), "{id}: {texts:?}");
    }
}

/// The parameters shown as knobs.
const KNOBS: [&str; 8] = [
    "in_trim", "gain", "level", "pre_out", "amp_z", "amp_vol", "out_trim", "mix",
];

#[test]
fn every_knob_draws_its_name_and_value_inside_its_cell_at_any_scale() {
    for ppp in [1.0, 1.5, 2.0] {
        let mut h = Harness::new(default_size(), ppp);
        h.frame(vec![]);
        let texts = h.frame_with_positions(vec![]);
        for id in KNOBS {
            let cell = h.rect_of(id);
            assert_eq!(cell.width(), knob::KNOB_CELL_WIDTH, "{id} at {ppp}x");
            let ptr = param_ptr(&h, id);
            // SAFETY: `ptr` points into `h.params`.
            let (name, value) = unsafe {
                (
                    ptr.name().to_string(),
                    ptr.normalized_value_to_string(ptr.unmodulated_normalized_value(), true),
                )
            };
            for text in [&name, &value] {
                let (_, pos) = texts
                    .iter()
                    .find(|(t, pos)| t == text && cell.contains(*pos))
                    .unwrap_or_else(|| {
                        panic!("\"{text}\" not drawn in {id}'s cell {cell:?} at {ppp}x")
                    });
                // Under the knob's body.
                assert!(
                    pos.y >= cell.top() + knob::KNOB_AREA_HEIGHT - 1.0,
                    "{text} at {pos:?}"
                );
            }
        }
    }
}

#[test]
fn every_stage_panel_has_a_level_meter() {
    let mut h = Harness::new(default_size(), 1.0);
    h.frame(vec![]);
    h.frame(vec![]);
    // Each meter lies in its panel's column: under the panel's first control.
    for (meter, column) in [
        ("meter_input", "in_trim"),
        ("meter_di", "di_ratio"),
        ("meter_mic", "gain"),
        ("meter_preamp", "gain"),
        ("meter_headphone", "amp_z"),
        ("meter_output", "out_trim"),
    ] {
        let m = h.rect_of(meter);
        let c = h.rect_of(column);
        assert!(
            (m.left() - c.left()).abs() < 1.0 && m.top() > c.bottom(),
            "{meter} {m:?} is not under {column} {c:?}"
        );
        assert!(m.width() >= PANEL_MIN_WIDTH - 1.0, "{meter} {m:?}");
    }
}

#[test]
fn the_headphone_plot_shows_a_measured_curve_or_why_it_cannot() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::new(default_size(), 1.0);
    h.params.set_from_text("hp_model", "custom").unwrap();
    let texts = h.frame(vec![]);
    assert!(
        texts.iter().any(|t| t.starts_with("No measured curve")),
        "{texts:?}"
    );
    // A malformed file: the parser's message, with the file and line.
    let bad = dir.path().join("cans.csv");
    std::fs::write(&bad, "20, 32, 0\n50, x, 0\n").unwrap();
    *h.params.hp_csv.write().unwrap() = bad.to_string_lossy().to_string();
    let texts = h.frame(vec![]);
    assert!(
        texts
            .iter()
            .any(|t| t.contains("cans.csv") && t.contains("line 2")),
        "{texts:?}"
    );
    // A good one (300 ohm, flat): plotted, no message.
    let good = dir.path().join("flat300.csv");
    let rows: String = [20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000]
        .iter()
        .map(|f| format!("{f}, 300, 0\n"))
        .collect();
    std::fs::write(&good, rows).unwrap();
    *h.params.hp_csv.write().unwrap() = good.to_string_lossy().to_string();
    let texts = h.frame(vec![]);
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("Headphone |Z| measured, 0-360 ohm (grey)")),
        "{texts:?}"
    );
    assert!(!texts.iter().any(|t| t.contains("cans.csv")), "{texts:?}");
}

#[test]
fn the_chain_plot_gives_the_track_to_track_gain() {
    let mut h = Harness::new(default_size(), 1.0);
    // Defaults: a mic track through the preamp with auto-gain on and the
    // output level at 0 dB comes out at the level it went in.
    let texts = h.frame(vec![]);
    let title = |texts: &[String]| {
        texts
            .iter()
            .find(|t| t.starts_with("Chain response"))
            .cloned()
            .unwrap_or_default()
    };
    assert!(
        title(&texts).ends_with("track to track at 1 kHz: +0.0 dB"),
        "{}",
        title(&texts)
    );
    h.params.set_from_text("out_trim", "+6 dB").unwrap();
    let texts = h.frame(vec![]);
    assert!(title(&texts).ends_with(": +6.0 dB"), "{}", title(&texts));
}

#[test]
fn the_panels_are_even_and_no_taller_than_the_tallest_needs() {
    let mut h = Harness::new(default_size(), 1.0);
    h.frame(vec![]);
    let first = h.app.view.panel_height;
    let texts = h.frame_with_positions(vec![]);
    assert_eq!(h.app.view.panel_height, first, "the height settles at once");
    // The Preamp panel is the tallest: its last meter ends it, and the plots
    // start right under the row.
    let last = h.rect_of("meter_preamp");
    let (_, plots_at) = texts
        .iter()
        .find(|(t, _)| t.starts_with("Chain response"))
        .unwrap();
    let gap = plots_at.y - last.bottom();
    assert!(
        gap > 0.0 && gap < 40.0,
        "{gap} points between the row and the plots"
    );
}

#[test]
fn panel_titles_keep_clear_of_their_switches_down_to_the_smallest_window() {
    // In the smallest window the panels are as narrow as they get
    // (PANEL_MIN_WIDTH); the longest title, Headphone amp, is still drawn.
    for size in [default_size(), Vec2::new(MIN_SIZE.0, MIN_SIZE.1)] {
        let mut h = Harness::new(size, 1.0);
        h.frame(vec![]);
        let texts = h.frame_with_rects(vec![]);
        for (title, switch) in [
            ("DI box", "di_on"),
            ("Tube preamp", "pre_on"),
            ("Headphone amp", "hp_on"),
            ("Output", "bypass"),
        ] {
            // A panel scrolled out of a small window draws no title.
            let Some((_, t)) = texts.iter().find(|(t, _)| t == title) else {
                assert!(size != default_size(), "{title} not drawn");
                continue;
            };
            let s = h.rect_of(switch);
            assert!(
                t.right() < s.left(),
                "{title} {t:?} runs into its switch {s:?} in a {size:?} window"
            );
        }
    }
}
