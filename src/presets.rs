//! Presets: the factory list, named after real gain-staging scenarios, and
//! user preset files.
//!
//! # File format
//!
//! A preset file is JSON in one of two shapes, and both load everywhere (the
//! editor, `tubeline-render --preset FILE`):
//!
//! 1. **Wrapped** (what [`save_user`] writes): the plugin's own state with a
//!    name and a description around it,
//!
//!    ```json
//!    { "tubeline_preset": 1,
//!      "name": "Warm 60s tube vocal",
//!      "description": "A vocal mic into ...",
//!      "state": { "version": "0.1.0", "params": { "gain": { "f32": 30.0 }, ... }, "fields": { ... } } }
//!    ```
//!
//!    `tubeline_preset` is the format version (this build reads 1); a file
//!    from a newer format is refused with a message saying so rather than
//!    half-loaded. `description` may be left out.
//! 2. **Bare state**: exactly the `PluginState` JSON the plugin saves
//!    (`{"version", "params", "fields"}`), or a host's saved CLAP state of the
//!    plugin (the same JSON behind an 8-byte little-endian length). Its name
//!    is the file name without `.json`, its description empty.
//!
//! `state.params` holds plain (unnormalized) values keyed by the stable
//! parameter IDs (README "Parameters"), so a file stays valid when ranges'
//! defaults change, and a partial `params` map changes only the parameters it
//! names. Loading validates every entry with
//! [`TubelineParams::plan_state`] before anything is used, so an unknown ID,
//! a wrong type, an out-of-range or non-finite value is reported with the
//! parameter's ID and what would fit, and nothing is half-applied.
//!
//! # Where user presets live
//!
//! [`user_dir`]: `$XDG_CONFIG_HOME/tubeline/presets`, or
//! `~/.config/tubeline/presets` when `XDG_CONFIG_HOME` is unset or relative
//! (the XDG base-directory rule). [`save_user`] writes a temporary file in the
//! target directory and renames it over the target, so a failed save never
//! leaves a half-written preset or destroys the previous one.
//!
//! # Factory presets
//!
//! Each is `TubelineParams::default()` plus a few `set_from_text(id, value)`
//! pairs, turned into a state with `to_state()`: the full state (every
//! parameter), so recalling one resets what the scenario does not mention.
//! Building from the defaults keeps them valid when the defaults change;
//! `tests/presets.rs` checks that each one loads and does what its name says.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use nice_plug::plugin::ParamValue;
use nice_plug::prelude::PluginState;
use serde::{Deserialize, Serialize};

use crate::params::TubelineParams;

/// The preset file format this build writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;

/// A named, described plugin state.
#[derive(Debug, Clone)]
pub struct Preset {
    /// Short name, shown in the preset menu; also the user file's stem.
    pub name: String,
    /// One or two sentences in plain words: the scenario and what to listen for.
    pub description: String,
    /// The plugin state it recalls (the format hosts save).
    pub state: PluginState,
}

impl Preset {
    /// A preset of the parameters' current values (what "Save preset" stores).
    pub fn from_params(name: &str, description: &str, params: &TubelineParams) -> Self {
        Preset {
            name: name.to_string(),
            description: description.to_string(),
            state: params.to_state(),
        }
    }
}

/// A preset file could not be read, parsed, validated or written. The message
/// names the file and says what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresetError(pub String);

impl PresetError {
    /// The message for a person.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PresetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PresetError {}

/// The wrapped file shape (see the module header).
#[derive(Serialize, Deserialize)]
struct WrappedPreset {
    tubeline_preset: u32,
    name: String,
    #[serde(default)]
    description: String,
    state: PluginState,
}

/// The factory presets, in menu order (at least 12; names are unique).
pub fn factory() -> Vec<Preset> {
    FACTORY
        .iter()
        .map(|(name, description, settings)| build(name, description, settings))
        .collect()
}

/// The factory preset whose name matches `name` ignoring case, spaces and
/// punctuation ("warm 60s tube-vocal" finds "Warm 60s tube vocal").
pub fn find_factory(name: &str) -> Option<Preset> {
    let wanted = simplify(name);
    FACTORY
        .iter()
        .find(|(n, _, _)| simplify(n) == wanted)
        .map(|(name, description, settings)| build(name, description, settings))
}

/// The factory presets' names, in menu order.
pub fn factory_names() -> Vec<&'static str> {
    FACTORY.iter().map(|(n, _, _)| *n).collect()
}

