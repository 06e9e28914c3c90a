//! The mic source: a microphone's output impedance Z_mic(f) loaded by the
//! preamp's input impedance Z_in (a resistance, the positions of a real
//! impedance switch). The preamp input gets
//!
//! ```text
//!   V_in = V_mic · Z_in / (Z_in + Z_mic(jw))
//! ```
//!
//! Units: volts in (the mic's open-circuit voltage), volts out (at the
//! preamp's input terminals). Latency: `LATENCY` = 6 samples at every
//! rate, for every model, `None` included (there the stage is an exact
//! 6-sample delay), so switching the mic never changes the chain's
//! latency.
//!
//! # The networks (values in `mic/networks.rs`, referred to the pins)
//!
//! * `Dynamic` (Shure SM57/SM58 class): Z = R_dc + (L_e || R_e) + Z_m,
//!   Z_m the diaphragm's motional impedance, a parallel R-L-C
//!   (Thiele/Small electrical analogue, as the headphone loads),
//!   L_m = R_m / (w0 Q), C_m = Q / (w0 R_m). R_dc 140 Ω, L_e 40 mH with
//!   an eddy-loss R_e 450 Ω across it, R_m 180 Ω at f0 150 Hz, Q 1.4.
//!   |Z|: 143 Ω at 20 Hz, a bump to 325 Ω at 150 Hz, a dip to 186 Ω at
//!   300 Hz, 303 Ω at 1 kHz, 557 Ω at 5 kHz, 588 Ω at 20 kHz.
//!   Sources: Shure's SM57/SM58 specification, "rated impedance 150 Ω
//!   (300 Ω actual)" (the 1 kHz value); Bill Whitlock's measurements of an
//!   SM57 (ProAudio list, 2021-06-12, from the research for Jensen
//!   AN-005): "under 150 Ω at very low frequencies to over 300 Ω at
//!   resonance — and continued to rise at higher frequencies"; an SM57
//!   clone's sweep (EEVblog forum, "What is inductance of typical dynamic
//!   microphone?", 2023) "a lot flatter and more resistive than I
//!   expected", hence the lossy inductance (L_e || R_e) that levels off
//!   instead of a pure L rising 6 dB/octave. The coil sits behind its own
//!   transformer; its values are given referred through it, the windings'
//!   resistance lumped into R_dc.
//! * `Ribbon` (passive, Royer R-121 / Coles 4038 class, rated 300 Ω):
//!   Z = R_w + n² (R_r + Z_r) + s L_k. A ribbon of R_r 0.19 Ω and its
//!   resonance Z_r (parallel R-L-C: 0.612 Ω peak at 30 Hz, Q 2; a ribbon
//!   is tuned to the bottom of the band and mass-controlled above it)
//!   stepped up by a 1:35 transformer (n² = 1225), plus the secondary's
//!   winding resistance R_w 60 Ω and leakage inductance L_k 2.5 mH.
//!   |Z|: 1043 Ω at the 30 Hz peak, 334 Ω at 100 Hz, 293 Ω at 1 kHz,
//!   332 Ω at 10 kHz, 429 Ω at 20 kHz. Sources: Royer Labs, "Preamplifier
//!   input impedance" (FAQ): a 300 Ω ribbon needs 1200–1500 Ω or more, a
//!   low input impedance gives "rolled off bass and slightly diminished
//!   highs" (the peak and the rise here); D. Self, *Small Signal Audio
//!   Design*, 3rd ed., ch. 17: the step-up transformer's output is
//!   "usually around 200–300 Ω"; AEA, "How impedance affects ribbon
//!   microphones": too low an input impedance limits the low end; the
//!   leakage inductances in series with each winding reduce the highs into
//!   a low load (itecnotes.com, "Impedance and frequency response"). The
//!   ribbon's resistance, the ratio, the resonance's height and Q and the
//!   leakage are chosen within those descriptions (no published curve
//!   was found), so the numbers are typical, not one microphone's.
//! * `Condenser` (transformerless FET output): Z = R_out = 100 Ω, flat.
//!   Sources: Rode NT1-A, output impedance 100 Ω (mynewmicrophone.com,
//!   "Microphone impedance"); transformerless outputs are typically
//!   50–200 Ω. The output's coupling capacitors (hundreds of µF) are left
//!   out: they put a corner below 0.1 Hz, under 0.04 dB at 20 Hz into
//!   300 Ω, and would give the stage a pole with a seconds-long tail.
//! * `None`: the ideal source of the chain without this stage.
//!
//! # Discretisation (`mic/design.rs`, on `crate::dsp::divider`)
//!
//! H(s) = Z_in D / (Z_in D + N) for Z_mic = N / D goes through the
//! bilinear transform (at most 2 biquads; stable because Z_in + Z_mic is
//! positive real), then the correction N_c(z) / (1 + 0.85 z^-1)^2 with a
//! 16-tap FIR N_c fitted so that the whole is z^-6 H(jw) on 20 Hz .. 20
//! kHz (the headphone amp's fit, with more taps and latency). Why more:
//! the ribbon's leakage inductance gives H a real pole near 38 kHz into
//! 300 Ω and takes H to 0 at infinity, which the bilinear transform puts
//! at Nyquist, so at 44.1 kHz the correction must rise steeply over the
//! last octave. The headphone's 12 taps at 4 samples leave 0.07 dB there,
//! 16 at 6 leave 0.04 dB (into 1200 Ω, fitted to 20 kHz), 20 at 8 leave
//! 0.03 dB (a numpy prototype of the same fit, confirmed by the tests).
//! 16 at 6 it is: the chain's live latency stays within 16 samples at
//! 48 kHz (6 + 5 oversampler + 4 headphone amp), and the FIR costs a fifth
//! less. From 46 kHz up the correction has 10 taps (`SHORT_TAPS`, still at
//! 6 samples): the last octave below Nyquist is wider there, and 10 fit as
//! well as the 16 at 44.1 kHz (48 kHz: 0.018 dB / 0.12° with 10, 0.0053 dB
//! / 0.040° with 16; 12 at 44.1 kHz would leave 0.059 dB); the FIR costs
//! 10/16 of the 16-tap one (`stages/mic_Dynamic` 285–305 → 247–264 µs,
//! 4 runs alternated with the build before).
//! Every model × every `IN_Z_OHMS` is designed in `prepare` (15 designs, a few
//! ms), so `set_settings` only copies one: the switch is abrupt (filter states
//! carry over; all designs are stable, so any transient is bounded) and the
//! chain crossfades around it. Measured against Z_in/(Z_in + Z_mic)
//! (`mic/tests.rs`, every mic × every Z_in, rendered and `response()`,
//! 241 points 20 Hz .. 20 kHz): worst 0.035 dB / 0.28° at 44.1 kHz,
//! 0.018 dB / 0.12° at 48 kHz, 0.0023 dB / 0.015° at 96 kHz (target
//! ±0.05 dB, ±2°; docs/DESIGN.md, § Mic source).
//!
//! Run time, in chunks of up to 64 samples: per sample the biquads
//! (direct form I, the recursion: one multiply-add from each section's
//! last output to its next; the transposed form II of before carried
//! three dependent operations per sample, which set the loop's speed),
//! then the correction FIR (16 or 10 taps) across
//! the chunk (independent outputs: the loop runs over the samples, which
//! the compiler vectorises; each output still sums its taps in order of
//! delay), then per sample the double pole. The double pole of one chunk
//! runs in the loop of the next chunk's biquads (the last chunk of a block
//! on its own): two independent recursions side by side, so the double
//! pole's latency (a dependent multiply-add per sample) hides under the
//! biquads'; each filter sees the same inputs in the same order and each
//! state is flushed where its own chunk ends, so the output is bit for bit
//! that of the plain per-sample filters (`mic/tests.rs`, against the
//! filters written there one sample at a time). The loop runs through the
//! build dispatch (`Isa::run`): every multiply-add is `mad`, the same sums
//! in the same order as the unfused code in the portable build (bit for
//! bit), fused in the AVX2 + FMA build (one rounding less per
//! multiply-add, the loop-carried paths one operation shorter; through
//! the chain with a dynamic mic on 300 Ω the two builds' f32 outputs
//! differ by at most 3.6e-12, 8.7e-12 of the peak). A
//! divider that is a plain gain (the ideal source; the condenser's
//! resistive output) only delays and scales. A stereo pair with the same
//! settings runs in the two lanes of `F2` ([`MicSource::process_pair`]):
//! the recursions of both channels in one chain of dependent operations,
//! each channel bit-identical to its own `process`. Non-finite input is
//! taken as 0 V, and the feedback states are flushed of values below 1e-30
//! every 256 samples (counted in samples, so the output does not depend on
//! the block size).
//!
//! Cost (`benches/stages.rs`, `mic_*`, stereo pair at 48 kHz, alternated
//! with the build before the dispatch, 9 runs, min / median): dynamic
//! 0.69 / 0.74 → 0.62 / 0.66 ms per second of stereo, ribbon 0.70 → 0.67;
//! the condenser and the ideal source (a gain and a delay) 0.06 and 0.05,
//! unchanged. With the double pole beside the next chunk's biquads
//! (alternated with the build before, 3 runs): dynamic 0.70 / 0.73 →
//! 0.54 / 0.59; in the chain with a dynamic mic on 300 Ω (7 runs) 4.13 /
//! 4.53 → 4.15 / 4.27 (the machine was busy: its spread is as large).
//! Third pass: the biquads in direct form I (before, in transposed form
//! II, each section's loop-carried path was three dependent operations;
//! the outputs of the two forms differ by at most 1.4e-12 of the peak,
//! every mic × every input, 2 s of noise), the states in registers for
//! the run (a profile showed them stored and reloaded at every sample),
//! the FIR two samples at a time with its sums in registers (it loaded
//! and stored every sum at every tap): dynamic alone 0.53 / 0.60 → 0.44 /
//! 0.46 ms (4 runs alternated with the build before).

