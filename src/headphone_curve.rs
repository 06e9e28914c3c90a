//! Measured headphone curves in the plugin: the CSV is read, parsed and
//! turned into a filter off the audio thread; the filters reach the audio
//! thread through a lock-free queue, and the ones they displace travel back
//! through a second queue to be freed off the audio thread.
//!
//! # Sessions that travel
//!
//! The curve's points are saved in the plugin state (`hp_curve`, a
//! [`SavedCurve`]: the points and the file they came from), beside the path
//! (`hp_csv`). A state is designed from its points, never by reading the
//! file again, so a session or preset opened on another machine keeps its
//! load; the path is only a hint ("loaded from …"). A state saved before
//! the points were stored names only the path: the file is read as before
//! and, when that works, its points are stored, so the next save travels.
//! Only pressing Enter on a path reads the file on purpose.
//!
//! The saved points are checked when a state is loaded (the same rules as
//! the CSV parser: 8 to `MAX_POINTS`, finite, frequencies above 0 and
//! increasing, |Z| above 0); a corrupt curve is refused with a message and
//! the load in effect stays.

use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::RwLock;

use nice_plug::params::persist::PersistentField;
use nice_plug::prelude::PluginState;
use rtrb::{Consumer, Producer, RingBuffer};
use serde::{Deserialize, Serialize};

use crate::dsp::chain::Chain;
use crate::dsp::headphone::{
    decode_csv_bytes, design_custom, parse_impedance_points, CsvError, CustomFilter,
    ImpedanceCurve, MAX_CSV_BYTES, MAX_POINTS,
};

/// The persisted key of the saved curve.
pub const CURVE_KEY: &str = "hp_curve";
/// The persisted key of the curve's path.
pub const PATH_KEY: &str = "hp_csv";
/// Longest `hp_curve` field read from a state, bytes of JSON: `MAX_POINTS`
/// points of three numbers of up to 24 characters and their punctuation,
/// plus the file name. A longer field is refused before it is parsed.
const MAX_FIELD_BYTES: usize = MAX_POINTS * 80 + 8192;

/// A measured curve as the plugin state stores it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SavedCurve {
    /// The file the points were read from, as the machine that read it
    /// named it. A hint for the person only: never read again once the
    /// points are here.
    #[serde(default)]
    pub file: String,
    /// The measured points, `[frequency Hz, |Z| ohm, phase degrees]`, as
    /// the CSV had them (empty: no curve stored).
    #[serde(default)]
    pub points: Vec<[f64; 3]>,
    /// Set only by [`upgrade_state`], never saved: what the loader found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loader: Option<LoaderNote>,
}

/// What [`upgrade_state`] found in a state's `hp_curve`, for the slot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoaderNote {
    /// No `hp_curve` (a state saved before the points were stored): keep
    /// the points in effect, read the file the state's path names.
    PathOnly,
    /// An `hp_curve` that could not be read at all (not JSON, the wrong
    /// shape, too long): why. The curve in effect stays.
    Refused(String),
}

impl SavedCurve {
    /// The curve through the points, or a message saying why the state's
    /// curve cannot be used (naming the file it came from).
    pub fn curve(&self) -> Result<ImpedanceCurve, String> {
        if let Some(LoaderNote::Refused(why)) = &self.loader {
            return Err(why.clone());
        }
        ImpedanceCurve::from_points(&self.points).map_err(|e| {
            format!(
                "the measured curve saved in this state (loaded from {}) is corrupt: {e}; the load in effect stays: load the CSV again (type its path and press Enter).",
                if self.file.is_empty() { "an unnamed file" } else { &self.file }
            )
        })
    }

    /// True when points are stored for the file at `path`.
    pub fn is_for(&self, path: &str) -> bool {
        !self.points.is_empty() && self.file == path
    }
}

