//! Presets: the factory list loads, round-trips through files bit-exactly,
//! renders, and does what each name claims (expected values from the
//! physics: the headphone divider Z/(Z+Zo) with the model's impedance, the
//! DI's turns ratio, the Butterworth high-pass, the DI's hum level); user
//! files fail with messages that name the problem; saves are atomic; the
//! renderer takes factory names.

mod util;

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;

use num_complex::Complex;
use tubeline::dsp::headphone::HeadphoneModel;
use tubeline::params::TubelineParams;
use tubeline::presets::{self, Preset};
use tubeline::render::{demo_signal, render};

use util::*;

const SR: f64 = 48_000.0;

fn factory(name: &str) -> Preset {
    presets::find_factory(name).unwrap_or_else(|| panic!("no factory preset \"{name}\""))
}

/// Parameters loaded from `preset`, then `overrides` (ID, value as typed).
fn params_for(preset: &Preset, overrides: &[(&str, &str)]) -> TubelineParams {
    let p = TubelineParams::default();
    p.apply_state(&preset.state).unwrap();
    for (id, v) in overrides {
        p.set_from_text(id, v).unwrap();
    }
    p
}

/// Render mono `input` with `preset` + `overrides`; returns the output.
fn render_mono(preset: &Preset, overrides: &[(&str, &str)], input: &[f32]) -> Vec<f32> {
    let p = params_for(preset, overrides);
    let (out, _) = render(&p, None, &[input.to_vec()], SR, 512, |_| {});
    out.into_iter().next().unwrap()
}

/// Sum of sines (freq Hz, peak) of `secs` seconds.
fn tones(parts: &[(f64, f64)], secs: f64) -> Vec<f32> {
    let n = (secs * SR) as usize;
    let mut x = vec![0.0f32; n];
    for &(f, a) in parts {
        for (v, s) in x.iter_mut().zip(sine(f, a, SR, n)) {
            *v += s;
        }
    }
    x
}

/// Amplitude spectrum of the last second (1 Hz bins, so whole-hertz tones
/// sit exactly on a bin).
fn last_second_spectrum(x: &[f32]) -> Vec<f64> {
    let n = SR as usize;
    spectrum(&x[x.len() - n..])
}

fn db(x: f64) -> f64 {
    20.0 * x.log10()
}

/// Level of the divider Z/(Z+Zo) in dB for a modelled headphone, computed
/// here from the model's impedance.
fn divider_db(model: HeadphoneModel, zo: f64, f: f64) -> f64 {
    let z: Complex<f64> = model.impedance(f);
    db((z / (z + zo)).norm())
}

// ------------------------------------------------------------ the list --

#[test]
fn factory_list_is_complete_named_and_unique() {
    let list = presets::factory();
    assert!(list.len() >= 12, "only {} factory presets", list.len());
    let mut names = HashSet::new();
    let mut files = HashSet::new();
    for p in &list {
        assert!(!p.name.trim().is_empty());
        assert!(
            p.description.len() > 40,
            "\"{}\" needs a description",
            p.name
        );
        // Unique even as the renderer compares them, and as file names.
        let loose: String = p
            .name
            .chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect();
        assert!(names.insert(loose), "duplicate name \"{}\"", p.name);
        assert!(files.insert(presets::file_name_for(&p.name)));
        assert_eq!(presets::find_factory(&p.name).unwrap().name, p.name);
    }
}