use crate::dsp::divider::{double_pole_mad, FitGrid};
use crate::dsp::fma::MulAdd;
use crate::dsp::simd::{mad, Arith, Channels, Isa, Kernel, Lane, PairLane, F2};
use crate::dsp::stage::Stage;
use crate::dsp::ProcessSpec;
use design::{MicDesign, MAX_SECTIONS};
use num_complex::Complex;

mod design;
mod networks;
#[cfg(test)]
mod tests;

/// The microphone feeding the preamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MicModel {
    /// An ideal source (zero impedance): the stage is a pure delay.
    #[default]
    None,
    /// Moving coil behind its transformer (SM57/SM58 class).
    Dynamic,
    /// Passive ribbon through its step-up transformer (R-121/4038 class).
    Ribbon,
    /// Active transformerless output (FET condenser).
    Condenser,
}

/// The models with an impedance, in design order.
const MODELS: [MicModel; 3] = [MicModel::Dynamic, MicModel::Ribbon, MicModel::Condenser];

/// The preamp's input impedance switch positions, ohms.
pub const IN_Z_OHMS: [f64; 5] = [300.0, 600.0, 1200.0, 2400.0, 10_000.0];

/// Position of the default input impedance (2400 Ω) in `IN_Z_OHMS`.
const DEFAULT_IN_Z: usize = 3;

