//! Moving a control while audio plays must not burst or click, through the
//! real plugin (the in-process CLAP host of `tests/common/clap.rs`).
//!
//! # The grid (`every_parameter_step_is_free_of_bursts_and_clicks`)
//!
//! Every parameter the plugin lists through the CLAP params extension (not
//! a hand list: a new parameter is covered automatically; host bypass and
//! Compare included; non-automatable or read-only ones are skipped with a
//! printed note) is stepped A→B in each of nine base states:
//!
//! * the defaults;
//! * preamp in, Auto Gain off, Gain 50 dB;
//! * the same in High quality (the tubes at 16×, the FIR half-bands);
//! * the solid-state preamp in, Auto Gain off, Gain 40 dB (clipping at its
//!   rails);
//! * preamp in with a dynamic mic on a 300 Ω input through the input
//!   transformer;
//! * DI in with a passive pickup source;
//! * headphone amp in, 120 Ω into the 32 Ω closed-back;
//! * every stage in (DI, preamp, headphone amp);
//! * every stage out (and a pro-line source: the exact identity).
//!
//! Values: a continuous parameter steps base→min, base→max, min→max and
//! max→min ("base" is its value in the base state: the default, or what the
//! base state sets); a stepped one (choice, on/off) steps from its base
//! value to every other step and back. Each step happens either at the first
//! sample of a 256-sample host block ("between blocks") or at sample 101 of
//! a block ("inside", a sample-accurate event that splits the block).
//!
//! Each transition is three renders of the same input with the same
//! pre-roll: A held, B held, and A→B (the event at `t0`). A fresh instance
//! is set up through `clap_plugin_params::flush` before activation, so each
//! run starts settled in its state; the A→B run must match its held A run
//! bit for bit before the change (checked). The pre-roll is [`PRE_ROLL`]
//! (0.5 s): the static part of the auto-gain is instant and its first
//! loudness estimate is used at once (after one 64-sample hop), so a held
//! run is level-steady long before that (held renders of 4 s, measured in
//! 200 ms steps, show no trend, only the ±1 dB the auto-gain wanders on
//! pink noise); the slow loudness correction (about 3 s) is what the A→B
//! run inherits from A, which is exactly what the test is about. Held
//! renders are cached by their full parameter state and shared between
//! transitions, and the renders run on `available_parallelism` threads.
//!
//! Checks, over the 400 ms after the change (plus [`LATENCY_ALLOWANCE`]
//! samples, so a change that acts behind the chain's latency is still seen
//! whole):
//!
//! * **burst**: stereo pink noise at −20 dBFS rms; no 5 ms window (hop
//!   2.5 ms) of the A→B run, per channel, more than [`BURST_DB`] above the
//!   louder of the two held runs in the same window (held levels below
//!   −100 dBFS count as −100 dBFS).
//! * **click**: a 100 Hz sine at −20 dBFS (peak 0.1) on both channels; the
//!   output high-passed at 4 kHz (4th-order Butterworth), in 10 ms windows
//!   (hop 5 ms): the A→B run's band power must be below [`CLICK_REL_DB`]
//!   relative to the signal (the mean power of the louder held run over the
//!   same 400 ms), or within [`CLICK_HELD_DB`] of the louder held run's band
//!   power in that window (a distorting preamp has harmonics there of its
//!   own). The reported "violation" is how far past both limits it went.
//!
//! # The random run (`random_automation_stays_finite_and_bounded`)
//!
//! 60 s of stereo pink noise at −20 dBFS, the plugin at its defaults (Auto
//! Gain on, kept on), every other automatable parameter moved to a random
//! value (every step equally likely for stepped ones) at random sample
//! positions, each on its own schedule of 10–200 ms. The output must be
//! finite, and no 5 ms window of it more than 6 dB above the loudest 5 ms
//! window of the input. See [`CLAMPED_TO_0_DB`] for the gains that are
//! limited to 0 dB there, and why nothing else needs to be.
//!
//! Failures are collected and reported once, at the end, as a table (base
//! state, parameter, A→B, position, measured value, sample of the worst
//! window relative to the change); the worst case of each check is printed
//! even when everything passes (`-- --nocapture`).
//!
//! `TUBELINE_MOTION_PARAMS=gain,pre_on` (CLAP display names or string IDs
//! hashed to CLAP IDs, comma-separated) restricts the grid to some
//! parameters, for working on a fix.
//!
//! Run: `cargo test --test motion -- --nocapture`. Debug build, 2 cores:
//! about 75–90 s for the grid (3438 renders of 0.92 s), 5 s for the random
//! run, which run side by side; the timing is printed at the end.