/// (name, description, settings as (parameter ID, value as typed)).
type FactoryEntry = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

/// The factory list. Values are plain text as `--set` takes them.
const FACTORY: &[FactoryEntry] = &[
    (
        "Clean solid-state reference",
        "Every stage switched out: the chain is an exact identity, like a clean \
         solid-state path. Compare against it, or switch in one stage at a time from here.",
        &[
            ("source", "pro_line"),
            ("pre_on", "off"),
            ("di_on", "off"),
            ("hp_on", "off"),
        ],
    ),
    (
        "Warm 60s tube vocal",
        "A vocal mic into a two-stage 12AX7 preamp with enough Gain for a gentle second \
         harmonic; the 80 Hz high-pass takes out handling noise. Auto-gain keeps the \
         loudness, so you hear the colour, not the level.",
        &[
            ("source", "mic"),
            ("pre_on", "on"),
            ("gain", "30"),
            ("level", "-26"),
            ("tube", "12ax7"),
            ("bias", "0.2"),
            ("hpf", "80 Hz"),
            ("auto_gain", "on"),
        ],
    ),
    (
        "Dynamic mic on a 300 ohm input",
        "An SM57-class dynamic on a 300 ohm input (an old console's, or a step-up \
         transformer's low setting): the coil's impedance, 303 ohm at 1 kHz and rising \
         towards 590 ohm at the top, against the input's 300 ohm takes 5.7 dB at 1 kHz \
         and more of the treble, and its 150 Hz resonance shows: the response spans \
         6.1 dB. Auto Gain is off, so you hear the level lost too. Set Input Impedance \
         to 2.4 kohm to compare (0.9 dB down, a 1.4 dB span).",
        &[
            ("source", "mic"),
            ("mic", "dynamic"),
            ("in_z", "300"),
            ("pre_on", "on"),
            ("gain", "40"),
            ("level", "-20"),
            ("auto_gain", "off"),
        ],
    ),
    (
        "Ribbon on a 1.2 kohm interface input",
        "A passive ribbon (rated 300 ohm, a 1 kohm peak at its 30 Hz resonance) on the \
         1.2 kohm input of a typical interface, only 4x its impedance: 1.9 dB down at \
         1 kHz, the bass under the resonance and the top thinned, a 3.5 dB span. A \
         ribbon wants 5x or more: load 'Ribbon on a 10 kohm input' to hear it open up.",
        &[
            ("source", "mic"),
            ("mic", "ribbon"),
            ("in_z", "1200"),
            ("pre_on", "on"),
            ("gain", "50"),
            ("level", "-20"),
            ("auto_gain", "on"),
        ],
    ),
    (
        "Ribbon on a 10 kohm input",
        "The same ribbon on a 10 kohm input, as a ribbon preamp gives it: 0.3 dB down at \
         1 kHz and a 0.6 dB span, the full bass of its resonance and an open top. \
         Compare with 'Ribbon on a 1.2 kohm interface input'.",
        &[
            ("source", "mic"),
            ("mic", "ribbon"),
            ("in_z", "10000"),
            ("pre_on", "on"),
            ("gain", "50"),
            ("level", "-20"),
            ("auto_gain", "on"),
        ],
    ),
    (
        "Tube against solid-state at the same gain",
        "The same vocal mic, Gain and Level into the clean op-amp pre of an interface \
         (THAT 1510 class, clipping at +21.7 dBu) instead of the two triodes: switch \
         Preamp Type between Solid-state and Tube to hear what the tubes add. Both play \
         at the same level at these settings, and Auto Gain keeps them matched, so the \
         difference is character, not loudness.",
        &[
            ("source", "mic"),
            ("pre_on", "on"),
            ("pre_type", "solid_state"),
            ("gain", "40"),
            ("level", "-20"),
            ("hpf", "80 Hz"),
            ("auto_gain", "on"),
        ],
    ),
    (
        "Pushed tube bass",
        "A passive bass through a DI into the preamp with the Gain high: the first grid \
         conducts on the peaks, its coupling capacitor charges and the tone thickens and \
         breathes. Auto-gain keeps the loudness.",
        &[
            ("source", "instrument"),
            ("di_on", "on"),
            ("di_source", "pickup"),
            ("pre_on", "on"),
            ("gain", "48"),
            ("level", "-24"),
            ("bias", "0.3"),
            ("auto_gain", "on"),
        ],
    ),
    (
        "Keyboard line out -> passive DI -> mic pre",
        "A keyboard's line out into a passive 12:1 DI: the transformer drops the line \
         level by 21.6 dB, to about mic level, so the mic preamp's Gain works in its \
         normal range. The usual way to get a line source into a stage box.",
        &[
            ("source", "pro_line"),
            ("di_on", "on"),
            ("di_source", "keyboard"),
            ("di_ratio", "12:1"),
            ("pre_on", "on"),
            ("gain", "8"),
            ("level", "-26"),
        ],
    ),
    (
        "Interface headphone out -> 300 ohm open-back",
        "An interface's headphone jack (about 10 ohm) driving 300 ohm open-backs: far \
         below 1/8 of the load, so the response stays within a few tenths of a dB; \
         high-impedance cans only ask for more voltage.",
        &[
            ("source", "pro_line"),
            ("pre_on", "off"),
            ("hp_on", "on"),
            ("amp_z", "10"),
            ("hp_model", "open300"),
        ],
    ),
    (
        "Preamp line out driving 32 ohm cans (don't)",
        "A preamp's line output (about 600 ohm) pressed into headphone duty with 32 ohm \
         closed-backs: most of the level is lost in the output impedance and the bass \
         resonance sticks out. This is why a preamp can't drive headphones: use a \
         headphone amp.",
        &[
            ("source", "mic"),
            ("pre_on", "on"),
            ("hp_on", "on"),
            ("amp_z", "600"),
            ("hp_model", "closed32"),
            ("hp_norm", "off"),
        ],
    ),
    (
        "Dirty but quiet",
        "Gain up, Level down: the first tube is driven into grid current while the \
         second stage and the output stay at a sane level. The distortion of a cranked \
         preamp at a level you can record.",
        &[
            ("source", "mic"),
            ("pre_on", "on"),
            ("gain", "56"),
            ("level", "-44"),
            ("auto_gain", "on"),
        ],
    ),
    (
        "Acoustic guitar pickup -> DI",
        "A passive acoustic pickup into a passive DI: the pickup's inductance and the \
         capacitance of its winding and its 3 m cable resonate near 5 kHz against the \
         DI's input impedance. An active DI loads a pickup less; for line sources \
         passive is fine.",
        &[
            ("source", "instrument"),
            ("di_on", "on"),
            ("di_source", "pickup"),
            ("pre_on", "on"),
            ("gain", "30"),
            ("level", "-30"),
            ("hpf", "80 Hz"),
        ],
    ),
    (
        "Guitar through 10 m of cable -> DI",
        "A passive guitar pickup on a 10 m lead into a passive DI: the cable's 1 nF \
         (100 pF per metre) pulls the pickup's resonance from about 4.9 kHz on a 3 m \
         lead down to 3.0 kHz, the softer, darker top of a long cable. Set Cable to 3 m \
         to compare; a short lead or an active DI keeps the sparkle.",
        &[
            ("source", "instrument"),
            ("di_on", "on"),
            ("di_source", "pickup"),
            ("cable_m", "10"),
            ("pre_on", "on"),
            ("gain", "30"),
            ("level", "-30"),
            ("hpf", "80 Hz"),
        ],
    ),
    (
        "Ground loop hum (lift off)",
        "An interface line out into a DI with the ground lift off: a ground loop through \
         the cable shield adds mains hum and its buzz harmonics (about -65 dBu). Switch \
         Ground Lift on to hear it go.",
        &[
            ("source", "pro_line"),
            ("di_on", "on"),
            ("di_source", "line_out"),
            ("di_lift", "off"),
            ("mains_hz", "50 Hz"),
            ("pre_on", "on"),
            ("gain", "8"),
            ("level", "-26"),
        ],
    ),
    (
        "IEM on a 10 ohm headphone out",
        "Multi-driver in-ear monitors, whose impedance rises from 8 ohm in the bass to \
         about 40 ohm in the treble, on a 10 ohm headphone jack: the top octave comes up \
         by several dB. IEMs want an output impedance below 1 ohm.",
        &[
            ("source", "pro_line"),
            ("pre_on", "off"),
            ("hp_on", "on"),
            ("amp_z", "10"),
            ("hp_model", "iem"),
            ("amp_vol", "-12"),
        ],
    ),
    (
        "Hot line into a mic input (pad it)",
        "A +4 dBu line plugged straight into a mic input, with the -20 dB pad in and \
         the Gain near minimum so the first tube is not overloaded. Switch the pad out \
         to hear why it is there.",
        &[
            ("source", "pro_line"),
            ("di_on", "off"),
            ("pre_on", "on"),
            ("pad", "on"),
            ("gain", "6"),
            ("level", "-30"),
        ],
    ),
    (
        "Broadcast voice with HPF 120",
        "A speech mic, kept clean, with the 120 Hz high-pass cutting rumble and \
         proximity boom, and a 12AT7 (less gain, more headroom) in both stages.",
        &[
            ("source", "mic"),
            ("pre_on", "on"),
            ("gain", "30"),
            ("level", "-30"),
            ("tube", "12at7"),
            ("hpf", "120 Hz"),
        ],
    ),
    (
        "IEC 120 ohm out into 80 ohm closed-backs",
        "A headphone output built to the old IEC 61938 120 ohm rule, driving 80 ohm \
         closed-backs: far above the 1/8 rule, so the level drops and the bass \
         resonance (a 200 ohm impedance peak) comes up by almost 4 dB.",
        &[
            ("source", "pro_line"),
            ("pre_on", "off"),
            ("hp_on", "on"),
            ("amp_z", "120"),
            ("hp_model", "dyn80"),
        ],
    ),
];