/// Settings of the mic source, in physical units.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MicSettings {
    /// The microphone.
    pub model: MicModel,
    /// The preamp's input impedance, ohms: one of `IN_Z_OHMS` (any other
    /// value takes the nearest position, in ratio; non-finite takes the
    /// default).
    pub in_z_ohms: f64,
}

impl Default for MicSettings {
    fn default() -> Self {
        MicSettings {
            model: MicModel::None,
            in_z_ohms: IN_Z_OHMS[DEFAULT_IN_Z],
        }
    }
}

/// Position in `IN_Z_OHMS` nearest `ohms` (in ratio).
pub fn in_z_index(ohms: f64) -> usize {
    if !(ohms > 0.0 && ohms.is_finite()) {
        return DEFAULT_IN_Z;
    }
    (0..IN_Z_OHMS.len())
        .min_by(|&a, &b| {
            let d = |i: usize| (ohms / IN_Z_OHMS[i]).ln().abs();
            d(a).total_cmp(&d(b))
        })
        .unwrap_or(DEFAULT_IN_Z)
}

/// Samples of delay the correction is fitted with: the stage's latency,
/// for every model (see the module header).
pub const LATENCY: usize = 6;
/// Taps of the correction FIR numerator (the most; the FIR's history
/// holds `TAPS − 1` samples at every rate).
const TAPS: usize = 16;
/// Taps of the correction from `SHORT_FIR_FROM_HZ` up, where the last
/// octave below Nyquist is wider and fewer taps fit as well: every mic
/// × every input within 0.018 dB / 0.12° at 48 kHz (16 taps: 0.0053 dB /
/// 0.040°), 0.0023 dB / 0.015° at 96 kHz (`mic/tests.rs`, rendered and
/// `response()`); the FIR costs 10/16 of the 16-tap one.
const SHORT_TAPS: usize = 10;
/// Rate from which the correction has `SHORT_TAPS` taps, Hz (44.1 kHz
/// keeps 16: 12 would leave 0.059 dB there, 10 0.071 dB).
const SHORT_FIR_FROM_HZ: f64 = 46_000.0;
/// Top of the correction's fit, Hz: all of the audio band, at every
/// rate (at 44.1 kHz the last 155 Hz matter: the ribbon's response bends
/// there).
const FIT_TOP_HZ: f64 = 20_000.0;