#[path = "common/clap.rs"]
mod host;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use clack_extensions::params::ParamInfoFlags;
use clack_host::prelude::ClapId;

use host::{on_audio_thread, param_hash, pid, Automation, ParamDesc, Plugin};

const SR: f64 = 48_000.0;
/// Host block size.
const BLOCK: usize = 256;
/// Pre-roll before the change: 94 blocks (0.501 s). See the module docs.
const PRE_ROLL: usize = 94 * BLOCK;
/// Offset of the "inside a block" event in its block.
const INSIDE: usize = 101;
/// 400 ms after the change.
const POST: usize = 19_200;
/// Extra samples analysed after the 400 ms: more than the chain's largest
/// latency (High quality plus the mic source and the headphone amp, 75 samples
/// at 48 kHz).
const LATENCY_ALLOWANCE: usize = 256;
/// Burst window and hop (5 ms, 2.5 ms).
const BURST_WIN: usize = 240;
const BURST_HOP: usize = 120;
/// Click window and hop (10 ms, 5 ms).
const CLICK_WIN: usize = 480;
const CLICK_HOP: usize = 240;
/// Pass limits.
const BURST_DB: f64 = 1.5;
const CLICK_REL_DB: f64 = -50.0;
const CLICK_HELD_DB: f64 = 6.0;
/// Floor of a held window's power, per sample (−100 dBFS).
const POWER_FLOOR: f64 = 1e-10;
/// Length of every grid render: the later change position, the analysed
/// span and one window, rounded up to whole blocks.
const RUN_LEN: usize =
    (PRE_ROLL + INSIDE + POST + LATENCY_ALLOWANCE + CLICK_WIN).div_ceil(BLOCK) * BLOCK;

/// Where in the host block the change happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Position {
    /// At the first sample of a block.
    Between,
    /// At sample [`INSIDE`] of a block.
    Inside,
}

impl Position {
    const ALL: [Position; 2] = [Position::Between, Position::Inside];