#[test]
fn every_factory_preset_plans_applies_and_round_trips_through_a_file() {
    let dir = tempfile::tempdir().unwrap();
    for p in presets::factory() {
        // Plans against the tree, and the plan changes nothing.
        let target = TubelineParams::default();
        target.set_from_text("gain", "42").unwrap();
        let before = target.to_state();
        let plan = target
            .plan_state(&p.state)
            .unwrap_or_else(|e| panic!("{}: {e}", p.name));
        assert_eq!(plan.len(), p.state.params.len());
        assert!(
            presets::same_state(&before, &target.to_state()),
            "plan changed {}",
            p.name
        );
        // Setting the plan's values (as the editor does through the host)
        // recalls the preset exactly.
        for (ptr, normalized) in &plan {
            // SAFETY: the plan points into `target`, alive here.
            unsafe { ptr._internal_set_normalized_value(*normalized) };
        }
        assert!(
            presets::same_state(&target.to_state(), &p.state),
            "{}",
            p.name
        );

        // File round trip: bit-exact.
        let path = dir.path().join(presets::file_name_for(&p.name));
        presets::save_user(&path, &p).unwrap();
        let back = presets::load_user(&path).unwrap();
        assert_eq!(back.name, p.name);
        assert_eq!(back.description, p.description);
        assert!(presets::same_state(&back.state, &p.state), "{}", p.name);
        // And saving what was loaded writes the same bytes.
        let again = dir.path().join("again.json");
        presets::save_user(&again, &back).unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            std::fs::read(&again).unwrap()
        );
    }
}

#[test]
fn every_factory_preset_renders_finite_audio() {
    let demo = demo_signal(SR);
    // The tone, the sweep's start and the chord's attack: 3 s of the demo.
    let input: Vec<Vec<f32>> = demo
        .iter()
        .map(|c| c.iter().step_by(2).copied().collect())
        .collect();
    for p in presets::factory() {
        let params = params_for(&p, &[]);
        let (out, report) = render(&params, None, &input, SR, 512, |_| {});
        assert_eq!(out.len(), 2);
        assert!(
            out.iter().flatten().all(|v| v.is_finite()),
            "{}: non-finite output",
            p.name
        );
        assert!(report.rms_out_dbfs.is_finite(), "{}: silent", p.name);
    }
}

// ------------------------------------------- presets do what they say --

#[test]
fn clean_reference_is_an_exact_identity() {
    let p = factory("Clean solid-state reference");
    let x = tones(&[(1000.0, 0.5), (97.0, 0.25)], 1.0);
    let y = render_mono(&p, &[], &x);
    assert_eq!(x, y, "every stage out must pass the track unchanged");
}

/// Measure, with `preset` against the same preset with an ideal (0 ohm)
/// amp, the level change at `f_lo` and `f_hi`, and compare both with the
/// divider computed from the model's impedance.
fn check_headphone_divider(
    name: &str,
    model: HeadphoneModel,
    zo: f64,
    f_lo: f64,
    f_hi: f64,
) -> f64 {
    let p = factory(name);
    let x = tones(&[(f_lo, 0.05), (f_hi, 0.05)], 2.0);
    let real = last_second_spectrum(&render_mono(&p, &[], &x));
    let ideal = last_second_spectrum(&render_mono(&p, &[("amp_z", "0")], &x));
    let mut measured = [0.0; 2];
    for (k, f) in [f_lo, f_hi].into_iter().enumerate() {
        let bin = f as usize;
        measured[k] = db(real[bin] / ideal[bin]);
        let expected = divider_db(model, zo, f);
        assert!(
            (measured[k] - expected).abs() < 0.1,
            "{name}: {f} Hz changes by {:.2} dB, the divider says {expected:.2} dB",
            measured[k]
        );
    }
    // The response deviation between the two frequencies.
    measured[0] - measured[1]
}

#[test]
fn preamp_line_out_into_32_ohm_loses_level_and_lifts_the_bass() {
    // 70 Hz is the closed-back's resonance (its impedance peak).
    let m = HeadphoneModel::Closed32;
    let tilt = check_headphone_divider(
        "Preamp line out driving 32 ohm cans (don't)",
        m,
        600.0,
        70.0,
        1000.0,
    );
    // Independently: Z(70 Hz) ≈ 50 ohm, Z(1 kHz) ≈ 32 ohm: 50/650 vs 32/632.
    let expected = divider_db(m, 600.0, 70.0) - divider_db(m, 600.0, 1000.0);
    assert!(expected > 3.0, "{expected}");
    assert!((tilt - expected).abs() < 0.15, "{tilt} vs {expected}");
    // "Most of the level is lost": more than 20 dB at 1 kHz.
    assert!(divider_db(m, 600.0, 1000.0) < -20.0);
}

