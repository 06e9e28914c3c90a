//! ngspice as the reference for the tube preamp (issue #18): the checked-in
//! netlists under `tests/spice/` run in ngspice (Debian package `ngspice`)
//! against the same stimulus through the chain.
//!
//! - `preamp_wired.cir`, the tube preamp as wired (each stage loading the
//!   one before, bypassed cathodes, the Level pot as stage 2's grid leak):
//!   the model must match it (gain ±0.1 dB, H2 … H5 ±1 dB where above
//!   −100 dBc, THD within 5 % of its value) over 1 kHz and 7 kHz × Gain
//!   20/35/50/60 × Level −20/0/−60 × the three tubes, but for the known
//!   misses named with their cause in [`KNOWN_MISSES`]. (Until the model
//!   was wired it was checked against an idealised netlist of buffered
//!   stages, held cathodes and an ideal Level, within 0.1 dB; that netlist
//!   went with it.)
//! - The bias recovery of the wired circuit after a burst into grid
//!   current (`bias::recovery`) against its time constants.
//! - `stage.cir`: the reference stage alone, driven as in
//!   `src/dsp/tube/tests.rs` (the figures in README and DESIGN).
//!
//! One input level for every case: −18 dBFS peak at the chain's defaults
//! (+18 dBu = 0 dBFS, Source Mic), 2.191 mV peak at the mic input. At it
//! the wired netlist gives THD 5.31 %, H2 −25.6 dBc at Gain 35 / Level
//! −20, 12AX7, 1 kHz (the model: 5.36 %, −25.5 dBc).
//!
//! Settling: each run analyses the windows 100–120 ms and 120–140 ms
//! (ngspice from its DC operating point, the chain from rest) and uses the
//! later; the table gives the largest change between the two.

mod util;

#[path = "spice/bias.rs"]
mod bias;
#[path = "spice/measure.rs"]
mod measure;
#[path = "spice/ngspice.rs"]
mod ngspice;

use measure::{Measured, FS, REPORTED, WINDOW};
use ngspice::Deck;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use tubeline::dsp::tube::{StageCircuit, TriodeStage, TubeType};
use tubeline::dsp::ProcessSpec;

/// Input level, dBFS peak.
const LEVEL_DBFS: f64 = -18.0;
/// Start of the first analysis window (s).
const SETTLE_S: f64 = 0.1;
/// ngspice's largest step: a quarter of a 48 kHz sample.
const T_MAX: f64 = 1.0 / (4.0 * FS);
/// Worker threads (CI has 2 cores).
const THREADS: usize = 2;

/// Tolerances (issue #18).
const GAIN_TOL_DB: f64 = 0.1;
const HD_TOL_DB: f64 = 1.0;
const HD_FLOOR_DBC: f64 = -100.0;
const THD_TOL: f64 = 0.05;
/// Harmonics checked for settling: above −90 dBc.
const SETTLE_FLOOR_DBC: f64 = -90.0;

