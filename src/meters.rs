//! Lock-free state shared between the audio thread and the editor.
//!
//! The audio thread is the only writer of [`SharedMeters`]; the editor (and
//! the probe writer, see [`SharedMeters::probe_json`]) only read. Everything
//! is an atomic: `f64` values travel as their bit patterns in `AtomicU64`.
//!
//! - **Meter readings** ([`ChainMeters`]) are published as one consistent
//!   set through a sequence lock: the writer makes the sequence odd, stores
//!   every field, makes it even again; a reader retries while the sequence is
//!   odd or changed under it. The writer never waits, so the audio thread
//!   stays wait-free. The editor asks for a fresh reading by setting
//!   `wanted`; the audio thread then takes the chain's accumulated meters
//!   (which cover everything since the previous take, so no peak between two
//!   editor frames is lost) and publishes them.
//! - **What the audio thread sees** ([`SeenSettings`]) — a few of the chain's
//!   settings as `process()` applied them, plus a block counter — is stored
//!   field by field every block. The GUI test reads it through the probe file
//!   to prove that a click in the editor reached the audio side.
//! - **Output samples** for the editor's live spectrum go through an `rtrb`
//!   single-producer single-consumer ring ([`spectrum_ring`]); when the ring
//!   is full the audio thread drops samples rather than wait.
//!
//! Metering costs the audio thread something only while the editor is open
//! (`editor_open`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Capacity of the spectrum ring in samples (~0.34 s at 48 kHz): the editor
/// drains it every frame, so this only has to outlast a slow frame.
pub const SPECTRUM_RING_CAPACITY: usize = 16_384;

pub use crate::dsp::meters::{ChainMeters, LevelReading};

/// Number of `f64` slots a [`ChainMeters`] occupies (samples excluded).
const SNAPSHOT_F64S: usize = 6 * 2 + 2 + 2 + 4;

impl ChainMeters {
    fn to_array(self) -> [f64; SNAPSHOT_F64S] {
        let l = [
            self.input,
            self.di_out,
            self.preamp_in,
            self.preamp_out,
            self.headphone,
            self.output,
        ];
        let mut a = [0.0; SNAPSHOT_F64S];
        for (i, level) in l.iter().enumerate() {
            a[2 * i] = level.peak_volts;
            a[2 * i + 1] = level.rms_volts;
        }
        a[12] = self.grid_peak_volts[0];
        a[13] = self.grid_peak_volts[1];
        a[14] = self.grid_bias_volts[0];
        a[15] = self.grid_bias_volts[1];
        a[16] = self.grid_conduction_volts;
        a[17] = self.di_saturation;
        a[18] = self.headphone_power_watts;
        a[19] = self.headphone_current_amps;
        a
    }

    fn from_array(a: &[f64; SNAPSHOT_F64S], samples: u64) -> Self {
        let level = |i: usize| LevelReading {
            peak_volts: a[2 * i],
            rms_volts: a[2 * i + 1],
        };
        Self {
            input: level(0),
            di_out: level(1),
            preamp_in: level(2),
            preamp_out: level(3),
            headphone: level(4),
            output: level(5),
            grid_peak_volts: [a[12], a[13]],
            grid_bias_volts: [a[14], a[15]],
            grid_conduction_volts: a[16],
            di_saturation: a[17],
            headphone_power_watts: a[18],
            headphone_current_amps: a[19],
            samples,
        }
    }
}

/// Settings as the audio thread applied them in its latest block.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SeenSettings {
    /// Blocks processed since the plugin was created.
    pub blocks: u64,
    /// Host samples processed since the plugin was created.
    pub samples: u64,
    /// Converter calibration, dBu.
    pub cal_dbu: f64,
    /// Preamp gain, dB.
    pub gain_db: f64,
    /// Output trim, dB.
    pub out_trim_db: f64,
    /// Headphone amp output impedance, ohms.
    pub amp_z_ohms: f64,
    /// DI in.
    pub di_on: bool,
    /// Tube preamp in.
    pub pre_on: bool,
    /// Headphone amp in.
    pub hp_on: bool,
    /// Preamp pad on.
    pub pad: bool,
    /// Host sample rate, Hz.
    pub sample_rate: f64,
}