    /// Sample index of the change.
    fn t0(self) -> usize {
        match self {
            Position::Between => PRE_ROLL,
            Position::Inside => PRE_ROLL + INSIDE,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Position::Between => "between",
            Position::Inside => "inside",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Signal {
    /// Stereo pink noise at −20 dBFS rms (the burst check).
    Noise,
    /// 100 Hz sine at −20 dBFS on both channels (the click check).
    Sine,
}

// ---------------------------------------------------------------------------
// Signals and measurements (plain formulas, independent of the plugin)
// ---------------------------------------------------------------------------

/// xorshift64 with a uniform and an integer draw.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform integer in lo ..= hi.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }
}

/// Pink noise (Paul Kellet's refined filter on white noise), scaled to
/// `rms_dbfs`.
fn pink(len: usize, seed: u64, rms_dbfs: f64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let mut b = [0.0f64; 7];
    let warmup = 48_000;
    let mut x: Vec<f64> = (0..len + warmup)
        .map(|_| {
            let w = 2.0 * rng.uniform() - 1.0;
            b[0] = 0.99886 * b[0] + w * 0.055_517_9;
            b[1] = 0.99332 * b[1] + w * 0.075_075_9;
            b[2] = 0.96900 * b[2] + w * 0.153_852_0;
            b[3] = 0.86650 * b[3] + w * 0.310_485_6;
            b[4] = 0.55000 * b[4] + w * 0.532_952_2;
            b[5] = -0.7616 * b[5] - w * 0.016_898_0;
            let y = b.iter().sum::<f64>() + w * 0.5362;
            b[6] = w * 0.115_926;
            y
        })
        .collect();
    x.drain(..warmup);
    let mean = x.iter().sum::<f64>() / len as f64;
    let rms = (x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / len as f64).sqrt();
    let k = 10f64.powf(rms_dbfs / 20.0) / rms;
    x.iter().map(|v| ((v - mean) * k) as f32).collect()
}

fn stereo_pink(len: usize, seed: u64) -> Vec<Vec<f32>> {
    vec![pink(len, seed, -20.0), pink(len, seed + 1, -20.0)]
}

fn stereo_sine(len: usize) -> Vec<Vec<f32>> {
    let s: Vec<f32> = (0..len)
        .map(|i| (0.1 * (std::f64::consts::TAU * 100.0 * i as f64 / SR).sin()) as f32)
        .collect();
    vec![s.clone(), s]
}

/// 4th-order Butterworth high-pass (two RBJ biquads) at `fc`, run over the
/// whole signal.
fn highpass(x: &[f32], fc: f64) -> Vec<f64> {
    let w0 = std::f64::consts::TAU * fc / SR;
    let mut y: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    // Q of the two sections of a 4th-order Butterworth.
    for q in [0.541_196_100_146_197, 1.306_562_964_876_377] {
        let alpha = w0.sin() / (2.0 * q);
        let c = w0.cos();
        let a0 = 1.0 + alpha;
        let (b0, b1, b2) = ((1.0 + c) / 2.0 / a0, -(1.0 + c) / a0, (1.0 + c) / 2.0 / a0);
        let (a1, a2) = (-2.0 * c / a0, (1.0 - alpha) / a0);
        let (mut z1, mut z2) = (0.0, 0.0);
        for v in y.iter_mut() {
            let out = b0 * *v + z1;
            z1 = b1 * *v - a1 * out + z2;
            z2 = b2 * *v - a2 * out;
            *v = out;
        }
    }
    y
}

/// Sums of squares of `x` in windows of `win` starting at `t0 + k·hop`,
/// covering `span` samples from `t0`.
fn window_energies(
    x: impl Fn(usize) -> f64,
    t0: usize,
    span: usize,
    win: usize,
    hop: usize,
) -> Vec<f64> {
    (0..)
        .map(|k| t0 + k * hop)
        .take_while(|&s| s < t0 + span)
        .map(|s| (s..s + win).map(|i| x(i).powi(2)).sum())
        .collect()
}

/// The analysed span after the change.
const SPAN: usize = POST + LATENCY_ALLOWANCE;

/// What the checks need from one render, at one change position.
#[derive(Clone, Debug, Default)]
struct Features {
    /// Per channel: window energies (noise: 5 ms full band; sine: 10 ms
    /// above 4 kHz).
    windows: [Vec<f64>; 2],
    /// Per channel: mean power over the span (sine only).
    power: [f64; 2],
    /// Non-finite samples anywhere in the render.
    non_finite: bool,
    /// Fingerprint of the output before the change (both channels, exact
    /// bits): an A→B run must match its held A run there.
    before: u64,
}

/// FNV-1a over the bits of `x[..end]` of every channel.
fn fingerprint(x: &[Vec<f32>], end: usize) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for v in x.iter().flat_map(|c| &c[..end]) {
        h = (h ^ u64::from(v.to_bits())).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn features(out: &[Vec<f32>], signal: Signal, pos: Position) -> Features {
    let t0 = pos.t0();
    let non_finite = out.iter().flatten().any(|v| !v.is_finite());
    let mut f = Features {
        non_finite,
        before: fingerprint(out, t0),
        ..Features::default()
    };
    for (c, x) in out.iter().enumerate().take(2) {
        match signal {
            Signal::Noise => {
                f.windows[c] = window_energies(|i| f64::from(x[i]), t0, SPAN, BURST_WIN, BURST_HOP);
            }
            Signal::Sine => {
                let hf = highpass(x, 4000.0);
                f.windows[c] = window_energies(|i| hf[i], t0, SPAN, CLICK_WIN, CLICK_HOP);
                f.power[c] = x[t0..t0 + SPAN]
                    .iter()
                    .map(|&v| f64::from(v).powi(2))
                    .sum::<f64>()
                    / SPAN as f64;
            }
        }
    }
    f
}

fn db(ratio: f64) -> f64 {
    10.0 * ratio.log10()
}

/// The worst window of an A→B run against its held runs: (amount past the
/// limit in dB, positive = fail; sample offset of the window from the
/// change; description).
fn judge(signal: Signal, ab: &Features, a: &Features, b: &Features) -> (f64, usize, String) {
    if ab.non_finite {
        return (f64::INFINITY, 0, "non-finite output".into());
    }
    if ab.before != a.before {
        // Not a burst: the test's own premise (same input, same pre-roll,
        // a settled start in every run) does not hold.
        return (
            f64::INFINITY,
            0,
            "output before the change differs from held A's".into(),
        );
    }
    let mut worst = (f64::NEG_INFINITY, 0, String::new());
    for c in 0..2 {
        let n = ab.windows[c].len();
        for k in 0..n {
            let (e, ea, eb) = (ab.windows[c][k], a.windows[c][k], b.windows[c][k]);
            let (v, what) = match signal {
                Signal::Noise => {
                    let held = ea.max(eb).max(POWER_FLOOR * BURST_WIN as f64);
                    let excess = db(e / held);
                    (
                        excess - BURST_DB,
                        format!("{excess:+.1} dB over held, ch {c}"),
                    )
                }
                Signal::Sine => {
                    let reference = a.power[c].max(b.power[c]).max(POWER_FLOOR);
                    let rel = db(e / CLICK_WIN as f64 / reference);
                    let held = ea.max(eb).max(1e-30);
                    let excess = db(e.max(1e-30) / held);
                    (
                        (rel - CLICK_REL_DB).min(excess - CLICK_HELD_DB),
                        format!("HF {rel:.1} dB re signal, {excess:+.1} dB over held, ch {c}"),
                    )
                }
            };
            if v > worst.0 {
                let hop = match signal {
                    Signal::Noise => BURST_HOP,
                    Signal::Sine => CLICK_HOP,
                };
                worst = (v, k * hop, what);
            }
        }
    }
    worst
}

// ---------------------------------------------------------------------------
// Rendering through the CLAP host
// ---------------------------------------------------------------------------

/// A parameter state: CLAP values by CLAP ID (those not named keep their
/// defaults).
type State = BTreeMap<u32, f64>;

/// A state as a hashable key (values by bit pattern).
fn key(state: &State) -> Vec<(u32, u64)> {
    state.iter().map(|(&id, v)| (id, v.to_bits())).collect()
}

/// Renders through fresh plugin instances, each set up through
/// `clap_plugin_params::flush` before activation, so every run starts
/// settled in its state (a held run and an A→B run must agree sample for
/// sample up to the change, and the checks verify that they do).
///
/// Instances are not destroyed at once: nice-plug shares one background
/// thread between all instances of a process, and that thread exits for
/// good when it picks up a task whose instance is already gone (the
/// headphone-curve task the plugin posts when the model switches to a
/// measured curve). Every later task is then dropped, and destroying the
/// last instance aborts the process. So the last [`KEEP_ALIVE`] instances
/// stay alive (their tasks long run by the time they go), and [`retire`]
/// waits before the rest go.
#[derive(Default)]
struct Runner {
    finished: VecDeque<Plugin>,
}

/// Instances kept alive after their run (see [`Runner`]).
const KEEP_ALIVE: usize = 8;

impl Runner {
    /// Render `input` through a fresh instance with `state` set before
    /// activation, then `events`, in 256-sample blocks.
    fn render(
        &mut self,
        state: &State,
        input: &[Vec<f32>],
        events: &[Automation],
    ) -> Vec<Vec<f32>> {
        let mut p = Plugin::new();
        let changes: Vec<(ClapId, f64)> =
            state.iter().map(|(&id, &v)| (ClapId::new(id), v)).collect();
        p.flush_params(&changes);
        let mut proc = p.activate(SR, 2, BLOCK);
        p.pump();
        let out = on_audio_thread(|| {
            proc.start();
            let out = proc.run(input, &[BLOCK], events);
            proc.stop();
            out
        });
        p.pump();
        p.deactivate(proc);
        self.finished.push_back(p);
        if self.finished.len() > KEEP_ALIVE {
            self.finished.pop_front();
        }
        out
    }
}

/// Drop instances that have processed, after giving nice-plug's shared
/// background thread time to run any task they posted (see [`Runner`]).
fn retire(plugins: impl IntoIterator<Item = Plugin>) {
    std::thread::sleep(std::time::Duration::from_millis(200));
    plugins.into_iter().for_each(drop);
}

/// `f` over `items` on `available_parallelism` threads, each with a
/// [`Runner`] of its own, results in order.
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&mut Runner, &T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(items.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut runner = Runner::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= items.len() {
                        break;
                    }
                    let r = f(&mut runner, &items[i]);
                    results.lock().unwrap()[i] = Some(r);
                }
                retire(runner.finished);
            });
        }
    });
    results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|r| r.expect("every item was processed"))
        .collect()
}