#[test]
fn iem_on_10_ohm_lifts_the_top_octave_by_several_db() {
    let m = HeadphoneModel::Iem;
    let tilt = check_headphone_divider("IEM on a 10 ohm headphone out", m, 10.0, 200.0, 12_000.0);
    assert!(
        -tilt > 3.0,
        "the treble should rise by several dB, got {:.2}",
        -tilt
    );
}

#[test]
fn interface_out_into_300_ohm_stays_flat() {
    let m = HeadphoneModel::Open300;
    let tilt = check_headphone_divider(
        "Interface headphone out -> 300 ohm open-back",
        m,
        10.0,
        90.0,
        1000.0,
    );
    assert!(tilt.abs() < 0.3, "{tilt}");
}

#[test]
fn iec_120_ohm_into_80_ohm_lifts_the_bass_by_almost_4_db() {
    let m = HeadphoneModel::Dynamic80;
    let tilt = check_headphone_divider(
        "IEC 120 ohm out into 80 ohm closed-backs",
        m,
        120.0,
        85.0,
        1000.0,
    );
    // Z(85 Hz) ≈ Re + Res = 200 ohm, Z(1 kHz) ≈ 80 ohm: 200/320 against
    // 80/200 is 20·log10(0.625/0.4) = 3.9 dB.
    assert!(tilt > 3.5 && tilt < 4.0, "{tilt}");
}

#[test]
fn keyboard_through_the_di_drops_by_the_turns_ratio() {
    let p = factory("Keyboard line out -> passive DI -> mic pre");
    // The DI alone (preamp out): 12:1 is 20·log10(1/12) = −21.58 dB; a
    // 1 kohm source into the DI's ~150 kohm input costs well under 0.1 dB.
    let x = tones(&[(1000.0, 0.125)], 1.5);
    let y = last_second_spectrum(&render_mono(&p, &[("pre_on", "off")], &x));
    let xs = last_second_spectrum(&x);
    let gain = db(y[1000] / xs[1000]);
    let expected = db(1.0 / 12.0);
    assert!((gain - expected).abs() < 0.1, "{gain} vs {expected}");
}

#[test]
fn ground_loop_preset_hums_at_the_mains_frequency() {
    let p = factory("Ground loop hum (lift off)");
    let silence = vec![0.0f32; 2 * SR as usize];
    // At the DI output (preamp out): −65 dBu rms in total, mostly at 50 Hz
    // and its harmonics. Under "0 dBFS = +18 dBu" a sample rms r is
    // 18 + 20·log10(r·√2) dBu.
    let y = render_mono(&p, &[("pre_on", "off")], &silence);
    let tail = &y[y.len() - SR as usize..];
    let dbu = 18.0 + rms_db(tail) + db(2f64.sqrt());
    assert!((dbu - -65.0).abs() < 1.0, "hum at {dbu:.1} dBu");
    let s = spectrum(tail);
    let mains: f64 = (1..=15).map(|k| s[50 * k].powi(2)).sum::<f64>();
    let all: f64 = s.iter().map(|v| v * v).sum::<f64>();
    assert!(
        mains / all > 0.99,
        "hum energy not at 50 Hz harmonics: {}",
        mains / all
    );
    assert!(s[50] > 0.0);
    // Through the whole preset, 50 Hz is the strongest line; with the lift
    // on, nothing at all.
    let y = render_mono(&p, &[], &silence);
    let s = last_second_spectrum(&y);
    let loudest = (1..s.len()).max_by(|&a, &b| s[a].total_cmp(&s[b])).unwrap();
    assert_eq!(loudest % 50, 0, "loudest line at {loudest} Hz");
    let y = render_mono(&p, &[("di_lift", "on")], &silence);
    assert!(y.iter().all(|&v| v == 0.0), "hum with the lift on");
}

