//! Running ngspice on a checked-in netlist: a small deck per case that
//! `.include`s the netlist, sets its parameters, drives its input `vin`,
//! runs a transient and writes the probed nodes (`wrdata`); the trace read
//! back and resampled onto a uniform grid.
//!
//! # Accuracy
//!
//! ngspice's default tolerances (RELTOL 1e-3) are far too loose for
//! harmonics at −100 dBc: the decks run RELTOL 1e-5, ABSTOL 1e-14 A,
//! VNTOL 1e-9 V, the trapezoidal method with the step capped at `tmax`
//! (5.2 µs = a quarter of a 48 kHz sample in the tests). Checked against
//! RELTOL 1e-6: gain within 0.001 dB, H2 … H5 within 0.01 dB (12AX7,
//! Gain 20 / Level 0 at 1 kHz; Gain 60 / Level 0 at 7 kHz), at half the
//! time in heavy clipping at 7 kHz (where ngspice's steps shrink far below
//! `tmax`: 95 000 points in 40 ms). RELTOL 1e-4 moves them by 0.01 dB. The time points are
//! ngspice's own (not uniform); [`Trace::resample`] puts them on the
//! analysis grid with 6-point Lagrange interpolation, whose error at
//! 21 kHz with 5.2 µs steps is ~(ω·dt)⁶/720 ≈ 4e-8 (−150 dB): the
//! measured harmonics are ngspice's, not the interpolator's (checked: 4-,
//! 6- and 8-point give the same H2/H3 within 0.01 dB).
//!
//! The grid diode's thermal voltage is kT/q at the simulation temperature:
//! `temp = tnom = 26.85 °C` (300 K, 25.852 mV), the model's value.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The folder of the checked-in netlists.
pub fn netlist_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/spice")
}

/// One transient run of a netlist.
#[derive(Clone, Debug)]
pub struct Deck {
    /// File name of the netlist under `tests/spice/`.
    pub netlist: &'static str,
    /// `.param` name and value, set before the netlist is included.
    pub params: Vec<(&'static str, f64)>,
    /// The element line(s) that drive node `vin`.
    pub source: String,
    /// Time kept from (s): ngspice stores nothing before it.
    pub t_start: f64,
    /// End of the run (s).
    pub t_stop: f64,
    /// Largest time step (s).
    pub t_max: f64,
    /// Node voltages written, e.g. `v(out)`.
    pub probes: Vec<&'static str>,
}

/// Time points and one column per probe.
#[derive(Clone, Debug)]
pub struct Trace {
    /// Time points (s), increasing.
    pub t: Vec<f64>,
    /// The probes' values at `t`, in the deck's order.
    pub cols: Vec<Vec<f64>>,
}

impl Deck {
    /// The deck's text, writing its data to `data`.
    pub fn text(&self, data: &Path) -> String {
        let mut s = String::from("* tubeline: one case (written by tests/spice.rs)\n");
        for (k, v) in &self.params {
            s += &format!(".param {k}={v:.12e}\n");
        }
        s += &format!(".include {}\n", netlist_dir().join(self.netlist).display());
        s += &self.source;
        s += "\n.options temp=26.85 tnom=26.85 reltol=1e-5 abstol=1e-14 vntol=1e-9\n";
        let step = self.t_max;
        s += &format!(
            ".tran {step:e} {:e} {:e} {step:e}\n",
            self.t_stop, self.t_start
        );
        s += ".control\nset wr_singlescale\nset wr_vecnames\nset numdgt=12\nrun\n";
        s += &format!("wrdata {} {}\n", data.display(), self.probes.join(" "));
        s += "quit\n.endc\n.end\n";
        s
    }