// ---------------------------------------------------------------------------
// The grid
// ---------------------------------------------------------------------------

/// The base states, as (parameter string ID, display text) pairs the plugin
/// parses through `clap_plugin_params::text_to_value`.
const BASES: [(&str, &[(&str, &str)]); 9] = [
    ("defaults", &[]),
    (
        "pre in, AG off, Gain 50",
        &[("pre_on", "On"), ("auto_gain", "Off"), ("gain", "50")],
    ),
    (
        "High, pre in, AG off, Gain 50",
        &[
            ("quality", "High"),
            ("pre_on", "On"),
            ("auto_gain", "Off"),
            ("gain", "50"),
        ],
    ),
    (
        "solid-state in, AG off, Gain 40",
        &[
            ("pre_on", "On"),
            ("pre_type", "Solid-state"),
            ("auto_gain", "Off"),
            ("gain", "40"),
        ],
    ),
    (
        "dynamic mic, 300 ohm, transformer",
        &[
            ("pre_on", "On"),
            ("mic", "Dynamic"),
            ("in_z", "300 ohm"),
            ("in_xfmr", "On"),
        ],
    ),
    (
        "DI in, pickup",
        &[("di_on", "On"), ("di_source", "Passive pickup")],
    ),
    (
        "HP 120 ohm into 32",
        &[
            ("hp_on", "On"),
            ("amp_z", "120"),
            ("hp_model", "32 ohm closed-back"),
        ],
    ),
    (
        "every stage in",
        &[("di_on", "On"), ("pre_on", "On"), ("hp_on", "On")],
    ),
    (
        "every stage out",
        &[
            ("di_on", "Off"),
            ("pre_on", "Off"),
            ("hp_on", "Off"),
            ("source", "Pro line +4 dBu"),
        ],
    ),
];