/// Cases of the comparison with the wired netlist that are out of
/// tolerance because of the model's approximations (measured with
/// ngspice 39; model − ngspice, harmonics in dBc); the other 49 of the 72
/// are within tolerance. The test checks every other case, and that these
/// still miss (one that passes must leave this list). Before the preamp
/// was wired (issue #18), 61 of the 72 missed, by up to 4 dB in H2 and H3
/// at light drive.
///
/// Stage 2 in grid current at Level 0 (Gain 50 and 60): the model's gain
/// is 0.10–0.16 dB low, and two H4s of heavy clipping are 3–4 dB high
/// (12AX7 Gain 50, 12AT7 Gain 60). Two causes were found by putting the
/// model's simplifications into a copy of the netlist (docs/DESIGN.md,
/// "Where the misses come from"), and both are now in the model: stage
/// 2's output capacitor following the plate's average and moving its load
/// line (`cathode.rs`: five cases came within tolerance; there were 32),
/// and stage 2's grid current solved behind stage 1's plate resistance at
/// each sample (`GridBlend` in `grid_blend.rs`: four more, and the spectra of
/// the rest, which were up to 30 dB off per harmonic, within 1 dB but for
/// those two H4s).
///
/// Cgp at 7 kHz, Level −20 (H2 1–2 dB high at Gain 20–50 and 2.4–3.3 dB
/// low at Gain 60, THD 12–32 % off): the model
/// puts the Miller capacitance as a linear one-pole on the grid drive; in
/// the circuit Cgp also feeds the plate's own harmonics back to the grid,
/// a loop gain of ≈ 0.3–0.7 at 14 kHz behind the pot's 90 kΩ (less behind
/// Level 0's 37 kΩ, ≈ 0 at Level −60), which moves H2 there.
///
/// Notches: 12AX7 Gain 35 / Level −20 H5 and 12AT7 Gain 50 / Level −60 H3
/// are 20–40 dB below their neighbours, a near-cancellation of the two
/// stages' contributions that moves by dBs with a hundredth of a dB in the
/// path between them; so is 12AX7 Gain 20 / Level 0's H4 (−65 dBc between
/// H3 −34 and H5 −69), and 12AU7 Gain 60 / Level −60's H3 (−91 dBc between
/// H2 −30 and H4 −62), which was within 1 dB when the High quality ran the
/// tubes at 4× and is 1.1 dB off at 16×.
const KNOWN_MISSES: [(TubeType, f64, f64, f64, &str); 23] = [
    (TubeType::Tube12AX7, 1000.0, 20.0, 0.0, "H4 -65.7 vs -62.6"),
    (
        TubeType::Tube12AX7,
        1000.0,
        35.0,
        -20.0,
        "H4 -69.3 vs -67.5; H5 -105.4 vs -89.2",
    ),
    (
        TubeType::Tube12AX7,
        1000.0,
        50.0,
        0.0,
        "gain -0.131 dB; H4 -27.2 vs -30.3",
    ),
    (TubeType::Tube12AX7, 1000.0, 60.0, 0.0, "gain -0.105 dB"),
    (
        TubeType::Tube12AX7,
        7000.0,
        20.0,
        -20.0,
        "H2 -41.6 vs -43.5; THD 0.833 vs 0.664 %",
    ),
    (TubeType::Tube12AX7, 7000.0, 20.0, 0.0, "THD 12.0 vs 11.2 %"),
    (
        TubeType::Tube12AX7,
        7000.0,
        35.0,
        -20.0,
        "H2 -26.0 vs -27.8; THD 4.99 vs 4.06 %",
    ),
    (
        TubeType::Tube12AX7,
        7000.0,
        50.0,
        -20.0,
        "gain 0.123 dB; H2 -19.1 vs -20.7; THD 11.1 vs 9.23 %",
    ),
    (TubeType::Tube12AX7, 7000.0, 50.0, 0.0, "gain -0.126 dB"),
    (
        TubeType::Tube12AX7,
        7000.0,
        60.0,
        -20.0,
        "gain 0.117 dB; H2 -22.1 vs -19.3; THD 7.86 vs 10.8 %",
    ),
    (TubeType::Tube12AX7, 7000.0, 60.0, 0.0, "gain -0.105 dB"),
    (TubeType::Tube12AT7, 1000.0, 50.0, 0.0, "gain -0.100 dB"),
    (
        TubeType::Tube12AT7,
        1000.0,
        50.0,
        -60.0,
        "H3 -104.3 vs -95.9",
    ),
    (
        TubeType::Tube12AT7,
        1000.0,
        60.0,
        0.0,
        "gain -0.150 dB; H4 -26.8 vs -30.8",
    ),
    (
        TubeType::Tube12AT7,
        7000.0,
        20.0,
        -20.0,
        "H2 -49.8 vs -50.8; THD 0.323 vs 0.288 %",
    ),
    (
        TubeType::Tube12AT7,
        7000.0,
        35.0,
        -20.0,
        "THD 1.83 vs 1.63 %",
    ),
    (
        TubeType::Tube12AT7,
        7000.0,
        50.0,
        -20.0,
        "THD 6.53 vs 5.85 %",
    ),
    (
        TubeType::Tube12AT7,
        7000.0,
        60.0,
        -20.0,
        "H2 -33.2 vs -29.9; THD 2.18 vs 3.20 %",
    ),
    (TubeType::Tube12AT7, 7000.0, 60.0, 0.0, "gain -0.163 dB"),
    (TubeType::Tube12AU7, 1000.0, 60.0, 0.0, "gain -0.144 dB"),
    (
        TubeType::Tube12AU7,
        1000.0,
        60.0,
        -60.0,
        "H3 -91.0 vs -89.9",
    ),
    (
        TubeType::Tube12AU7,
        7000.0,
        60.0,
        -20.0,
        "H2 -40.8 vs -38.4; THD 0.911 vs 1.20 %",
    ),
    (TubeType::Tube12AU7, 7000.0, 60.0, 0.0, "gain -0.142 dB"),
];