#[test]
fn broadcast_high_pass_is_a_120_hz_butterworth() {
    let p = factory("Broadcast voice with HPF 120");
    let x = tones(&[(50.0, 0.1), (1000.0, 0.1)], 3.0);
    let with = last_second_spectrum(&render_mono(&p, &[], &x));
    let without = last_second_spectrum(&render_mono(&p, &[("hpf", "off")], &x));
    // Second-order Butterworth: |H|² = r⁴/(1 + r⁴), r = f/fc.
    let hpf_db = |f: f64| {
        let r4 = (f / 120.0f64).powi(4);
        10.0 * (r4 / (1.0 + r4)).log10()
    };
    let measured = db(with[50] / with[1000]) - db(without[50] / without[1000]);
    let expected = hpf_db(50.0) - hpf_db(1000.0);
    assert!(
        (measured - expected).abs() < 0.3,
        "{measured:.2} vs {expected:.2}"
    );
}

/// THD (ratio) and H2, H3 (dBc) of an `f` Hz sine at −18 dBFS rms through
/// the preset (with `overrides`), measured over the last of three seconds.
fn thd_of(preset: &Preset, overrides: &[(&str, &str)], f: f64) -> (f64, f64, f64) {
    // −18 dBFS rms sine: peak 10^(−18/20)·√2.
    let amp = 10f64.powf(-18.0 / 20.0) * 2f64.sqrt();
    let y = render_mono(preset, overrides, &tones(&[(f, amp)], 3.0));
    let tail = &y[y.len() - SR as usize..];
    let s = spectrum(tail);
    let b = f as usize;
    (thd(tail, b), db(s[2 * b] / s[b]), db(s[3 * b] / s[b]))
}

#[test]
fn warm_vocal_is_gentle_and_second_harmonic_dominant() {
    let (thd, h2, h3) = thd_of(&factory("Warm 60s tube vocal"), &[], 1000.0);
    assert!(thd > 0.001 && thd < 0.05, "THD {:.3} %", thd * 100.0);
    assert!(h2 > h3, "H2 {h2:.1} dBc should dominate H3 {h3:.1} dBc");
}

#[test]
fn broadcast_voice_stays_clean() {
    // −54 dBu at the mic input, 30 dB: 69 mV peak at a 12AT7's grid, far
    // from conduction; the second stage gets the plate swing −30 dB.
    let (thd, _, _) = thd_of(&factory("Broadcast voice with HPF 120"), &[], 1000.0);
    assert!(thd < 0.01, "THD {:.3} %", thd * 100.0);
}

#[test]
fn dirty_and_pushed_presets_drive_the_grid_into_conduction() {
    // Dirty but quiet: a −18 dBFS tone stands for −54 dBu at the mic input
    // (mic source: 54 dB under a +4 dBu line at −14 dBFS), 2.18 mV peak; at
    // 56 dB of Gain that is 1.38 V peak at the first grid, past the ~1.2 V
    // where a 12AX7 at −1.2 V bias conducts (docs/DESIGN.md, § Tube preamp). A single reference
    // stage already gives 6.3 % THD at 1.0 V peak.
    let dirty = thd_of(&factory("Dirty but quiet"), &[], 1000.0).0;
    assert!(dirty > 0.03, "THD {:.2} %", dirty * 100.0);
    // Pushed bass: −24 dBu from the pickup, −21.6 dB through the DI, 48 dB:
    // ≈ 1.8 V peak at the grid.
    let pushed = thd_of(&factory("Pushed tube bass"), &[], 100.0).0;
    assert!(pushed > 0.03, "THD {:.2} %", pushed * 100.0);
    let warm = thd_of(&factory("Warm 60s tube vocal"), &[], 1000.0).0;
    assert!(dirty > 2.0 * warm && pushed > 2.0 * warm);
}