/// The persisted `hp_curve` field: the saved curve, plus counters that let
/// the audio thread and the editor notice a change without locking.
#[derive(Debug, Default)]
pub struct CurveSlot {
    /// The curve in effect (or to be designed).
    curve: RwLock<SavedCurve>,
    /// Why the last state's curve was refused (taken by the loader, which
    /// shows it). The refused curve never replaces `curve`.
    refused: RwLock<Option<String>>,
    /// Bumped each time a state sets the field: the audio thread asks for
    /// a design when it moves.
    state_loads: AtomicU32,
    /// Bumped on every change (a state, or a file read): the editor's
    /// cache key.
    revision: AtomicU64,
}

impl CurveSlot {
    /// A copy of the saved curve.
    pub fn get(&self) -> SavedCurve {
        self.curve.read().map(|c| c.clone()).unwrap_or_default()
    }

    /// The number of saved points and the file they came from (no copy of
    /// the points; the editor asks every frame). `None`: none saved.
    pub fn hint(&self) -> Option<(usize, String)> {
        let c = self.curve.read().ok()?;
        (!c.points.is_empty()).then(|| (c.points.len(), c.file.clone()))
    }

    /// Store the points read from `file` (not a state load: the audio
    /// thread is not asked for another design).
    pub fn store_loaded(&self, file: &str, points: Vec<[f64; 3]>) {
        if let Ok(mut c) = self.curve.write() {
            *c = SavedCurve {
                file: file.to_string(),
                points,
                loader: None,
            };
        }
        self.revision.fetch_add(1, Ordering::AcqRel);
    }

    /// How many times a state has set the field (lock-free; the audio
    /// thread polls it).
    pub fn state_loads(&self) -> u32 {
        self.state_loads.load(Ordering::Acquire)
    }

    /// Changes so far (lock-free).
    pub fn revision(&self) -> u64 {
        self.revision.load(Ordering::Acquire)
    }

    /// Why the last state's curve was refused, once.
    pub fn take_refusal(&self) -> Option<String> {
        self.refused.write().ok().and_then(|mut r| r.take())
    }
}

impl<'a> PersistentField<'a, SavedCurve> for CurveSlot {
    /// A state's curve: checked, stored when it is sound, refused (the
    /// curve in effect stays) when not.
    fn set(&self, new_value: SavedCurve) {
        let check = match &new_value.loader {
            Some(LoaderNote::PathOnly) => Err(None),
            Some(LoaderNote::Refused(why)) => Err(Some(why.clone())),
            None if new_value.points.is_empty() => Ok(()),
            None => new_value.curve().map(|_| ()).map_err(Some),
        };
        match check {
            Ok(()) => {
                if let Ok(mut c) = self.curve.write() {
                    *c = new_value;
                }
                if let Ok(mut r) = self.refused.write() {
                    *r = None;
                }
            }
            Err(why) => {
                if let Ok(mut r) = self.refused.write() {
                    *r = why;
                }
            }
        }
        self.revision.fetch_add(1, Ordering::AcqRel);
        self.state_loads.fetch_add(1, Ordering::AcqRel);
    }

    fn map<F, R>(&self, f: F) -> R
    where
        F: Fn(&SavedCurve) -> R,
    {
        match self.curve.read() {
            Ok(c) => f(&c),
            Err(_) => f(&SavedCurve::default()),
        }
    }
}

/// Bring a saved state to the current format before it is applied (the
/// plugin's `filter_state`, presets, A/B), so that the slot hears of every
/// state: a state that names a path but stores no points (saved by an
/// older Tubeline) gets an `hp_curve` that says so ([`LoaderNote::PathOnly`]);
/// an `hp_curve` that cannot be read at all becomes a refusal the loader
/// reports ([`LoaderNote::Refused`]) instead of being dropped silently.
pub fn upgrade_state(state: &mut PluginState) {
    let note = |loader: LoaderNote| {
        let c = SavedCurve {
            loader: Some(loader),
            ..SavedCurve::default()
        };
        serde_json::to_string(&c).expect("plain data")
    };
    let Some(field) = state.fields.get(CURVE_KEY) else {
        if state.fields.contains_key(PATH_KEY) {
            state
                .fields
                .insert(CURVE_KEY.to_string(), note(LoaderNote::PathOnly));
        }
        return;
    };
    let refused = |why: String| {
        note(LoaderNote::Refused(format!(
            "the measured curve saved in this state cannot be read ({why}); the load in effect stays: load the CSV again (type its path and press Enter)."
        )))
    };
    let json = if field.len() > MAX_FIELD_BYTES {
        refused(format!(
            "{} bytes, more than {MAX_POINTS} points can take",
            field.len()
        ))
    } else {
        match serde_json::from_str::<SavedCurve>(field) {
            Ok(c) if c.loader.is_none() => return,
            // A note is the loader's, never a state's.
            Ok(_) => refused("it carries a loader note".to_string()),
            Err(e) => refused(e.to_string()),
        }
    };
    state.fields.insert(CURVE_KEY.to_string(), json);
}