/// A factory preset from the defaults plus `settings`. The settings are
/// checked by `tests/presets.rs`; a bad one is a programming error.
fn build(name: &str, description: &str, settings: &[(&str, &str)]) -> Preset {
    let params = TubelineParams::default();
    for (id, value) in settings {
        if let Err(e) = params.set_from_text(id, value) {
            panic!("factory preset \"{name}\": {id}={value}: {e}");
        }
    }
    Preset::from_params(name, description, &params)
}

/// Lower case, letters and digits only: how preset names are compared.
fn simplify(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// A file name for a preset called `name`: lower case, runs of anything but
/// letters and digits made one `-`, plus `.json` ("Warm 60s tube vocal" →
/// `warm-60s-tube-vocal.json`). Never empty, never a path.
pub fn file_name_for(name: &str) -> String {
    let mut stem = String::new();
    for c in name.chars() {
        if c.is_alphanumeric() {
            stem.extend(c.to_lowercase());
        } else if !stem.is_empty() && !stem.ends_with('-') {
            stem.push('-');
        }
    }
    let stem = stem.trim_end_matches('-');
    if stem.is_empty() {
        "preset.json".to_string()
    } else {
        format!("{stem}.json")
    }
}

/// True when two states recall exactly the same thing: the same parameter
/// IDs with bit-identical values, and the same persisted fields (the version
/// string is ignored).
pub fn same_state(a: &PluginState, b: &PluginState) -> bool {
    fn same(x: &ParamValue, y: &ParamValue) -> bool {
        match (x, y) {
            (ParamValue::F32(x), ParamValue::F32(y)) => x.to_bits() == y.to_bits(),
            (ParamValue::I32(x), ParamValue::I32(y)) => x == y,
            (ParamValue::Bool(x), ParamValue::Bool(y)) => x == y,
            (ParamValue::String(x), ParamValue::String(y)) => x == y,
            _ => false,
        }
    }
    a.fields == b.fields
        && a.params.len() == b.params.len()
        && a.params
            .iter()
            .zip(&b.params)
            .all(|((ka, va), (kb, vb))| ka == kb && same(va, vb))
}

/// The preset as the JSON [`save_user`] writes (wrapped, pretty-printed).
pub fn to_json(preset: &Preset) -> String {
    let wrapped = WrappedPreset {
        tubeline_preset: FORMAT_VERSION,
        name: preset.name.clone(),
        description: preset.description.clone(),
        state: preset.state.clone(),
    };
    // Serializing these types cannot fail (string keys, no maps with
    // non-string keys); NaN would become null, which `validate` refuses first.
    serde_json::to_string_pretty(&wrapped).expect("a preset serializes to JSON")
}

/// Parse a preset from a file's bytes (either shape of the module header;
/// a host's binary CLAP state is accepted too). `fallback_name` names a bare
/// state; `origin` (e.g. the file path) starts every error message. The
/// state is validated against the parameter tree.
pub fn parse(bytes: &[u8], fallback_name: &str, origin: &str) -> Result<Preset, PresetError> {
    let json = state_json(bytes);
    let fail = |what: String| PresetError(format!("{origin}: {what}"));
    // First pass: is it JSON at all, and which shape?
    let value: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| fail(json_problem(&e)))?;
    let Some(object) = value.as_object() else {
        return Err(fail(format!(
            "{NOT_A_PRESET} (the file holds {} instead of an object)",
            kind_of(&value)
        )));
    };
    let preset = if let Some(version) = object.get("tubeline_preset") {
        match version.as_u64() {
            Some(v) if v >= 1 && v <= u64::from(FORMAT_VERSION) => {}
            Some(v) if v > u64::from(FORMAT_VERSION) => {
                return Err(fail(format!(
                    "written in preset format {v} by a newer Tubeline; this version reads format {FORMAT_VERSION}: update Tubeline to load it"
                )))
            }
            _ => {
                return Err(fail(format!(
                    "\"tubeline_preset\" must be the format number {FORMAT_VERSION}, not {version}"
                )))
            }
        }
        // Second pass, typed, so a wrong type is reported with its line.
        let w: WrappedPreset = serde_json::from_slice(json).map_err(|e| fail(json_problem(&e)))?;
        if w.name.trim().is_empty() {
            return Err(fail(
                "the preset's \"name\" is empty: give it a name".to_string(),
            ));
        }
        Preset {
            name: w.name,
            description: w.description,
            state: w.state,
        }
    } else if object.contains_key("params") {
        let state: PluginState =
            serde_json::from_slice(json).map_err(|e| fail(json_problem(&e)))?;
        Preset {
            name: fallback_name.to_string(),
            description: String::new(),
            state,
        }
    } else {
        return Err(fail(format!(
            "{NOT_A_PRESET} (it has neither \"tubeline_preset\" nor \"params\")"
        )));
    };
    validate(&preset.state).map_err(|e| fail(e.to_string()))?;
    Ok(preset)
}