#[test]
fn the_pad_keeps_a_hot_line_out_of_overload() {
    let p = factory("Hot line into a mic input (pad it)");
    let padded = thd_of(&p, &[], 1000.0).0;
    let unpadded = thd_of(&p, &[("pad", "off")], 1000.0).0;
    // 20 dB less drive at the grid; the distortion falls at least as fast as
    // the level (H2 ∝ amplitude for a triode below conduction).
    assert!(padded * 5.0 < unpadded, "pad {padded} vs none {unpadded}");
}

// ------------------------------------------------------------ files --

fn saved_json(p: &Preset) -> String {
    presets::to_json(p)
}

fn load_text(dir: &Path, name: &str, text: &[u8]) -> Result<Preset, presets::PresetError> {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    presets::load_user(&path)
}

#[test]
fn malformed_files_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = saved_json(&factory("Warm 60s tube vocal"));

    // Truncated.
    let e = load_text(d, "cut.json", &good.as_bytes()[..good.len() / 2]).unwrap_err();
    assert!(
        e.to_string().contains("truncated") && e.to_string().contains("cut.json"),
        "{e}"
    );
    // Not JSON.
    let e = load_text(d, "x.json", b"hello").unwrap_err();
    assert!(e.to_string().contains("not a Tubeline preset"), "{e}");
    // JSON but not an object, or an object of something else.
    let e = load_text(d, "x.json", b"[1, 2]").unwrap_err();
    assert!(e.to_string().contains("a list"), "{e}");
    let e = load_text(d, "x.json", br#"{"colour": "blue"}"#).unwrap_err();
    assert!(e.to_string().contains("not a Tubeline preset"), "{e}");
    // Wrong types: a string where a number goes, a name that is a number.
    let bad = good.replacen("\"f32\": 30.0", "\"f32\": \"loud\"", 1);
    assert_ne!(bad, good, "the fixture must contain the gain");
    let e = load_text(d, "x.json", bad.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("line"), "{e}");
    let bad = good.replacen("\"name\": \"Warm 60s tube vocal\"", "\"name\": 7", 1);
    let e = load_text(d, "x.json", bad.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("wrong type"), "{e}");
    let bad = good.replacen(
        "\"gain\": {\n        \"f32\"",
        "\"gain\": {\n        \"bool\"",
        1,
    );
    assert_ne!(bad, good);
    let e = load_text(d, "x.json", bad.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("expected a boolean"), "{e}");
    let bad = good.replacen("\"f32\": 30.0", "\"bool\": true", 1);
    let e = load_text(d, "x.json", bad.as_bytes()).unwrap_err();
    assert!(
        e.to_string().contains("\"gain\"") && e.to_string().contains("expected a number"),
        "{e}"
    );
    // Unknown ID.
    let bad = good.replacen("\"gain\":", "\"gian\":", 1);
    let e = load_text(d, "x.json", bad.as_bytes()).unwrap_err();
    assert!(
        e.to_string().contains("unknown parameter ID \"gian\""),
        "{e}"
    );
    // Out of range, and a choice that does not exist.
    let bad = good.replacen("\"f32\": 30.0", "\"f32\": 95.0", 1);
    let e = load_text(d, "x.json", bad.as_bytes()).unwrap_err();
    assert!(
        e.to_string().contains("\"gain\" = 95") && e.to_string().contains("60"),
        "{e}"
    );
    let bad = good.replacen("\"string\": \"12ax7\"", "\"string\": \"6L6\"", 1);
    assert_ne!(bad, good);
    let e = load_text(d, "x.json", bad.as_bytes()).unwrap_err();
    assert!(
        e.to_string().contains("6L6") && e.to_string().contains("12AT7"),
        "{e}"
    );
    // A newer format.
    let bad = good.replacen("\"tubeline_preset\": 1", "\"tubeline_preset\": 7", 1);
    let e = load_text(d, "x.json", bad.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("newer"), "{e}");
    // Missing file.
    let e = presets::load_user(&d.join("nope.json")).unwrap_err();
    assert!(e.to_string().contains("nope.json"), "{e}");
}