/// Samples between denormal flushes of the feedback states.
const FLUSH_EVERY: usize = 256;

/// Samples the block loop takes at a time (divides `FLUSH_EVERY`).
const CHUNK: usize = 64;

/// One channel's running filters in lanes `L`: `f64` for one channel, `F2`
/// for a stereo pair gathered into the lanes of one loop.
#[derive(Clone, Copy, Default)]
struct Filters<L> {
    /// Direct-form I states of the biquads: the last two inputs and the
    /// last two outputs, `[x1, x2, y1, y2]`.
    sections: [[L; 4]; MAX_SECTIONS],
    /// The last `TAPS − 1` inputs of the correction FIR (the biquads'
    /// outputs; for a plain gain, the input), oldest first.
    tail: [L; TAPS - 1],
    /// The double pole's previous two outputs, newest first.
    post: [L; 2],
}

impl<L: Lane> Filters<L> {
    /// Sets the feedback states of the biquads and the FIR's inputs far
    /// below audibility to exactly zero.
    fn flush_front(&mut self) {
        for v in self.sections.iter_mut().flatten() {
            *v = v.flush();
        }
        for v in self.tail.iter_mut() {
            *v = v.flush();
        }
    }

    /// Likewise the double pole's.
    fn flush_post(&mut self) {
        for v in self.post.iter_mut() {
            *v = v.flush();
        }
    }
}

/// One sample `v` through the biquads of `d` from the states `sections`
/// (direct form I). Every multiply-add is `mad` of build `M`: in the
/// portable build the same sums in the same order as written unfused
/// (`t = ((s0·v + s1·x1) + s2·x2) − s4·y2`, `y = t − s3·y1`), fused in the
/// FMA build. The loop-carried path of a section is one multiply-add
/// (y1 → y); the transposed form II it replaces carried three operations
/// (y, then `st0`'s multiply-add and its sum with `st1`), which set the
/// loop's speed.
#[inline(always)]
fn biquads<M: MulAdd, L: Lane>(d: &MicDesign, sections: &mut [[L; 4]; MAX_SECTIONS], v: L) -> L {
    let mut v = v;
    for (s, st) in d.sections.iter().zip(sections.iter_mut()) {
        let [x1, x2, y1, y2] = *st;
        let t = mad::<M, L>(L::splat(s[1]), x1, L::splat(s[0]) * v);
        let t = mad::<M, L>(L::splat(s[2]), x2, t);
        let t = mad::<M, L>(L::splat(-s[4]), y2, t);
        let y = mad::<M, L>(L::splat(-s[3]), y1, t);
        *st = [v, x1, y, y1];
        v = y;
    }
    v
}

/// The correction FIR over one chunk: `acc[i] = Σ taps[k]·v[i − k]`,
/// k = 0 … TAPS − 1 in that order (`acc + tap·v` as `mad` of build `M`),
/// `v` = `buf`'s samples from `TAPS − 1` on, the `TAPS − 1` before them
/// in front. The outputs are independent: two at a time side by side in
/// the build's pair type (`L::Pair<M>`: a stereo pair's two samples in
/// one AVX register), each sum kept in a register through its taps. (The
/// loop over the taps outside, the one over the samples inside, as this
/// was, loaded and stored every sum at every tap.)
#[inline(always)]
fn fir<M: MulAdd, L: PairLane, const T: usize>(d: &MicDesign, buf: &[L], acc: &mut [L]) {
    let taps: [L::Pair<M>; T] = std::array::from_fn(|k| <L::Pair<M>>::splat(d.taps[k]));
    let n = acc.len();
    let mut i = 0;
    while i + 2 <= n {
        let v = |k: usize| L::pair::<M>(buf[TAPS - 1 + i - k], buf[TAPS + i - k]);
        let mut s = taps[0] * v(0);
        for (k, t) in taps.iter().enumerate().skip(1) {
            s = mad::<M, L::Pair<M>>(*t, v(k), s);
        }
        (acc[i], acc[i + 1]) = L::halves::<M>(s);
        i += 2;
    }
    if i < n {
        let t = |k: usize| L::splat(d.taps[k]);
        let mut s = t(0) * buf[TAPS - 1 + i];
        for k in 1..T {
            s = mad::<M, L>(t(k), buf[TAPS - 1 + i - k], s);
        }
        acc[i] = s;
    }
}