/// Lock-free meter state shared by the plugin (writer) and the editor.
#[derive(Debug, Default)]
pub struct SharedMeters {
    /// True while the editor window is open: metering runs only then.
    pub editor_open: AtomicBool,
    /// Set by the editor when the measured-curve path changed; the audio
    /// thread clears it when it asks for a redesign.
    pub redesign_curve: AtomicBool,
    /// Set by the editor with `redesign_curve` when the person pressed
    /// Enter on a path: the next design reads the file (a state's saved
    /// points are used otherwise).
    pub reload_curve_file: AtomicBool,
    /// Set by the editor when it wants a new reading; cleared by the audio
    /// thread when it publishes one.
    wanted: AtomicBool,
    /// Sequence lock of the meter reading: odd while being written.
    seq: AtomicU64,
    /// The reading's `f64` fields, as bits.
    values: [AtomicU64; SNAPSHOT_F64S],
    /// The reading's sample count.
    reading_samples: AtomicU64,
    /// Blocks processed.
    blocks: AtomicU64,
    /// Samples processed.
    samples: AtomicU64,
    /// Seen settings, `f64` as bits: cal, gain, out trim, amp Z, sample rate.
    seen: [AtomicU64; 5],
    /// Seen switches: bit 0 DI, 1 preamp, 2 headphone, 3 pad.
    seen_switches: AtomicU64,
}

impl SharedMeters {
    /// Fresh state: editor closed, nothing published.
    pub fn new() -> Self {
        Self::default()
    }

    /// Audio thread: true when the editor has asked for a new reading.
    #[inline]
    pub fn reading_wanted(&self) -> bool {
        self.wanted.load(Ordering::Acquire)
    }

    /// Audio thread: publish one reading (wait-free; never allocates).
    pub fn publish(&self, m: &ChainMeters) {
        let s = self.seq.load(Ordering::Relaxed);
        self.seq.store(s.wrapping_add(1), Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::Release);
        for (slot, v) in self.values.iter().zip(m.to_array()) {
            slot.store(v.to_bits(), Ordering::Relaxed);
        }
        self.reading_samples.store(m.samples, Ordering::Relaxed);
        self.seq.store(s.wrapping_add(2), Ordering::Release);
        self.wanted.store(false, Ordering::Release);
    }

    /// Editor: the latest published reading and its sequence number (which
    /// changes with every publication), and a request for the next one.
    pub fn read(&self) -> (ChainMeters, u64) {
        self.wanted.store(true, Ordering::Release);
        loop {
            let before = self.seq.load(Ordering::Acquire);
            if before % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let mut a = [0.0; SNAPSHOT_F64S];
            for (v, slot) in a.iter_mut().zip(&self.values) {
                *v = f64::from_bits(slot.load(Ordering::Relaxed));
            }
            let samples = self.reading_samples.load(Ordering::Relaxed);
            std::sync::atomic::fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == before {
                return (ChainMeters::from_array(&a, samples), before / 2);
            }
        }
    }

    /// Audio thread: record the settings applied in this block and count it.
    pub fn publish_seen(&self, s: &SeenSettings, block_samples: usize) {
        let values = [
            s.cal_dbu,
            s.gain_db,
            s.out_trim_db,
            s.amp_z_ohms,
            s.sample_rate,
        ];
        for (slot, v) in self.seen.iter().zip(values) {
            slot.store(v.to_bits(), Ordering::Relaxed);
        }
        let switches = u64::from(s.di_on)
            | u64::from(s.pre_on) << 1
            | u64::from(s.hp_on) << 2
            | u64::from(s.pad) << 3;
        self.seen_switches.store(switches, Ordering::Relaxed);
        self.samples
            .fetch_add(block_samples as u64, Ordering::Relaxed);
        self.blocks.fetch_add(1, Ordering::Release);
    }