/// The parameters to step: automatable, writable, not hidden.
fn steppable(descs: &[ParamDesc]) -> Vec<ParamDesc> {
    let filter = std::env::var("TUBELINE_MOTION_PARAMS").ok();
    let wanted = |d: &ParamDesc| match &filter {
        None => true,
        Some(f) => f
            .split(',')
            .map(str::trim)
            .any(|w| w.eq_ignore_ascii_case(&d.name) || param_hash(w) == d.id),
    };
    let mut out = Vec::new();
    for d in descs {
        let skip = !d.flags.contains(ParamInfoFlags::IS_AUTOMATABLE)
            || d.flags.contains(ParamInfoFlags::IS_READONLY)
            || d.flags.contains(ParamInfoFlags::IS_HIDDEN);
        if skip {
            println!("note: skipping \"{}\" (flags {:?})", d.name, d.flags);
        } else if wanted(d) {
            out.push(d.clone());
        }
    }
    out
}

fn stepped(d: &ParamDesc) -> bool {
    d.flags.contains(ParamInfoFlags::IS_STEPPED)
}

/// The A→B pairs for a parameter whose base-state value is `base`.
fn transitions(d: &ParamDesc, base: f64) -> Vec<(f64, f64)> {
    let mut pairs = Vec::new();
    if stepped(d) {
        let steps = (d.max - d.min).round() as usize;
        for i in 0..=steps {
            let v = d.min + i as f64;
            if v != base {
                pairs.push((base, v));
                pairs.push((v, base));
            }
        }
    } else {
        for pair in [(base, d.min), (base, d.max), (d.min, d.max), (d.max, d.min)] {
            if pair.0 != pair.1 && !pairs.contains(&pair) {
                pairs.push(pair);
            }
        }
    }
    pairs
}

struct Transition {
    base: usize,
    param: usize,
    a: f64,
    b: f64,
}

/// One A→B render to do.
struct Job {
    transition: usize,
    pos: Position,
    signal: Signal,
}

/// One judged A→B render.
#[derive(Clone)]
struct Outcome {
    transition: usize,
    pos: Position,
    signal: Signal,
    /// Amount past the limit (dB); > 0 fails.
    violation: f64,
    /// Sample of the worst window, from the change.
    offset: usize,
    what: String,
}