/// The known miss of case `c`, if it is one.
fn known_miss(c: &Case) -> Option<&'static str> {
    KNOWN_MISSES
        .iter()
        .find(|k| k.0 == c.tube && k.1 == c.freq && k.2 == c.gain_db && k.3 == c.level_db)
        .map(|k| k.4)
}

/// One case of the comparison.
#[derive(Clone, Copy, Debug)]
struct Case {
    tube: TubeType,
    freq: f64,
    gain_db: f64,
    level_db: f64,
}

/// The grid of cases: frequency × Gain × Level × tube.
fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    for tube in TubeType::ALL {
        for freq in [1000.0, 7000.0] {
            for gain_db in [20.0, 35.0, 50.0, 60.0] {
                for level_db in [-20.0, 0.0, -60.0] {
                    v.push(Case {
                        tube,
                        freq,
                        gain_db,
                        level_db,
                    });
                }
            }
        }
    }
    v
}

/// The input: a sine at −18 dBFS peak, as host samples.
fn amplitude() -> f32 {
    10f64.powf(LEVEL_DBFS / 20.0) as f32
}

/// Both windows of a run, measured.
#[derive(Clone, Copy, Debug)]
struct Run {
    early: Measured,
    late: Measured,
}

impl Run {
    /// Largest change between the windows: (gain dB, Hk dB above −90 dBc,
    /// THD relative).
    fn drift(&self) -> (f64, f64, f64) {
        let (a, b) = (&self.early, &self.late);
        let hd = (0..REPORTED)
            .filter_map(|k| match (a.hd_dbc[k], b.hd_dbc[k]) {
                (Some(x), Some(y)) if x.max(y) > SETTLE_FLOOR_DBC => Some((x - y).abs()),
                _ => None,
            })
            .fold(0.0, f64::max);
        (
            (a.gain_db - b.gain_db).abs(),
            hd,
            (a.thd / b.thd - 1.0).abs(),
        )
    }
}

fn tube_index(t: TubeType) -> usize {
    TubeType::ALL.iter().position(|&x| x == t).unwrap()
}

/// The case in ngspice.
fn spice(c: &Case) -> Run {
    let s = measure::chain_settings(c.tube, c.gain_db, c.level_db);
    let amp = f64::from(amplitude()) * measure::volts_per_unit(&s);
    let params = vec![
        ("tube", tube_index(c.tube) as f64),
        ("gain", c.gain_db),
        ("level", c.level_db),
    ];
    let netlist = "preamp_wired.cir";
    let win = WINDOW as f64 / FS;
    let deck = Deck {
        netlist,
        params,
        source: format!("Vsig vin 0 SIN(0 {amp:.12e} {})", c.freq),
        t_start: SETTLE_S - 1e-4,
        t_stop: SETTLE_S + 2.0 * win + 1e-4,
        t_max: T_MAX,
        probes: vec!["v(vin)", "v(out)"],
    };
    let tr = deck.run();
    let at = |t0: f64| {
        let vin = tr.resample(0, t0, FS, WINDOW);
        let out = tr.resample(1, t0, FS, WINDOW);
        measure::measure(&vin, &out, c.freq)
    };
    Run {
        early: at(SETTLE_S),
        late: at(SETTLE_S + win),
    }
}

/// The case through the chain (the model as it is today).
fn model(c: &Case) -> Run {
    let s = measure::chain_settings(c.tube, c.gain_db, c.level_db);
    let start = (SETTLE_S * FS) as usize;
    // The output lags by the chain's latency (61 samples at 48 kHz, high):
    // render enough for the later window shifted by up to 128 samples.
    let len = start + 2 * WINDOW + 128;
    let x = util::sine(c.freq, f64::from(amplitude()), FS, len);
    let (vin, out, lat) = measure::render(s, &x);
    assert!(lat <= 128, "latency {lat}");
    let at = |i0: usize| {
        measure::measure(
            &vin[i0..i0 + WINDOW],
            &out[i0 + lat..i0 + lat + WINDOW],
            c.freq,
        )
    };
    Run {
        early: at(start),
        late: at(start + WINDOW),
    }
}