    /// What the audio thread saw in its latest block.
    pub fn seen(&self) -> SeenSettings {
        let blocks = self.blocks.load(Ordering::Acquire);
        let f = |i: usize| f64::from_bits(self.seen[i].load(Ordering::Relaxed));
        let switches = self.seen_switches.load(Ordering::Relaxed);
        SeenSettings {
            blocks,
            samples: self.samples.load(Ordering::Relaxed),
            cal_dbu: f(0),
            gain_db: f(1),
            out_trim_db: f(2),
            amp_z_ohms: f(3),
            sample_rate: f(4),
            di_on: switches & 1 != 0,
            pre_on: switches & 2 != 0,
            hp_on: switches & 4 != 0,
            pad: switches & 8 != 0,
        }
    }

    /// The probe file's contents: what the audio thread published, as JSON.
    pub fn probe_json(&self) -> String {
        let s = self.seen();
        serde_json::json!({
            "blocks": s.blocks,
            "samples": s.samples,
            "sample_rate": s.sample_rate,
            "cal_dbu": s.cal_dbu,
            "gain_db": s.gain_db,
            "out_trim_db": s.out_trim_db,
            "amp_z_ohms": s.amp_z_ohms,
            "di_on": s.di_on,
            "pre_on": s.pre_on,
            "hp_on": s.hp_on,
            "pad": s.pad,
            "editor_open": self.editor_open.load(Ordering::Relaxed),
        })
        .to_string()
    }
}

/// Write `contents` to `path` atomically: a temporary file beside it, then a
/// rename, so a reader never sees half a file.
pub fn write_atomically(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, contents.as_bytes())?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The spectrum ring: the audio thread pushes output samples, the editor
/// pops them.
pub fn spectrum_ring() -> (rtrb::Producer<f32>, rtrb::Consumer<f32>) {
    rtrb::RingBuffer::new(SPECTRUM_RING_CAPACITY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_published_reading_comes_back_whole_and_is_requested_again() {
        let m = SharedMeters::new();
        assert!(!m.reading_wanted());
        let (first, seq0) = m.read();
        assert_eq!(first, ChainMeters::default());
        assert!(m.reading_wanted(), "reading asks for the next one");

        let snap = ChainMeters {
            input: LevelReading {
                peak_volts: 1.5,
                rms_volts: 1.0,
            },
            output: LevelReading {
                peak_volts: -0.0,
                rms_volts: 7.25,
            },
            grid_peak_volts: [0.3, -1.1],
            grid_bias_volts: [-1.2, -1.4],
            grid_conduction_volts: -0.2,
            di_saturation: 0.75,
            headphone_power_watts: 0.001,
            headphone_current_amps: 0.002,
            samples: 4096,
            ..Default::default()
        };
        m.publish(&snap);
        assert!(!m.reading_wanted());
        let (back, seq1) = m.read();
        assert_eq!(back, snap);
        assert_eq!(seq1, seq0 + 1);
    }

    #[test]
    fn seen_settings_and_counters_round_trip_into_the_probe() {
        let m = SharedMeters::new();
        let s = SeenSettings {
            cal_dbu: 18.0,
            gain_db: 42.5,
            out_trim_db: -3.0,
            amp_z_ohms: 120.0,
            sample_rate: 48_000.0,
            pre_on: true,
            pad: true,
            ..Default::default()
        };
        m.publish_seen(&s, 64);
        m.publish_seen(&s, 32);
        let seen = m.seen();
        assert_eq!(seen.blocks, 2);
        assert_eq!(seen.samples, 96);
        assert_eq!(
            seen,
            SeenSettings {
                blocks: 2,
                samples: 96,
                ..s
            }
        );
        let json: serde_json::Value = serde_json::from_str(&m.probe_json()).unwrap();
        assert_eq!(json["blocks"], 2);
        assert_eq!(json["gain_db"], 42.5);
        assert_eq!(json["pre_on"], true);
        assert_eq!(json["di_on"], false);
    }

    #[test]
    fn probe_file_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("probe.json");
        write_atomically(&path, "{\"a\":1}").unwrap();
        write_atomically(&path, "{\"a\":2}").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":2}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