    /// Run ngspice in batch mode; panics (naming the Debian package) when
    /// ngspice is missing, and with its output when the run fails. With
    /// `TUBELINE_SPICE_CACHE` set to a folder (a developer's switch; CI
    /// leaves it unset), a run whose deck and netlists are unchanged reads
    /// ngspice's output from there instead of running it again, so a model
    /// change is compared with all 72 cases in well under a minute.
    pub fn run(&self) -> Trace {
        let cached = std::env::var_os("TUBELINE_SPICE_CACHE").map(|d| {
            let key = self.cache_key();
            PathBuf::from(d).join(format!("{key:016x}.data"))
        });
        // (A file cut short, by a run stopped while writing it, is run again.)
        if let Some(trace) = cached
            .as_ref()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .map(|text| parse(&text, self.probes.len()))
            .filter(|trace| trace.t.len() >= 16)
        {
            return trace;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let deck = dir.path().join("case.cir");
        let data = dir.path().join("case.data");
        std::fs::write(&deck, self.text(&data)).expect("write deck");
        let out = match Command::new("ngspice").arg("-b").arg(&deck).output() {
            Ok(o) => o,
            Err(e) if e.kind() == ErrorKind::NotFound => panic!(
                "ngspice is not installed: the SPICE reference tests need it \
                 (Debian package `ngspice`: sudo apt-get install ngspice; \
                 .ci/run installs it)"
            ),
            Err(e) => panic!("cannot run ngspice: {e}"),
        };
        let text = std::fs::read_to_string(&data).unwrap_or_default();
        let trace = parse(&text, self.probes.len());
        if !out.status.success() || trace.t.len() < 16 {
            panic!(
                "ngspice failed on {} ({}):\n{}\n{}\ndeck:\n{}",
                self.netlist,
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.text(&data)
            );
        }
        if let Some(f) = cached {
            // A cache that cannot be written is only slower.
            let _ = std::fs::create_dir_all(f.parent().unwrap_or(Path::new(".")))
                .and_then(|_| std::fs::write(&f, &text));
        }
        trace
    }

    /// What a cached run is filed under: the deck (its data file named
    /// alike for every run) and every checked-in netlist and library
    /// (read once per test binary: [`netlists_hash`]).
    fn cache_key(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.text(Path::new("case.data")).hash(&mut h);
        netlists_hash().hash(&mut h);
        h.finish()
    }
}

/// A hash of every file in [`netlist_dir`], in name order, computed once.
fn netlists_hash() -> u64 {
    use std::hash::{Hash, Hasher};
    static HASH: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *HASH.get_or_init(|| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        let mut files: Vec<PathBuf> = std::fs::read_dir(netlist_dir())
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        for f in files.iter().filter(|f| f.is_file()) {
            std::fs::read(f).unwrap_or_default().hash(&mut h);
        }
        h.finish()
    })
}

/// Parse `wrdata` output written with `wr_singlescale` and `wr_vecnames`:
/// a header line, then time and one value per probe on each line.
fn parse(text: &str, probes: usize) -> Trace {
    let mut t = Vec::new();
    let mut cols = vec![Vec::new(); probes];
    for line in text.lines() {
        let vals: Vec<f64> = line
            .split_whitespace()
            .map_while(|w| w.parse().ok())
            .collect();
        if vals.len() != probes + 1 {
            continue;
        }
        // ngspice may repeat a time point (a breakpoint): keep the last.
        if t.last().is_some_and(|&l: &f64| vals[0] <= l) {
            t.pop();
            for c in cols.iter_mut() {
                c.pop();
            }
        }
        t.push(vals[0]);
        for (c, v) in cols.iter_mut().zip(&vals[1..]) {
            c.push(*v);
        }
    }
    Trace { t, cols }
}

impl Trace {
    /// Column `col` at `t0 + i/fs`, i = 0 … n − 1: 6-point Lagrange
    /// interpolation on the non-uniform time points.
    pub fn resample(&self, col: usize, t0: f64, fs: f64, n: usize) -> Vec<f64> {
        const P: usize = 6;
        let (t, y) = (&self.t, &self.cols[col]);
        assert!(
            t.len() > P && t0 >= t[0] && t0 + (n - 1) as f64 / fs <= t[t.len() - 1],
            "the trace ({} … {} s) does not hold the window from {t0} s",
            t[0],
            t[t.len() - 1]
        );
        let mut j = 0;
        (0..n)
            .map(|i| {
                let x = t0 + i as f64 / fs;
                while j + 1 < t.len() && t[j + 1] <= x {
                    j += 1;
                }
                let lo = (j + 1).saturating_sub(P / 2).min(t.len() - P);
                let mut acc = 0.0;
                for a in lo..lo + P {
                    let mut l = 1.0;
                    for b in lo..lo + P {
                        if a != b {
                            l *= (x - t[b]) / (t[a] - t[b]);
                        }
                    }
                    acc += l * y[a];
                }
                acc
            })
            .collect()
    }
}