/// Model and ngspice of one case.
struct Row {
    case: Case,
    model: Run,
    spice: Run,
}

/// Whether `m` is within tolerance of `r`, and the differences.
fn compare(m: &Measured, r: &Measured) -> (bool, f64, [Option<f64>; REPORTED], f64) {
    let dg = m.gain_db - r.gain_db;
    let mut ok = dg.abs() <= GAIN_TOL_DB;
    let dh: [Option<f64>; REPORTED] = std::array::from_fn(|k| match (m.hd_dbc[k], r.hd_dbc[k]) {
        (Some(a), Some(b)) if a.max(b) > HD_FLOOR_DBC => Some(a - b),
        _ => None,
    });
    ok &= dh.iter().flatten().all(|d| d.abs() <= HD_TOL_DB);
    let dt = m.thd / r.thd - 1.0;
    ok &= dt.abs() <= THD_TOL;
    (ok, dg, dh, dt)
}

/// Run `cases` on [`THREADS`] threads (each case one ngspice
/// process and one chain render).
fn run_all(cases: &[Case]) -> Vec<Row> {
    let next = AtomicUsize::new(0);
    let rows = Mutex::new(Vec::new());
    std::thread::scope(|sc| {
        for _ in 0..THREADS {
            sc.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(c) = cases.get(i) else { break };
                let row = Row {
                    case: *c,
                    spice: spice(c),
                    model: model(c),
                };
                rows.lock().unwrap().push((i, row));
            });
        }
    });
    let mut rows = rows.into_inner().unwrap();
    rows.sort_by_key(|r| r.0);
    rows.into_iter().map(|r| r.1).collect()
}

fn fmt_hd(v: Option<f64>) -> String {
    v.map_or("    —".into(), |x| format!("{x:6.1}"))
}

fn fmt_d(v: Option<f64>) -> String {
    v.map_or("    —".into(), |x| format!("{x:+5.2}"))
}

/// The whole table: every case, model against ngspice, the differences,
/// `!!` where out of tolerance (`known` where `known` lists it). Returns
/// (table, cases out of tolerance not in `known`, cases in `known` within
/// tolerance).
fn table(
    title: &str,
    rows: &[Row],
    known: impl Fn(&Case) -> Option<&'static str>,
) -> (String, usize, usize) {
    let mut s = format!(
        "{title}\ntolerances: gain ±{GAIN_TOL_DB} dB, H2–H5 ±{HD_TOL_DB} dB above {HD_FLOOR_DBC} dBc, \
         THD ±{:.0} %; harmonics to 20 kHz only (at 7 kHz: H2)\n\
         tube   f/Hz gain level | gain model / spice  (Δ)   | H2 m / s  (Δ)      | H3 m / s  (Δ)      | \
         H4 m / s  (Δ)      | H5 m / s  (Δ)      | THD % m / s  (Δ rel)   | settle m / s\n",
        100.0 * THD_TOL
    );
    let (mut bad, mut fixed) = (0, 0);
    for r in rows {
        let (m, x) = (&r.model.late, &r.spice.late);
        let (ok, dg, dh, dt) = compare(m, x);
        let c = &r.case;
        let note = known(c);
        match (ok, note) {
            (false, None) => bad += 1,
            (true, Some(_)) => fixed += 1,
            _ => {}
        }
        let _ = write!(
            s,
            "{} {:5.0} {:4.0} {:5.0} | {:7.3} / {:7.3} ({:+6.3}) |",
            c.tube.name(),
            c.freq,
            c.gain_db,
            c.level_db,
            m.gain_db,
            x.gain_db,
            dg
        );
        for ((a, b), d) in m.hd_dbc.iter().zip(&x.hd_dbc).zip(&dh) {
            let _ = write!(s, " {} / {} ({}) |", fmt_hd(*a), fmt_hd(*b), fmt_d(*d));
        }
        let (dm, ds) = (r.model.drift(), r.spice.drift());
        let _ = writeln!(
            s,
            " {:7.4} / {:7.4} ({:+6.2} %) | {:.3}/{:.2}/{:.3} {:.3}/{:.2}/{:.3}{}",
            100.0 * m.thd,
            100.0 * x.thd,
            100.0 * dt,
            dm.0,
            dm.1,
            dm.2,
            ds.0,
            ds.1,
            ds.2,
            match (ok, note) {
                (true, None) => String::new(),
                (true, Some(_)) => "  (known miss now within tolerance)".into(),
                (false, None) => "  !!".into(),
                (false, Some(n)) => format!("  !! known: {n}"),
            }
        );
    }
    let _ = writeln!(
        s,
        "{bad} of {} cases out of tolerance (not counting the known misses); \
         {fixed} known misses within tolerance",
        rows.len()
    );
    (s, bad, fixed)
}