#[test]
fn every_parameter_step_is_free_of_bursts_and_clicks() {
    let started = Instant::now();
    let mut p = Plugin::new();
    let descs = p.param_descs();
    let params = steppable(&descs);

    // Base states as CLAP values.
    let bases: Vec<State> = BASES
        .iter()
        .map(|(name, set)| {
            set.iter()
                .map(|(id, text)| {
                    let v = p
                        .text_to_value(id, text)
                        .unwrap_or_else(|| panic!("base \"{name}\": cannot parse {id}={text:?}"));
                    (param_hash(id), v)
                })
                .collect()
        })
        .collect();
    let value_in = |state: &State, d: &ParamDesc| state.get(&d.id).copied().unwrap_or(d.default);
    let with = |state: &State, d: &ParamDesc, v: f64| {
        let mut s = state.clone();
        if v == d.default {
            s.remove(&d.id);
        } else {
            s.insert(d.id, v);
        }
        s
    };

    let mut trans = Vec::new();
    for (bi, base) in bases.iter().enumerate() {
        for (pi, d) in params.iter().enumerate() {
            for (a, b) in transitions(d, value_in(base, d)) {
                trans.push(Transition {
                    base: bi,
                    param: pi,
                    a,
                    b,
                });
            }
        }
    }

    // Held renders, deduplicated by their whole state.
    let mut held_states: Vec<State> = Vec::new();
    let mut held_index: HashMap<Vec<(u32, u64)>, usize> = HashMap::new();
    let mut held_of = |s: State| -> usize {
        *held_index.entry(key(&s)).or_insert_with(|| {
            held_states.push(s);
            held_states.len() - 1
        })
    };
    let trans_held: Vec<(usize, usize)> = trans
        .iter()
        .map(|t| {
            let d = &params[t.param];
            let base = &bases[t.base];
            (held_of(with(base, d, t.a)), held_of(with(base, d, t.b)))
        })
        .collect();

    let noise = stereo_pink(RUN_LEN, 11);
    let sine = stereo_sine(RUN_LEN);
    let input = |s: Signal| match s {
        Signal::Noise => &noise,
        Signal::Sine => &sine,
    };

    let held_jobs: Vec<(usize, Signal)> = (0..held_states.len())
        .flat_map(|h| [(h, Signal::Noise), (h, Signal::Sine)])
        .collect();
    println!(
        "{} parameters, {} base states, {} transitions: {} held renders, {} A→B renders \
         of {:.2} s each",
        params.len(),
        bases.len(),
        trans.len(),
        held_jobs.len(),
        trans.len() * 4,
        RUN_LEN as f64 / SR
    );
    let held: Vec<[Features; 2]> = par_map(&held_jobs, |runner, &(h, signal)| {
        let out = runner.render(&held_states[h], input(signal), &[]);
        Position::ALL.map(|pos| features(&out, signal, pos))
    });
    let held_feature = |h: usize, signal: Signal, pos: Position| {
        let i = 2 * h + usize::from(signal == Signal::Sine);
        &held[i][usize::from(pos == Position::Inside)]
    };
    let held_done = started.elapsed();

    let jobs: Vec<Job> = (0..trans.len())
        .flat_map(|t| {
            Position::ALL.into_iter().flat_map(move |pos| {
                [Signal::Noise, Signal::Sine].map(|signal| Job {
                    transition: t,
                    pos,
                    signal,
                })
            })
        })
        .collect();
    let outcomes: Vec<Outcome> = par_map(&jobs, |runner, j| {
        let t = &trans[j.transition];
        let d = &params[t.param];
        let state = with(&bases[t.base], d, t.a);
        let event = Automation {
            time: j.pos.t0(),
            id: ClapId::new(d.id),
            value: t.b,
        };
        let out = runner.render(&state, input(j.signal), &[event]);
        let f = features(&out, j.signal, j.pos);
        let (ha, hb) = trans_held[j.transition];
        let (violation, offset, what) = judge(
            j.signal,
            &f,
            held_feature(ha, j.signal, j.pos),
            held_feature(hb, j.signal, j.pos),
        );
        Outcome {
            transition: j.transition,
            pos: j.pos,
            signal: j.signal,
            violation,
            offset,
            what,
        }
    });
    let elapsed = started.elapsed();

    // Report.
    let describe = |o: &Outcome, p: &mut Plugin| {
        let t = &trans[o.transition];
        let d = &params[t.param];
        let id = ClapId::new(d.id);
        format!(
            "{:<24} {:<22} {:>20} → {:<20} {:<7} {:>+7.1} dB  @{:>6}  {}",
            BASES[t.base].0,
            d.name,
            p.text_by_id(id, t.a),
            p.text_by_id(id, t.b),
            o.pos.name(),
            o.violation,
            o.offset,
            o.what
        )
    };
    let mut report = String::new();
    let mut failed = 0;
    for (signal, check, limit) in [
        (
            Signal::Noise,
            "burst",
            format!("5 ms window ≤ {BURST_DB} dB over the louder held run"),
        ),
        (
            Signal::Sine,
            "click",
            format!(
                "> 4 kHz in 10 ms ≤ {CLICK_REL_DB} dB re signal or ≤ {CLICK_HELD_DB} dB over held"
            ),
        ),
    ] {
        let of_check: Vec<&Outcome> = outcomes.iter().filter(|o| o.signal == signal).collect();
        let worst = of_check
            .iter()
            .max_by(|x, y| x.violation.total_cmp(&y.violation))
            .expect("at least one transition");
        let _ = writeln!(
            report,
            "\n== {check} ({limit}); violation = dB past the limit, \
             @ = samples after the change (at {} between blocks, {} inside)",
            Position::Between.t0(),
            Position::Inside.t0()
        );
        let _ = writeln!(report, "worst: {}", describe(worst, &mut p));
        // Worst failure per (base, parameter).
        let mut per: BTreeMap<(usize, usize), &Outcome> = BTreeMap::new();
        for o in of_check.iter().filter(|o| o.violation > 0.0) {
            let t = &trans[o.transition];
            let e = per.entry((t.base, t.param)).or_insert(o);
            if o.violation > e.violation {
                *e = o;
            }
        }
        let n_fail = of_check.iter().filter(|o| o.violation > 0.0).count();
        failed += n_fail;
        let _ = writeln!(
            report,
            "{n_fail} of {} {check} runs fail; worst per base state and parameter:",
            of_check.len()
        );
        let _ = writeln!(
            report,
            "{:<24} {:<22} {:>20} → {:<20} {:<7} {:>10}  {:>7}  measured",
            "base state", "parameter", "A", "B", "where", "violation", "@"
        );
        for o in per.values() {
            let _ = writeln!(report, "{}", describe(o, &mut p));
        }
    }
    let _ = writeln!(
        report,
        "\ntiming: held renders {:.1} s, total {:.1} s on {} threads",
        held_done.as_secs_f64(),
        elapsed.as_secs_f64(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("{report}");
    // The instance goes before a failing assertion: dropping one while
    // unwinding aborts the test binary (nice-plug's background thread).
    drop(p);
    assert_eq!(failed, 0, "{failed} runs burst or click (table above)");
}

// ---------------------------------------------------------------------------
// The random automation run
// ---------------------------------------------------------------------------

/// Gains a user can turn up: limited to 0 dB in the random run.
///
/// The criterion is "no 5 ms window more than 6 dB above the loudest 5 ms
/// window of the input". What a physically correct chain can do to the
/// level, with Auto Gain on:
///
/// * input trim: a plain gain when the preamp is out (the auto-gain only
///   acts with the preamp in) → ≤ 0 dB;
/// * preamp output level: applied after the auto-gain, so it is a plain
///   gain even with auto-gain → ≤ 0 dB;
/// * amp volume and output trim: plain gains after everything → ≤ 0 dB;
/// * source and calibration: the source only lowers the level (pro line is
///   unity, mic 54 dB down), calibration changes nothing on its own;
/// * DI: a step-down transformer (−18 … −22 dB), its resonances and the
///   pickup's peak stay well under that loss;
/// * preamp Gain, Level, tube, bias, pad, high-pass: the auto-gain brings
///   the output back to the track's K-weighted loudness (instant static
///   part; slow part limited by its own rules), so a window can only stand
///   out by crest factor and spectral tilt, a few dB;
/// * headphone amp: V·Z/(Z+Zo) has |·| ≤ 1 for any passive load (Re Z ≥ 0);
///   with Normalize the 1 kHz level is restored and the rest of the band
///   keeps the load's shape (a resonance or the IEM's top octave a few dB
///   up in a narrow band: about +1 dB of pink-noise power); the swing limit
///   only lowers peaks;
/// * mix, bypass, compare: blends of two signals each no louder than the
///   other paths, so no louder than the louder of them;
/// * ground lift off: −65 dBu of hum, far below a −20 dBFS track except
///   where a mic-level source is amplified, and then the auto-gain's
///   loudness matching includes it.
const CLAMPED_TO_0_DB: [&str; 4] = ["in_trim", "pre_out", "amp_vol", "out_trim"];

#[test]
fn random_automation_stays_finite_and_bounded() {
    let started = Instant::now();
    let len = 60 * 48_000;
    let mut p = Plugin::new();
    let descs = p.param_descs();
    let auto_gain = param_hash("auto_gain");
    assert_eq!(p.value("auto_gain"), 1.0, "Auto Gain is on by default");

    // Every automatable parameter but Auto Gain, on its own random schedule.
    let mut rng = Rng::new(0x7ab3_11e5);
    let mut events = Vec::new();
    for d in &descs {
        if d.id == auto_gain
            || !d.flags.contains(ParamInfoFlags::IS_AUTOMATABLE)
            || d.flags.contains(ParamInfoFlags::IS_READONLY)
        {
            continue;
        }
        let clamped = CLAMPED_TO_0_DB
            .into_iter()
            .find(|id| param_hash(id) == d.id);
        let max = match clamped {
            Some(id) => p
                .text_to_value(id, "0")
                .unwrap_or_else(|| panic!("{id}: cannot parse 0 dB")),
            None => d.max,
        };
        let mut t = rng.range(480, 9600);
        while t < len {
            let value = if stepped(d) {
                d.min + rng.range(0, (max - d.min).round() as usize) as f64
            } else {
                d.min + rng.uniform() * (max - d.min)
            };
            events.push(Automation {
                time: t,
                id: ClapId::new(d.id),
                value,
            });
            t += rng.range(480, 9600);
        }
    }
    events.sort_by_key(|e| e.time);

    let input = stereo_pink(len, 101);
    // Block by block as in `Runner::render`, but the host's main thread runs every
    // 8 blocks: each parameter event posts a task for the editor, and
    // nice-plug's queue (4096) would overflow in a few hundred blocks.
    let mut output = vec![vec![f32::NAN; len]; 2];
    let mut q = Plugin::new();
    let mut proc = q.activate(SR, 2, BLOCK);
    q.pump();
    on_audio_thread(|| proc.start());
    for chunk in (0..len).step_by(8 * BLOCK) {
        on_audio_thread(|| {
            for start in (chunk..(chunk + 8 * BLOCK).min(len)).step_by(BLOCK) {
                let n = BLOCK.min(len - start);
                proc.process_block(&input, &mut output, start, n, &events);
            }
        });
        q.pump();
    }
    on_audio_thread(|| proc.stop());
    q.pump();
    q.deactivate(proc);
    retire([q]);

    let loudest = |x: &[f32]| {
        (0..x.len() - BURST_WIN)
            .step_by(BURST_HOP)
            .map(|s| {
                let e: f64 = x[s..s + BURST_WIN]
                    .iter()
                    .map(|&v| f64::from(v).powi(2))
                    .sum();
                (db(e / BURST_WIN as f64), s)
            })
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .unwrap()
    };
    let input_max = input.iter().map(|c| loudest(c).0).fold(f64::MIN, f64::max);
    let mut failures = Vec::new();
    let mut report = format!(
        "random automation: {} events over 60 s; loudest 5 ms window of the input {:.1} dBFS\n",
        events.len(),
        input_max
    );
    for (c, ch) in output.iter().enumerate() {
        if let Some(i) = ch.iter().position(|v| !v.is_finite()) {
            failures.push(format!("ch {c}: sample {i} is {}", ch[i]));
            continue;
        }
        let (level, at) = loudest(ch);
        let excess = level - input_max;
        let _ = writeln!(
            report,
            "ch {c}: loudest output window {level:.1} dBFS at sample {at} ({:.3} s): \
             {excess:+.1} dB over the input's loudest (limit +6)",
            at as f64 / SR
        );
        if excess > 6.0 {
            failures.push(format!("ch {c}: {excess:+.1} dB at sample {at}"));
            let _ = writeln!(report, "  events in the 200 ms before it:");
            for e in events
                .iter()
                .filter(|e| e.time + 9600 >= at && e.time <= at + BURST_WIN)
            {
                let name = descs
                    .iter()
                    .find(|d| d.id == e.id.get())
                    .map_or("?", |d| d.name.as_str());
                let _ = writeln!(
                    report,
                    "    @{:>8} {:<22} {}",
                    e.time,
                    name,
                    p.text_by_id(e.id, e.value)
                );
            }
        }
    }
    let _ = writeln!(report, "timing: {:.1} s", started.elapsed().as_secs_f64());
    println!("{report}");
    drop(p);
    assert!(failures.is_empty(), "random automation: {failures:?}");
}

#[test]
fn the_grid_enumerates_every_listed_parameter() {
    // The grid takes its parameters from the plugin: this pins that the
    // listing it relies on is there (and holds the crossfaded switches).
    let mut p = Plugin::new();
    let descs = p.param_descs();
    assert!(descs.len() >= 30, "{} parameters listed", descs.len());
    for id in ["bypass", "compare", "quality", "pre_on", "gain"] {
        assert!(
            descs.iter().any(|d| d.id == pid(id).get()),
            "\"{id}\" is listed"
        );
    }
}