#[test]
fn bare_and_host_states_load_too() {
    let dir = tempfile::tempdir().unwrap();
    let p = factory("Dirty but quiet");
    let json = serde_json::to_vec(&p.state).unwrap();
    let bare = load_text(dir.path(), "my sound.json", &json).unwrap();
    assert_eq!(bare.name, "my sound");
    assert!(presets::same_state(&bare.state, &p.state));
    // A host's CLAP state: u64 LE length, then the JSON.
    let mut clap = (json.len() as u64).to_le_bytes().to_vec();
    clap.extend_from_slice(&json);
    let host = load_text(dir.path(), "host.json", &clap).unwrap();
    assert!(presets::same_state(&host.state, &p.state));
}

#[test]
fn a_failed_save_leaves_the_existing_file_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mine.json");
    let good = factory("Warm 60s tube vocal");
    presets::save_user(&path, &good).unwrap();
    let before = std::fs::read(&path).unwrap();

    // A state that would not load again is refused before anything is written.
    let mut bad = good.clone();
    bad.state.params.insert(
        "gain".to_string(),
        nice_plug::plugin::ParamValue::F32(f32::NAN),
    );
    let e = presets::save_user(&path, &bad).unwrap_err();
    assert!(e.to_string().contains("gain"), "{e}");
    assert_eq!(std::fs::read(&path).unwrap(), before);

    // A target that cannot be replaced (a folder) fails cleanly: the folder
    // is untouched and no temporary file is left behind.
    let folder = dir.path().join("folder.json");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("inside"), b"keep").unwrap();
    let e = presets::save_user(&folder, &good).unwrap_err();
    assert!(e.to_string().contains("folder.json"), "{e}");
    assert_eq!(std::fs::read(folder.join("inside")).unwrap(), b"keep");
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains("tmp")), "{names:?}");

    // A good save replaces the file.
    let other = factory("Dirty but quiet");
    presets::save_user(&path, &other).unwrap();
    assert_eq!(presets::load_user(&path).unwrap().name, "Dirty but quiet");
}

#[test]
fn user_folder_lists_json_files_sorted_with_their_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    presets::save_user(&d.join("b.json"), &factory("Dirty but quiet")).unwrap();
    presets::save_user(&d.join("a.JSON"), &factory("Warm 60s tube vocal")).unwrap();
    std::fs::write(d.join("c.json"), b"{").unwrap();
    std::fs::write(d.join("notes.txt"), b"not a preset").unwrap();
    std::fs::create_dir(d.join("sub.json")).unwrap();
    let list = presets::list_user(d);
    let names: Vec<String> = list
        .iter()
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["a.JSON", "b.json", "c.json"]);
    assert_eq!(list[0].1.as_ref().unwrap().name, "Warm 60s tube vocal");
    assert!(list[2].1.is_err());
    assert!(presets::list_user(&d.join("missing")).is_empty());
}

// ---------------------------------------------------------- renderer --

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tubeline-render"))
}