/// Check a state's `hp_curve` without applying it (presets are refused
/// whole when it is corrupt).
pub fn check_state(state: &PluginState) -> Result<(), String> {
    let mut state = PluginState {
        version: String::new(),
        params: Default::default(),
        fields: state
            .fields
            .iter()
            .filter(|(k, _)| k.as_str() == CURVE_KEY)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    upgrade_state(&mut state);
    match state.fields.get(CURVE_KEY) {
        None => Ok(()),
        Some(field) => {
            let saved: SavedCurve = serde_json::from_str(field).map_err(|e| e.to_string())?;
            match saved.loader {
                Some(LoaderNote::PathOnly) => Ok(()),
                Some(LoaderNote::Refused(why)) => Err(why),
                None if saved.points.is_empty() => Ok(()),
                None => saved.curve().map(|_| ()),
            }
        }
    }
}

/// Read a curve CSV: at most [`MAX_CSV_BYTES`] (checked before reading),
/// text in UTF-8, UTF-16 or Latin-1, parsed into its points. The message
/// names the file.
pub fn read_curve_points(path: &Path) -> Result<Vec<[f64; 3]>, String> {
    let name = path.display().to_string();
    let cannot = |e: std::io::Error| format!("cannot read impedance curve {name}: {e}");
    let meta = std::fs::metadata(path).map_err(cannot)?;
    if meta.is_dir() {
        return Err(format!(
            "{name} is a folder: choose the CSV file of the measured curve"
        ));
    }
    if meta.len() > MAX_CSV_BYTES as u64 {
        return Err(CsvError::TooLarge { bytes: meta.len() }.about(&name));
    }
    // Read at most one byte past the limit (the file may grow meanwhile).
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(cannot)?
        .take(MAX_CSV_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    let text = decode_csv_bytes(&bytes).map_err(|e| e.about(&name))?;
    parse_impedance_points(&text).map_err(|e| e.about(&name))
}

/// Read and parse a curve CSV (see [`read_curve_points`]).
pub fn read_curve_file(path: &Path) -> Result<ImpedanceCurve, String> {
    let points = read_curve_points(path)?;
    ImpedanceCurve::from_points(&points).map_err(|e| format!("{}: {e}", path.display()))
}

/// What the loader makes of a state's curve: the curve to design (if any)
/// and a problem to show (if any). Both may be set: a refused or missing
/// curve reported while the load in effect is designed again.
#[derive(Debug, Default)]
pub struct Resolved {
    /// The curve to design.
    pub curve: Option<ImpedanceCurve>,
    /// A message for the person.
    pub problem: Option<String>,
}

/// The curve a state asks for: its saved points when they belong to the
/// path it names (`path`, `hp_csv`), else (a state from before the points
/// were saved, or `from_file`: the person pressed Enter on the path) the
/// file read now, whose points are then stored in `slot` so the next save
/// carries them. Nothing chosen: neither curve nor problem.
///
/// When the state's curve cannot be had (refused as corrupt, or its file
/// is missing or malformed), the problem says which file and what to do,
/// and the load in effect stays: the points already in `slot` are designed
/// again (an activation drops the filters) and `path` goes back to their
/// file, so the state saves what plays.
pub fn resolve_curve(slot: &CurveSlot, path: &RwLock<String>, from_file: bool) -> Resolved {
    let saved = slot.get();
    // The load in effect, kept after a failure.
    let keep = |problem: String| {
        if saved.points.is_empty() {
            return Resolved {
                curve: None,
                problem: Some(problem),
            };
        }
        if let Ok(mut p) = path.write() {
            p.clone_from(&saved.file);
        }
        Resolved {
            curve: saved.curve().ok(),
            problem: Some(problem),
        }
    };
    if let Some(why) = slot.take_refusal() {
        return keep(why);
    }
    let wanted = path
        .read()
        .map(|p| p.trim().to_string())
        .unwrap_or_default();
    if !from_file && (saved.is_for(&wanted) || (wanted.is_empty() && !saved.points.is_empty())) {
        return match saved.curve() {
            Ok(curve) => Resolved {
                curve: Some(curve),
                problem: None,
            },
            Err(e) => Resolved {
                curve: None,
                problem: Some(e),
            },
        };
    }
    if wanted.is_empty() {
        return Resolved::default();
    }
    let read = read_curve_points(Path::new(&wanted)).and_then(|points| {
        let curve = ImpedanceCurve::from_points(&points).map_err(|e| format!("{wanted}: {e}"))?;
        Ok((points, curve))
    });
    match read {
        Ok((points, curve)) => {
            slot.store_loaded(&wanted, points);
            Resolved {
                curve: Some(curve),
                problem: None,
            }
        }
        Err(e) if !from_file => keep(format!(
            "{e}. This state names the measured curve only by its path, without its points (as sessions saved by older Tubeline versions do), and the file cannot be used on this machine: load the CSV again (type its path and press Enter), then save, so the curve travels with the session."
        )),
        Err(e) => keep(e),
    }
}

/// One filter per channel, designed together.
pub struct FilterSet {
    /// The filters, by channel.
    filters: Vec<CustomFilter>,
}

/// The background side: designs filters and sends them.
pub struct CurveSender {
    /// New filters to the audio thread.
    to_audio: Producer<FilterSet>,
    /// Displaced filters back from the audio thread, dropped here.
    trash: Consumer<FilterSet>,
}

/// The audio side: installs what arrives, sends back what it replaced.
pub struct CurveReceiver {
    /// New filters from the background.
    from_background: Consumer<FilterSet>,
    /// Displaced filters back to the background.
    trash: Producer<FilterSet>,
}

/// A pair of connected ends.
pub fn curve_channel() -> (CurveSender, CurveReceiver) {
    let (to_audio, from_background) = RingBuffer::new(4);
    let (trash_tx, trash_rx) = RingBuffer::new(8);
    (
        CurveSender {
            to_audio,
            trash: trash_rx,
        },
        CurveReceiver {
            from_background,
            trash: trash_tx,
        },
    )
}

impl CurveSender {
    /// Design `curve` for `channels` channels and send it to the audio
    /// thread. Nothing is sent on an error, so the filter in use stays.
    pub fn load(
        &mut self,
        curve: &ImpedanceCurve,
        zo_ohms: f64,
        sample_rate: f64,
        channels: usize,
    ) -> Result<(), String> {
        // Free what the audio thread sent back.
        while self.trash.pop().is_ok() {}
        let filter = design_custom(curve, zo_ohms, sample_rate);
        let set = FilterSet {
            filters: vec![filter; channels],
        };
        self.to_audio
            .push(set)
            .map_err(|_| "the audio thread has not taken the previous curve yet".to_string())
    }
}

impl CurveReceiver {
    /// Install any newly designed filters into `chain`. Never allocates or
    /// frees: the displaced filters go back to the background. Returns
    /// whether anything was installed.
    pub fn install(&mut self, chain: &mut Chain) -> bool {
        let mut installed = false;
        while let Ok(mut set) = self.from_background.pop() {
            for (channel, slot) in set.filters.iter_mut().enumerate() {
                let new = std::mem::take(slot);
                if let Some(old) = chain.swap_headphone_custom(channel, new) {
                    *slot = old;
                }
            }
            // If the trash queue is full the set is dropped here; with a
            // capacity of 8 against 4 in flight this cannot happen.
            let _ = self.trash.push(set);
            installed = true;
        }
        installed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 10-point curve rising from 32 to 41 ohm, as CSV text and points.
    fn rising() -> (String, Vec<[f64; 3]>) {
        let points: Vec<[f64; 3]> = (0..10)
            .map(|i| [20.0 * 2f64.powi(i), 32.0 + f64::from(i), -f64::from(i)])
            .collect();
        let text = points
            .iter()
            .map(|p| format!("{},{},{}\n", p[0], p[1], p[2]))
            .collect();
        (text, points)
    }

    fn state_with(fields: &[(&str, &str)]) -> PluginState {
        PluginState {
            version: "0.1.0".to_string(),
            params: Default::default(),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn files_too_large_or_not_text_are_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.csv");
        std::fs::write(&big, vec![b'1'; 3 << 20]).unwrap();
        let msg = read_curve_points(&big).unwrap_err();
        assert!(msg.contains("big.csv is too large"), "{msg}");
        assert!(
            msg.contains("3145728 bytes") && msg.contains("1048576"),
            "{msg}"
        );
        let bin = dir.path().join("curve.wav");
        let mut riff = b"RIFF\x24\0\0\0WAVEfmt \x10\0\0\0".to_vec();
        riff.extend(std::iter::repeat_n(0u8, 64));
        std::fs::write(&bin, riff).unwrap();
        let msg = read_curve_points(&bin).unwrap_err();
        assert!(msg.contains("curve.wav is not a text file"), "{msg}");
        let msg = read_curve_points(dir.path()).unwrap_err();
        assert!(msg.contains("is a folder"), "{msg}");
        // UTF-16 LE with a BOM reads like the UTF-8 file.
        let (text, points) = rising();
        let wide = dir.path().join("wide.csv");
        let mut bytes = vec![0xFF, 0xFE];
        bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        std::fs::write(&wide, bytes).unwrap();
        assert_eq!(read_curve_points(&wide).unwrap(), points);
    }

    #[test]
    fn a_saved_curve_is_used_without_its_file_and_an_old_path_is_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let (text, points) = rising();
        let file = dir.path().join("cans.csv");
        std::fs::write(&file, &text).unwrap();
        let path = file.to_str().unwrap();
        let slot = CurveSlot::default();
        let hp_csv = RwLock::new(path.to_string());
        // Old state: only the path. The file is read and its points stored.
        let r = resolve_curve(&slot, &hp_csv, false);
        assert_eq!(r.problem, None);
        let curve = r.curve.unwrap();
        assert_eq!(slot.get().points, points);
        assert_eq!(slot.get().file, path);
        assert_eq!(curve, ImpedanceCurve::from_points(&points).unwrap());
        // The file is gone: the saved points still give the same curve.
        std::fs::remove_file(&file).unwrap();
        let r = resolve_curve(&slot, &hp_csv, false);
        assert_eq!((r.curve, r.problem), (Some(curve.clone()), None));
        // Enter on the path reads the file: gone, so an error; the saved
        // points stay in effect.
        let r = resolve_curve(&slot, &hp_csv, true);
        let msg = r.problem.unwrap();
        assert!(
            msg.contains("cannot read impedance curve") && msg.contains("cans.csv"),
            "{msg}"
        );
        assert_eq!(r.curve.as_ref(), Some(&curve));
        assert_eq!(slot.get().points, points);
        // Another path with no points saved for it (an old state naming a
        // file this machine lacks): says which file and what to do; the
        // load in effect stays, with its path.
        let other = dir.path().join("missing.csv");
        *hp_csv.write().unwrap() = other.to_str().unwrap().to_string();
        let r = resolve_curve(&slot, &hp_csv, false);
        let msg = r.problem.unwrap();
        assert!(msg.contains("missing.csv"), "{msg}");
        assert!(msg.contains("load the CSV again"), "{msg}");
        assert_eq!(r.curve.as_ref(), Some(&curve));
        assert_eq!(slot.get().points, points, "the load in effect stays");
        assert_eq!(*hp_csv.read().unwrap(), path, "with its path");
        // Nothing chosen: nothing to do, nothing to say.
        let r = resolve_curve(&CurveSlot::default(), &RwLock::new(String::new()), false);
        assert!(r.curve.is_none() && r.problem.is_none());
    }

    #[test]
    fn states_are_upgraded_and_a_corrupt_curve_is_refused_not_applied() {
        let (_, points) = rising();
        let good = serde_json::to_string(&SavedCurve {
            file: "C:\\measurements\\cans.csv".to_string(),
            points: points.clone(),
            loader: None,
        })
        .unwrap();
        // A round trip through JSON keeps every bit.
        assert_eq!(
            serde_json::from_str::<SavedCurve>(&good).unwrap().points,
            points
        );
        // Old state (path only): a note is put in, so the slot hears of it.
        let mut old = state_with(&[(PATH_KEY, "\"/x/cans.csv\"")]);
        upgrade_state(&mut old);
        assert_eq!(
            old.fields[CURVE_KEY],
            r#"{"file":"","points":[],"loader":"path_only"}"#
        );
        assert!(check_state(&state_with(&[(PATH_KEY, "\"/x/cans.csv\"")])).is_ok());
        // A good state is left as it is.
        let mut new = state_with(&[(CURVE_KEY, &good)]);
        upgrade_state(&mut new);
        assert_eq!(new.fields[CURVE_KEY], good);
        assert!(check_state(&new).is_ok());

        let slot = CurveSlot::default();
        slot.set(serde_json::from_str(&good).unwrap());
        assert_eq!(slot.state_loads(), 1);
        let in_effect = slot.get();
        let corrupt = [
            ("not JSON", "{\"file\": \"a.csv\", \"points\": [[20, 3"),
            ("wrong shape", "{\"file\": 3, \"points\": \"many\"}"),
            ("negative |Z|", "{\"file\": \"a.csv\", \"points\": [[20,32,0],[40,32,0],[80,32,0],[160,-1,0],[320,32,0],[640,32,0],[1280,32,0],[2560,32,0]]}"),
            ("frequencies down", "{\"file\": \"a.csv\", \"points\": [[20,32,0],[40,32,0],[30,32,0],[160,1,0],[320,32,0],[640,32,0],[1280,32,0],[2560,32,0]]}"),
            ("too few", "{\"file\": \"a.csv\", \"points\": [[20,32,0]]}"),
        ];
        for (what, field) in corrupt {
            let mut state = state_with(&[(CURVE_KEY, field)]);
            let err = check_state(&state).unwrap_err();
            assert!(
                err.contains("measured curve saved in this state"),
                "{what}: {err}"
            );
            // Through the loader: the field now deserializes (no debug
            // assertion, no panic) and is refused by the slot.
            upgrade_state(&mut state);
            let saved: SavedCurve = serde_json::from_str(&state.fields[CURVE_KEY]).unwrap();
            slot.set(saved);
            assert_eq!(slot.get(), in_effect, "{what}: the curve in effect stays");
            let refusal = slot.take_refusal().expect(what);
            assert!(refusal.contains("load the CSV again"), "{what}: {refusal}");
            // The refusal is reported by the next design, which designs
            // the curve in effect again, and puts its path back.
            slot.set(serde_json::from_str(&state.fields[CURVE_KEY]).unwrap());
            let hp_csv = RwLock::new("a.csv".to_string());
            let r = resolve_curve(&slot, &hp_csv, false);
            assert!(r.problem.is_some(), "{what}");
            assert_eq!(r.curve, Some(in_effect.curve().unwrap()), "{what}");
            assert_eq!(*hp_csv.read().unwrap(), in_effect.file);
            assert!(slot.take_refusal().is_none());
        }
        // A state cannot smuggle in a loader note.
        let mut sneaky = state_with(&[(CURVE_KEY, r#"{"points":[],"loader":"path_only"}"#)]);
        upgrade_state(&mut sneaky);
        assert!(check_state(&sneaky).is_err());
        // A loader note is never saved.
        assert!(!serde_json::to_string(&slot.get())
            .unwrap()
            .contains("loader"));
    }
}