/// The filter loop over one channel's block (`L = f64`) or a stereo
/// pair's (`F2`, `blocks[0]` and `blocks[1]` of equal length) in place,
/// in the build an `Isa` selects: chunk by chunk (up to `CHUNK` samples,
/// ending at the denormal flushes), non-finite input taken as 0 V. A chunk
/// runs per sample the biquads ([`biquads`]), then the correction FIR
/// across the chunk ([`fir`]), then per sample the double pole; the
/// double pole of a chunk runs in the loop of the next chunk's biquads
/// (two independent recursions side by side, whose latencies overlap),
/// the last chunk's on its own. Every filter sees the same inputs in the
/// same order as chunk after chunk would give it, and each state is
/// flushed where its own chunk ends, so the output is bit for bit the
/// same.
struct FilterRun<'a, L> {
    design: &'a MicDesign,
    filters: &'a mut Filters<L>,
    /// Samples since the last flush (the same for every channel).
    since_flush: &'a mut usize,
    blocks: [&'a mut [f64]; 2],
}

impl<L: Channels + PairLane> Kernel for FilterRun<'_, L> {
    type Output = ();
    #[inline(always)]
    fn run<M: MulAdd>(self) {
        let FilterRun {
            design: d,
            filters,
            since_flush,
            mut blocks,
        } = self;
        // The states in a local for the run (in registers, not stored and
        // reloaded at every sample on the recursions' paths).
        let mut f = *filters;
        let len = blocks[0].len();
        // The FIR's outputs of this chunk (`accs[cur]`) and of the one
        // before.
        let mut accs = [[L::default(); CHUNK]; 2];
        let mut cur = 0;
        // The chunk waiting for its double pole: (start, length, whether
        // its end flushes).
        let mut pending = (0, 0, false);
        let mut done = 0;
        while done < len {
            let n = (len - done).min(CHUNK).min(FLUSH_EVERY - *since_flush);
            let mut buf = [L::default(); TAPS - 1 + CHUNK];
            buf[..TAPS - 1].copy_from_slice(&f.tail);
            for (i, v) in buf[TAPS - 1..TAPS - 1 + n].iter_mut().enumerate() {
                let mut lanes = [0.0; 2];
                for (l, b) in lanes.iter_mut().zip(&blocks).take(L::N) {
                    *l = finite_or_zero(b[done + i]);
                }
                *v = L::load(&lanes);
            }
            let [a0, a1] = &mut accs;
            let (acc, prev) = if cur == 0 { (a0, a1) } else { (a1, a0) };
            let (start, m, flush) = pending;
            let both = n.min(m);
            // The recursions' states in locals of their own for the
            // loops (`f` as a whole stays in memory: its FIR tail is
            // copied by slices), so that no state goes through a store
            // and a load on its loop-carried path.
            let (mut sections, mut post) = (f.sections, f.post);
            for (i, (v, a)) in buf[TAPS - 1..TAPS - 1 + both]
                .iter_mut()
                .zip(&prev[..both])
                .enumerate()
            {
                *v = biquads::<M, L>(d, &mut sections, *v);
                double_pole_mad::<M, L>(*a, &mut post).scatter(&mut blocks, start + i);
            }
            for v in &mut buf[TAPS - 1 + both..TAPS - 1 + n] {
                *v = biquads::<M, L>(d, &mut sections, *v);
            }
            for (i, a) in prev[..m].iter().enumerate().skip(both) {
                double_pole_mad::<M, L>(*a, &mut post).scatter(&mut blocks, start + i);
            }
            (f.sections, f.post) = (sections, post);
            if flush {
                f.flush_post();
            }
            if d.n_taps == SHORT_TAPS {
                fir::<M, L, SHORT_TAPS>(d, &buf[..TAPS - 1 + n], &mut acc[..n]);
            } else {
                fir::<M, L, TAPS>(d, &buf[..TAPS - 1 + n], &mut acc[..n]);
            }
            f.tail.copy_from_slice(&buf[n..n + TAPS - 1]);
            *since_flush += n;
            let flush = *since_flush == FLUSH_EVERY;
            if flush {
                *since_flush = 0;
                f.flush_front();
            }
            pending = (done, n, flush);
            cur ^= 1;
            done += n;
        }
        let (start, m, flush) = pending;
        for (i, a) in accs[cur ^ 1][..m].iter().enumerate() {
            double_pole_mad::<M, L>(*a, &mut f.post).scatter(&mut blocks, start + i);
        }
        if flush {
            f.flush_post();
        }
        *filters = f;
    }
}