#[test]
fn renderer_lists_and_loads_factory_presets_by_name() {
    let out = bin().arg("--list-presets").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for p in presets::factory() {
        assert!(
            text.contains(&p.name),
            "{} missing from --list-presets",
            p.name
        );
        assert!(text.contains(&p.description[..30]));
    }

    // A factory name (loosely typed) renders exactly like the same preset
    // saved as a file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("warm.json");
    presets::save_user(&file, &factory("Warm 60s tube vocal")).unwrap();
    let by_name = dir.path().join("by-name.wav");
    let by_file = dir.path().join("by-file.wav");
    for (preset, out) in [
        ("warm 60S tube-vocal", &by_name),
        (file.to_str().unwrap(), &by_file),
    ] {
        let o = bin()
            .args([
                "--demo",
                out.to_str().unwrap(),
                "--demo-rate",
                "22050",
                "--preset",
                preset,
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(
        std::fs::read(&by_name).unwrap(),
        std::fs::read(&by_file).unwrap()
    );
    // And differs from the defaults (the preset did something).
    let plain = dir.path().join("plain.wav");
    assert!(bin()
        .args(["--demo", plain.to_str().unwrap(), "--demo-rate", "22050"])
        .status()
        .unwrap()
        .success());
    assert_ne!(
        std::fs::read(&plain).unwrap(),
        std::fs::read(&by_name).unwrap()
    );

    // An unknown name lists the factory names.
    let o = bin()
        .args([
            "--demo",
            plain.to_str().unwrap(),
            "--preset",
            "Warm 70s tube vocal",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("no factory preset") && e.contains("Warm 60s tube vocal"),
        "{e}"
    );
    // A broken file names the file and the problem.
    let broken = dir.path().join("broken.json");
    std::fs::write(
        &broken,
        b"{\"tubeline_preset\": 1, \"name\": \"x\", \"state\": {",
    )
    .unwrap();
    let o = bin()
        .args([
            "--demo",
            plain.to_str().unwrap(),
            "--preset",
            broken.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && e.contains("broken.json") && e.contains("truncated"),
        "{e}"
    );
}

#[test]
fn plan_state_names_the_parameter_and_changes_nothing_on_error() {
    let p = TubelineParams::default();
    p.set_from_text("level", "-33").unwrap();
    let before = p.to_state();
    let mut state = factory("Dirty but quiet").state;
    state.params.insert(
        "amp_z".to_string(),
        nice_plug::plugin::ParamValue::F32(-5.0),
    );
    let e = p.plan_state(&state).unwrap_err();
    assert!(e.to_string().contains("amp_z"), "{e}");
    assert!(p.apply_state(&state).is_err());
    assert!(presets::same_state(&before, &p.to_state()));
    assert_eq!(p.preamp.level.value(), -33.0);
}

// ----------------------------------------------- advice on real meters --

/// The advice for `preset` after 2 s of a −18 dBFS rms 1 kHz tone through
/// a metering chain (the meters cover the last second).
fn advice_after_tone(preset: &Preset) -> Vec<tubeline::advice::Advice> {
    use tubeline::dsp::chain::Chain;
    let settings = params_for(preset, &[]).snapshot(false);
    let mut chain = Chain::new();
    chain.set_settings(settings);
    chain.prepare(SR, 1);
    chain.set_metering(true);
    let amp = 10f64.powf(-18.0 / 20.0) * 2f64.sqrt();
    let x = tones(&[(1000.0, amp)], 2.0);
    let half = x.len() / 2;
    let _ = process_with(&mut chain, &[x[..half].to_vec()], 512);
    let _ = chain.take_meters();
    let _ = process_with(&mut chain, &[x[half..].to_vec()], 512);
    let m = chain.take_meters();
    tubeline::advice::advise(&settings, Some(&m))
}

#[test]
fn advice_on_real_meters_matches_the_presets_intent() {
    let texts = |a: &[tubeline::advice::Advice]| {
        a.iter()
            .map(|a| a.text.clone())
            .collect::<Vec<_>>()
            .join(" | ")
    };
    // Dirty but quiet drives the first grid past conduction (1.38 V peak of
    // drive against a −1.2 V bias): the advice says so.
    let a = advice_after_tone(&factory("Dirty but quiet"));
    assert!(
        a.iter()
            .any(|a| a.text.starts_with("Preamp clipping before the tube")),
        "{}",
        texts(&a)
    );
    // So does Pushed tube bass (≈ 1.8 V of drive at the first grid).
    let a = advice_after_tone(&factory("Pushed tube bass"));
    assert!(
        a.iter()
            .any(|a| a.text.starts_with("Preamp clipping before the tube")),
        "{}",
        texts(&a)
    );
    // The clean and the padded presets get no clipping advice, and the pad
    // answers the line-into-mic rule.
    for name in ["Warm 60s tube vocal", "Hot line into a mic input (pad it)"] {
        let a = advice_after_tone(&factory(name));
        assert!(
            !a.iter()
                .any(|a| a.text.contains("clipping") || a.text.contains("Line level")),
            "{name}: {}",
            texts(&a)
        );
    }
    // Without the pad, the line-level rule and the clipping rule both fire.
    let unpadded = params_for(
        &factory("Hot line into a mic input (pad it)"),
        &[("pad", "off")],
    );
    let a = tubeline::advice::advise(&unpadded.snapshot(false), None);
    assert!(
        a.iter()
            .any(|a| a.text.starts_with("Line level into a mic input")),
        "{}",
        texts(&a)
    );
    // The "don't" preset and the ground-loop preset explain themselves.
    let a = advice_after_tone(&factory("Preamp line out driving 32 ohm cans (don't)"));
    assert!(
        a.iter().any(|a| a.text.contains("line output")),
        "{}",
        texts(&a)
    );
    // The mic-loading presets: the ribbon on 1.2 kohm is warned about,
    // the one on 10 kohm is not; the dynamic on 300 ohm gets its note.
    let a = advice_after_tone(&factory("Ribbon on a 1.2 kohm interface input"));
    assert!(
        a.iter()
            .any(|a| a.text.starts_with("A ribbon on a 1200 ohm input")),
        "{}",
        texts(&a)
    );
    let a = advice_after_tone(&factory("Ribbon on a 10 kohm input"));
    assert!(
        !a.iter().any(|a| a.text.contains("ribbon")),
        "{}",
        texts(&a)
    );
    let a = advice_after_tone(&factory("Dynamic mic on a 300 ohm input"));
    assert!(
        a.iter()
            .any(|a| a.text.starts_with("A dynamic on a 300 ohm input")),
        "{}",
        texts(&a)
    );
    let a = advice_after_tone(&factory("Ground loop hum (lift off)"));
    assert!(
        a.iter().any(|a| a.text.contains("Ground lift is off")),
        "{}",
        texts(&a)
    );
}

#[test]
fn a_preset_with_a_corrupt_measured_curve_is_refused_and_changes_nothing() {
    let params = TubelineParams::default();
    params.set_from_text("hp_model", "custom").unwrap();
    let mut state = params.to_state();
    // 10 points, the fourth with a negative |Z|.
    let points: Vec<String> = (0..10)
        .map(|i| {
            let ohms = if i == 3 { -32 } else { 32 };
            format!("[{},{ohms},0]", 20 * (i + 1))
        })
        .collect();
    state.fields.insert(
        "hp_curve".into(),
        format!(r#"{{"file":"cans.csv","points":[{}]}}"#, points.join(",")),
    );
    let json = serde_json::to_string(&state).unwrap();
    let e = presets::parse(json.as_bytes(), "bad", "bad.json").unwrap_err();
    assert!(
        e.message().contains("hp_curve") && e.message().contains("point 4"),
        "{e}"
    );
    // Applying it changes no parameter.
    let target = TubelineParams::default();
    assert!(target.apply_state(&state).is_err());
    assert!(
        presets::same_state(&target.to_state(), &TubelineParams::default().to_state()),
        "a refused preset changed the parameters"
    );
    // The same preset with sound points loads.
    state.fields.insert(
        "hp_curve".into(),
        format!(
            r#"{{"file":"cans.csv","points":[{}]}}"#,
            points.join(",").replace("-32", "32")
        ),
    );
    let json = serde_json::to_string(&state).unwrap();
    assert!(presets::parse(json.as_bytes(), "good", "good.json").is_ok());
}