#[test]
fn wired_netlist_matches_the_model() {
    let all = cases();
    let rows = run_all(&all);
    let (t, bad, fixed) = table(
        "wired netlist (tests/spice/preamp_wired.cir) against the model",
        &rows,
        known_miss,
    );
    println!("{t}");
    assert_eq!(bad, 0, "out of tolerance:\n{t}");
    assert_eq!(
        fixed, 0,
        "a known miss is now within tolerance: take it off KNOWN_MISSES\n{t}"
    );
}

/// The reference stage alone (`stage.cir`) against the model's
/// [`TriodeStage`] fed the same way (an ideal source, as
/// `src/dsp/tube/tests.rs` drives it, at 192 kHz): 12AX7, 1 kHz, 0.05, 0.2
/// and 1.0 V peak at the grid.
#[test]
fn reference_stage_matches_ngspice() {
    let fs = 192_000.0;
    let mut s =
        String::from("reference stage (tests/spice/stage.cir), 12AX7, 1 kHz: model / ngspice\n");
    let mut bad = 0;
    for amp in [0.05, 0.2, 1.0] {
        let win = WINDOW as f64 / FS;
        let deck = Deck {
            netlist: "stage.cir",
            params: vec![("tube", 0.0)],
            source: format!("Vsig vin 0 SIN(0 {amp} 1000)"),
            t_start: SETTLE_S - 1e-4,
            t_stop: SETTLE_S + win + 1e-4,
            t_max: T_MAX,
            probes: vec!["v(vin)", "v(p)"],
        };
        let tr = deck.run();
        let vin = tr.resample(0, SETTLE_S, FS, WINDOW);
        let vp = tr.resample(1, SETTLE_S, FS, WINDOW);
        let spice = measure::measure(&vin, &vp, 1000.0);

        let mut st = TriodeStage::new(StageCircuit::REFERENCE, [0.0; 3]);
        st.prepare(&ProcessSpec::new(fs, 4096));
        st.set_tube_bias(TubeType::Tube12AX7, 0.0);
        let start = (SETTLE_S * fs) as usize;
        let n = (win * fs) as usize;
        let x: Vec<f64> = (0..start + n)
            .map(|i| amp * (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / fs).sin())
            .collect();
        let mut y = x.clone();
        st.process(&mut y);
        let model = measure::measure_at(fs, &x[start..], &y[start..], 1000.0);
        let (ok, dg, dh, dt) = compare(&model, &spice);
        if !ok {
            bad += 1;
        }
        let _ = writeln!(
            s,
            "{amp:4.2} V peak: gain {:.3} / {:.3} dB ({dg:+.3}), H2 {} / {} ({}), H3 {} / {} ({}), \
             THD {:.4} / {:.4} % ({:+.2} %){}",
            model.gain_db,
            spice.gain_db,
            fmt_hd(model.hd_dbc[0]),
            fmt_hd(spice.hd_dbc[0]),
            fmt_d(dh[0]),
            fmt_hd(model.hd_dbc[1]),
            fmt_hd(spice.hd_dbc[1]),
            fmt_d(dh[1]),
            100.0 * model.thd,
            100.0 * spice.thd,
            100.0 * dt,
            if ok { "" } else { "  !!" }
        );
    }
    println!("{s}");
    assert_eq!(bad, 0, "{s}");
}