/// The mic source stage, one per channel.
pub struct MicSource {
    /// Rate the designs were made for, Hz (0 before `prepare`).
    fs: f64,
    /// Settings last applied.
    settings: MicSettings,
    /// Every model × every `IN_Z_OHMS` designed at `fs`
    /// (`MODELS.len() * IN_Z_OHMS.len()`, model-major; made in `prepare`).
    designs: Vec<MicDesign>,
    /// The design running (a copy of one of `designs`).
    design: MicDesign,
    /// The running filters.
    filters: Filters<f64>,
    /// Samples since the last denormal flush.
    since_flush: usize,
    /// The build the filter loop runs in.
    isa: Isa,
}

impl Default for MicSource {
    fn default() -> Self {
        Self::new()
    }
}

impl MicSource {
    /// An unprepared stage (a pure delay until `prepare`).
    pub fn new() -> Self {
        MicSource {
            fs: 0.0,
            settings: MicSettings::default(),
            designs: Vec::new(),
            design: MicDesign::PASSTHROUGH,
            filters: Filters::default(),
            since_flush: 0,
            isa: Isa::portable(),
        }
    }

    /// `prepare`, taking the designs `other` fitted at the same rate
    /// instead of fitting them again (a section's channels share one fit).
    pub fn prepare_from(&mut self, spec: &ProcessSpec, other: &MicSource) {
        if other.fs == spec.sample_rate && !other.designs.is_empty() {
            self.designs.clone_from(&other.designs);
            self.fs = other.fs;
        }
        self.prepare(spec);
    }

    /// Picks the design of the current settings (no allocation).
    fn select(&mut self) {
        let s = self.settings;
        self.design = match MODELS.iter().position(|m| *m == s.model) {
            Some(m) if !self.designs.is_empty() => {
                self.designs[m * IN_Z_OHMS.len() + in_z_index(s.in_z_ohms)]
            }
            _ => MicDesign::PASSTHROUGH,
        };
    }

    /// Worst complex relative error of the running design's correction
    /// fit on its points (0 for the ideal source): a diagnostic.
    pub fn fit_error(&self) -> f64 {
        self.design.fit_error
    }

    /// A plain-gain divider on `x` in place: `g` times the input
    /// `LATENCY` samples back (the tail holds the inputs before `x`). No
    /// feedback, so nothing to flush; the flush count still runs, so a
    /// filter design taken later flushes where it would have.
    fn delay(&mut self, g: f64, x: &mut [f64]) {
        let n = x.len();
        for v in x.iter_mut() {
            *v = finite_or_zero(*v);
        }
        // The new tail: the last TAPS − 1 of (tail, x).
        let mut tail = [0.0; TAPS - 1];
        let keep = (TAPS - 1).saturating_sub(n);
        tail[..keep].copy_from_slice(&self.filters.tail[TAPS - 1 - keep..]);
        tail[keep..].copy_from_slice(&x[n - (TAPS - 1 - keep)..]);
        // Shift x by LATENCY; the first LATENCY (or all of a shorter
        // block) from the old tail.
        if n > LATENCY {
            x.copy_within(..n - LATENCY, LATENCY);
        }
        let head = n.min(LATENCY);
        let old = TAPS - 1 - LATENCY;
        x[..head].copy_from_slice(&self.filters.tail[old..old + head]);
        if g != 1.0 {
            for v in x.iter_mut() {
                *v *= g;
            }
        }
        self.filters.tail = tail;
        self.since_flush = (self.since_flush + n) % FLUSH_EVERY;
    }