const NOT_A_PRESET: &str = "not a Tubeline preset: expected {\"tubeline_preset\": 1, \"name\": ..., \"state\": {...}} or the plugin's saved state {\"version\": ..., \"params\": {...}, \"fields\": {...}}";

fn kind_of(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

/// A serde_json error in plain words, with where it is.
fn json_problem(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let at = format!("line {}, column {}", e.line(), e.column());
    match e.classify() {
        Category::Eof => format!(
            "the JSON ends early at {at}: the file is truncated (cut off while being written or copied); restore it or save the preset again"
        ),
        Category::Syntax => format!(
            "not a Tubeline preset: broken JSON ({e}); fix the file or save the preset again"
        ),
        Category::Data => format!("a value has the wrong type or name: {e}"),
        Category::Io => format!("cannot read the file: {e}"),
    }
}

/// Check a state against the parameter tree (nothing is changed).
pub fn validate(state: &PluginState) -> Result<(), crate::params::ParamError> {
    TubelineParams::default().plan_state(state).map(|_| ())
}

/// The JSON inside a preset or state file: either the JSON itself, or a
/// host's saved CLAP state, which nice-plug writes as the JSON's length (u64,
/// little-endian) followed by the JSON.
pub fn state_json(bytes: &[u8]) -> &[u8] {
    if let Some((len, rest)) = bytes.split_first_chunk::<8>() {
        let len = u64::from_le_bytes(*len);
        if len == rest.len() as u64 && rest.first() == Some(&b'{') {
            return rest;
        }
    }
    bytes
}

/// Write `preset` to `path` (wrapped format), atomically: the JSON goes to a
/// temporary file in the same directory, which is flushed to disk and then
/// renamed over `path`. The directory is created if needed. A preset whose
/// state does not load is refused before anything is written, and on any
/// failure an existing file at `path` is left as it was.
pub fn save_user(path: &Path, preset: &Preset) -> Result<(), PresetError> {
    let shown = path.display();
    if preset.name.trim().is_empty() {
        return Err(PresetError(format!(
            "cannot save {shown}: the preset has no name; give it one"
        )));
    }
    validate(&preset.state).map_err(|e| {
        PresetError(format!(
            "cannot save {shown}: the preset would not load again: {e}"
        ))
    })?;
    let json = to_json(preset);
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| {
        PresetError(format!(
            "cannot save {shown}: cannot create the folder {}: {e}",
            dir.display()
        ))
    })?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tubeline-preset-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| {
            PresetError(format!(
                "cannot save {shown}: cannot create a file in {}: {e} (is the folder writable and the disk not full?)",
                dir.display()
            ))
        })?;
    tmp.write_all(json.as_bytes())
        .and_then(|()| tmp.write_all(b"\n"))
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| {
            PresetError(format!(
                "cannot save {shown}: writing failed: {e} (is the disk full?)"
            ))
        })?;
    // On failure the temporary file is removed when `tmp` drops.
    tmp.persist(path).map_err(|e| {
        PresetError(format!(
            "cannot save {shown}: cannot put the finished file in place: {} (is {shown} a folder, or read-only?)",
            e.error
        ))
    })?;
    Ok(())
}