/// The wired circuit's bias after a burst into grid current (12AX7, 1 kHz
/// at the comparison's level for 100 ms, then silence), in ngspice against
/// the time constants of the circuit, and the model against ngspice (time
/// constants within 10 %).
///
/// - Gain 50 / Level −20: stage 2's grid conducts on the peaks of ~10 V;
///   its cathode rises from the operating point (1.198 V) and falls back
///   with Ck2 against Rk2 ‖ (Ra + rp)/(μ + 1), the cathode's resistance
///   with the plate at Ra: 22 µF · 755 Ω ≈ 16.6 ms for a 12AX7.
/// - Gain 50 / Level 0: the grid is driven by all of stage 1's swing;
///   grid current charges Cc2 to tens of volts, which leaks off through
///   the pot and plate 1: 47 nF · (1 MΩ + Ra ‖ rp) ≈ 48.6 ms.
#[test]
fn wired_bias_recovers_after_grid_current() {
    let tube = TubeType::Tube12AX7;
    let (vk, _, rpa, mu) = measure::operating_point(tube);
    let amp =
        f64::from(amplitude()) * measure::volts_per_unit(&measure::chain_settings(tube, 50.0, 0.0));
    let (ra, rk, ck, cc) = (100e3, 1.5e3, 22e-6, 47e-9);
    let rp = ra * rpa / (ra - rpa);
    let tau_k = ck * rk * ((ra + rp) / (mu + 1.0)) / (rk + (ra + rp) / (mu + 1.0));
    let tau_g = cc * (1e6 + rpa);

    let r = bias::recovery(0, 50.0, -20.0, amp);
    let m = bias::model_recovery(tube, 50.0, -20.0, amp);
    let msg = format!("Level -20: ngspice {r:#?}, model {m:#?}, expected cathode tau {tau_k} s");
    println!("wired bias recovery, Gain 50, 12AX7: {msg}");
    let k = r.cathode;
    assert!((k.rest - vk).abs() < 5e-3, "{vk} {msg}");
    assert!(k.driven > k.rest + 0.1, "{msg}");
    for tau in [k.tau_1e_s, k.tau_fit_s] {
        assert!((tau / tau_k - 1.0).abs() < 0.1, "{msg}");
    }
    // The model's cathode recovers as ngspice's does: its time constant
    // (to 1/e) within 10 %. The model's is 8.6 % short (15.3 against
    // 16.7 ms; the log-linear fit 10.3 %, 14.1 against 15.7 ms): its
    // cathode sees the plate's AC load Ra ‖ 220 kΩ at every frequency,
    // where over tens of ms the output capacitor (0.47 µF into 220 kΩ)
    // begins to charge and the load moves towards Ra (17.0 ms with Ra).
    let mk = m.cathode;
    assert!((mk.rest - vk).abs() < 5e-3, "{vk} {msg}");
    // (Driven, it rises 13 % more than ngspice's: 0.286 against 0.253 V.)
    assert!(mk.driven > mk.rest + 0.1, "{msg}");
    assert!((mk.tau_1e_s / k.tau_1e_s - 1.0).abs() < 0.1, "{msg}");
    assert!((mk.tau_fit_s / k.tau_fit_s - 1.0).abs() < 0.15, "{msg}");

    let r = bias::recovery(0, 50.0, 0.0, amp);
    let m = bias::model_recovery(tube, 50.0, 0.0, amp);
    let msg = format!("Level 0: ngspice {r:#?}, model {m:#?}, expected grid tau {tau_g} s");
    println!("{msg}");
    let g = r.grid;
    assert!(g.rest.abs() < 1e-3 && g.released < -5.0, "{msg}");
    for tau in [g.tau_1e_s, g.tau_fit_s] {
        assert!((tau / tau_g - 1.0).abs() < 0.1, "{msg}");
    }
    // The model's grid (its interstage capacitor's charge at the wiper)
    // recovers as ngspice's does.
    let mg = m.grid;
    assert!(mg.rest.abs() < 1e-3 && mg.released < -5.0, "{msg}");
    for (tau, want) in [(mg.tau_1e_s, g.tau_1e_s), (mg.tau_fit_s, g.tau_fit_s)] {
        assert!(
            (tau / want - 1.0).abs() < 0.1,
            "grid tau {tau} vs {want}: {msg}"
        );
    }
}