    /// A stereo pair in place, both channels in the lanes of one loop
    /// (each bit-identical to its own `process`). Two sources with other
    /// settings or rates, or a plain gain (a delay), each run on their own.
    pub fn process_pair(a: &mut MicSource, b: &mut MicSource, left: &mut [f64], right: &mut [f64]) {
        let together = a.design.plain.is_none()
            && a.settings == b.settings
            && a.fs == b.fs
            && a.since_flush == b.since_flush
            && a.isa == b.isa
            && left.len() == right.len();
        if !together {
            a.process(left);
            b.process(right);
            return;
        }
        let mut f = join(&a.filters, &b.filters);
        a.isa.run(FilterRun::<F2> {
            design: &a.design,
            filters: &mut f,
            since_flush: &mut a.since_flush,
            blocks: [left, right],
        });
        (a.filters, b.filters) = split(&f);
        b.since_flush = a.since_flush;
    }
}

/// Non-finite input is taken as 0 V.
#[inline(always)]
fn finite_or_zero(v: f64) -> f64 {
    if v.is_finite() {
        v
    } else {
        0.0
    }
}

/// Two channels' filters in the lanes of one.
fn join(a: &Filters<f64>, b: &Filters<f64>) -> Filters<F2> {
    let two = |x: &f64, y: &f64| F2([*x, *y]);
    let mut f = Filters::<F2>::default();
    for (s, (x, y)) in f
        .sections
        .iter_mut()
        .zip(a.sections.iter().zip(&b.sections))
    {
        *s = std::array::from_fn(|j| two(&x[j], &y[j]));
    }
    for (v, (x, y)) in f.tail.iter_mut().zip(a.tail.iter().zip(&b.tail)) {
        *v = two(x, y);
    }
    f.post = [two(&a.post[0], &b.post[0]), two(&a.post[1], &b.post[1])];
    f
}

/// The lanes of a pair's filters back to each channel's.
fn split(f: &Filters<F2>) -> (Filters<f64>, Filters<f64>) {
    let lane = |i: usize| {
        let mut c = Filters::<f64>::default();
        for (s, v) in c.sections.iter_mut().zip(&f.sections) {
            *s = v.map(|v| v.lane(i));
        }
        for (t, v) in c.tail.iter_mut().zip(&f.tail) {
            *t = v.lane(i);
        }
        c.post = [f.post[0].lane(i), f.post[1].lane(i)];
        c
    };
    (lane(0), lane(1))
}

/// Every model × every `IN_Z_OHMS` at `fs`, with corrections of `T`
/// taps, in `MicSource::designs`' order. Allocates.
fn all_designs<const T: usize>(fs: f64) -> Vec<MicDesign> {
    let grid = FitGrid::<T>::new(fs, LATENCY, FIT_TOP_HZ);
    MODELS
        .iter()
        .flat_map(|&m| IN_Z_OHMS.iter().map(move |&r| (m, r)))
        .map(|(m, r)| MicDesign::new(m, r, &grid, fs))
        .collect()
}

impl Stage for MicSource {
    type Settings = MicSettings;

    fn prepare(&mut self, spec: &ProcessSpec) {
        self.isa = spec.isa;
        let fs = spec.sample_rate;
        if fs != self.fs || self.designs.is_empty() {
            self.designs = if fs >= SHORT_FIR_FROM_HZ {
                all_designs::<SHORT_TAPS>(fs)
            } else {
                all_designs::<TAPS>(fs)
            };
            self.fs = fs;
        }
        self.select();
        self.reset();
    }

    fn reset(&mut self) {
        self.filters = Filters::default();
        self.since_flush = 0;
    }

    fn set_settings(&mut self, settings: MicSettings) {
        if settings != self.settings {
            self.settings = settings;
            self.select();
        }
    }

    fn process(&mut self, block: &mut [f64]) {
        if let Some(g) = self.design.plain {
            self.delay(g, block);
            return;
        }
        self.isa.run(FilterRun::<f64> {
            design: &self.design,
            filters: &mut self.filters,
            since_flush: &mut self.since_flush,
            blocks: [block, &mut []],
        });
    }

    fn response(&self, freq_hz: f64) -> Complex<f64> {
        self.design.response(freq_hz, self.fs)
    }

    fn latency_samples(&self) -> usize {
        LATENCY
    }
}