/// Read a preset file (either shape; see the module header). A bare state
/// is named after the file. Errors name the file and what to fix.
pub fn load_user(path: &Path) -> Result<Preset, PresetError> {
    let bytes = fs::read(path)
        .map_err(|e| PresetError(format!("cannot read preset {}: {e}", path.display())))?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "Untitled".to_string());
    parse(&bytes, &stem, &path.display().to_string())
}

/// Where user presets are kept: `$XDG_CONFIG_HOME/tubeline/presets` when
/// `XDG_CONFIG_HOME` is an absolute path, else `$HOME/.config/tubeline/presets`
/// (`./tubeline/presets` if there is no home either). Not created here.
pub fn user_dir() -> PathBuf {
    user_dir_from(
        std::env::var_os("XDG_CONFIG_HOME"),
        std::env::var_os("HOME"),
    )
}

/// [`user_dir`] for given values of `XDG_CONFIG_HOME` and `HOME`.
pub fn user_dir_from(
    xdg_config_home: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
) -> PathBuf {
    let base = xdg_config_home
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            home.map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .map(|h| h.join(".config"))
        })
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("tubeline").join("presets")
}

/// Every `*.json` file directly in `dir` (any case of the extension), sorted
/// by path, each with its loaded preset or the reason it does not load. A
/// missing or unreadable folder gives an empty list.
pub fn list_user(dir: &Path) -> Vec<(PathBuf, Result<Preset, PresetError>)> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .is_some_and(|x| x.to_string_lossy().eq_ignore_ascii_case("json"))
        })
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let preset = load_user(&p);
            (p, preset)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_plain_slugs() {
        assert_eq!(
            file_name_for("Warm 60s tube vocal"),
            "warm-60s-tube-vocal.json"
        );
        assert_eq!(
            file_name_for("Keyboard line out -> passive DI -> mic pre"),
            "keyboard-line-out-passive-di-mic-pre.json"
        );
        assert_eq!(file_name_for("../../etc/passwd"), "etc-passwd.json");
        assert_eq!(file_name_for("  !! "), "preset.json");
    }

    #[test]
    fn factory_names_match_loosely() {
        let p = find_factory("warm 60S tube-vocal").expect("found");
        assert_eq!(p.name, "Warm 60s tube vocal");
        assert!(find_factory("keyboard line out → passive DI → mic pre").is_some());
        assert!(find_factory("no such thing").is_none());
    }

    #[test]
    fn user_dir_follows_the_xdg_rule() {
        let os = |s: &str| Some(std::ffi::OsString::from(s));
        assert_eq!(
            user_dir_from(os("/cfg"), os("/home/a")),
            Path::new("/cfg/tubeline/presets")
        );
        // Unset, empty or relative XDG_CONFIG_HOME: ~/.config.
        for xdg in [None, os(""), os("rel/dir")] {
            assert_eq!(
                user_dir_from(xdg, os("/home/a")),
                Path::new("/home/a/.config/tubeline/presets")
            );
        }
        assert_eq!(user_dir_from(None, None), Path::new("./tubeline/presets"));
    }
}
