//! The preamp: gain and high-pass in front, two triode stages wired as a
//! real preamp (stage 1's plate into the 1 MΩ Level pot, whose wiper is
//! stage 2's grid; stage 2's plate into the 220 kΩ output load; both
//! cathodes bypassed by 22 µF: `stage.rs`, `cathode.rs`, docs/DESIGN.md),
//! output coupling and output level behind.
//! [`Preamp`] is one channel; [`StereoPreamp`] is two channels with one set
//! of controls in SIMD lanes, bit for bit two [`Preamp`]s.
//!
//! Both are a [`PreampCore`] (settings, the two stages with their tables
//! and coefficients, the ends' filters and smoothed gains: shared by all
//! channels) plus a per-lane [`ChannelState`]. `PreampCore::run` is the
//! block loop, generic over the lane type: the stages run chunk by chunk,
//! pipelined (see `kernel.rs`). The public types over the lanes and their
//! methods are in `preamp/lanes.rs`.
//!
//! The preamp's linear ends (`ends.rs`, [`PreampPart`]) can run at another
//! rate than the stages: the chain runs them at the host rate, around its
//! oversampler.
//!
//! Latency: 0 samples (plus the fractional ADAA group delay, ≈ 0.11
//! oversampled samples per stage, not an integer latency). Units: volts in
//! (at the mic input, after pad and polarity), volts out (at the output
//! level control). Runs at the oversampled rate given to `prepare` /
//! `set_sample_rate`.

use super::adaa::StageLane;
use super::cathode::CathodeLanes;
use super::ends::{smooth, Ends, PreampPart};
use super::grid_blend::PlateSource;
use super::kernel::{chunk_len, Blended, ChunkStats, ChunkTrace, StageLanes, CHUNK};
use super::koren::operating_point;
use super::stage::{StageCircuit, TriodeStage, SUPPLY_STEP_VOLTS};
use super::{HighPass, PreampSettings, TubeType};
use crate::dsp::fma::{MulAdd, Unfused};
use crate::dsp::simd::Isa;
use crate::dsp::simd::{mad, Lane};
use crate::dsp::{db_to_gain, ProcessSpec};
use num_complex::Complex;
use std::f64::consts::PI;

mod lanes;

pub use lanes::{Preamp, PreampLanes, StereoPreamp};

/// Source resistance of stage 1: a 150 Ω mic reflected through a 1:10 input
/// transformer.
const INPUT_SOURCE_OHMS: f64 = 15e3;
/// Output coupling capacitor.
const OUTPUT_COUPLING_FARADS: f64 = 0.47e-6;
/// Load on the output coupling capacitor (output level pot / next input).
const OUTPUT_LOAD_OHMS: f64 = 220e3;
/// The Level pot (audio taper): stage 1's load through the interstage
/// capacitor and stage 2's grid leak, its wiper stage 2's grid.
const LEVEL_POT_OHMS: f64 = 1e6;
/// Cathode bypass capacitor of each stage (with Rk 1.5 kΩ: 4.8 Hz).
const BYPASS_FARADS: f64 = 22e-6;
/// Time constant of the internal gain smoothing.
const GAIN_SMOOTHING_MS: f64 = 2.0;

/// The Level gain of each of the next `n` samples, smoothed per sample from
/// `g` towards `target` (`a`); a Level that has reached its target stays
/// there.
#[inline(always)]
fn level_ramp(g: &mut f64, target: f64, a: f64, n: usize) -> [f64; CHUNK] {
    let mut gains = [*g; CHUNK];
    if *g != target {
        for v in &mut gains[..n] {
            *g = smooth(*g, target, a);
            *v = *g;
        }
    }
    gains
}

// ---------------------------------------------------------------------------
// The core shared by all channels
// ---------------------------------------------------------------------------

/// Settings, stages (tables, coefficients) and gains shared by all channels.
#[derive(Clone, Debug)]
pub(super) struct PreampCore {
    /// Current settings.
    settings: PreampSettings,
    /// Sample rate of the stages in Hz (oversampled).
    fs: f64,
    /// First triode stage (driven by the input transformer).
    pub(super) stage1: TriodeStage,
    /// Second triode stage (driven by stage 1 through Level).
    pub(super) stage2: TriodeStage,
    /// The linear ends.
    ends: Ends,
    /// Target linear Level.
    level_target: f64,
    /// Smoothed Level.
    level: f64,
    /// One-pole smoothing coefficient for Level at `fs`.
    smooth_a: f64,
    /// Samples through the stages since reset, for the periodic denormal
    /// flush (tied to sample index, so block size does not matter).
    counter: u64,
    /// The build the block loop runs in (from `prepare`'s spec; the AVX2 +
    /// FMA build uses fused multiply-adds).
    isa: Isa,
    /// Whether stage 2's output capacitor's charge moves its load line
    /// (`cathode.rs`; a second curve evaluation per sample while it is
    /// charged).
    output_charge: bool,
    /// Stage 1's plate as the source of stage 2's grid, per tube
    /// (`grid_blend.rs`, `PlateSource`; built in `prepare`).
    plate1: Vec<PlateSource>,
}

/// The per-lane state of the whole preamp.
#[derive(Clone, Copy, Debug, Default)]
struct ChannelState<L: Copy> {
    /// Stage 1.
    s1: StageLanes<L>,
    /// Stage 2.
    s2: StageLanes<L>,
    /// Stage 1's cathode.
    c1: CathodeLanes<L>,
    /// Stage 2's cathode.
    c2: CathodeLanes<L>,
    /// Input high-pass integrators.
    hpf: [L; 2],
    /// Output coupling integrator.
    out: L,
    /// Largest table coordinate of each stage since the last
    /// `take_grid_peak_volts` (0, the table's bottom, when none).
    q_peak: [L; 2],
}

impl<L: Lane> ChannelState<L> {
    fn rest(core: &PreampCore) -> Self {
        Self {
            s1: StageLanes::rest(&core.stage1.kernel::<Unfused>()),
            s2: StageLanes::rest(&core.stage2.kernel::<Unfused>()),
            ..Self::default()
        }
    }

    /// Whether the state `part` runs on is finite (all of it for the
    /// stages: they are most of it, two rings of `CHUNK` per cathode).
    fn finite(&self, part: PreampPart) -> bool {
        let front = || self.hpf[0].finite() && self.hpf[1].finite();
        let back = || self.out.finite();
        match part {
            PreampPart::Front => front(),
            PreampPart::Back => back(),
            PreampPart::Whole | PreampPart::Stages => {
                self.s1.finite()
                    && self.s2.finite()
                    && self.c1.finite()
                    && self.c2.finite()
                    && front()
                    && back()
            }
        }
    }
}

impl PreampCore {
    fn new() -> Self {
        // As wired: stage 1's plate loaded by the Level pot through the
        // interstage capacitor, stage 2's by the output load; both cathodes
        // bypassed; stage 2's grid on the pot's wiper.
        let wired = |load_ohms| StageCircuit {
            load_ohms,
            bypass_farads: BYPASS_FARADS,
            ..StageCircuit::REFERENCE
        };
        let s1 = TriodeStage::new(wired(LEVEL_POT_OHMS), [INPUT_SOURCE_OHMS; 3]);
        // Stage 2 source: stage 1's Ra ‖ rp, per tube at bias 0.
        let mut src2 = [0.0; 3];
        for tt in TubeType::ALL {
            let t = tt.constants();
            let c = StageCircuit::REFERENCE;
            let (vk, vpk, _) = operating_point(&t, &c, c.cathode_ohms);
            let (_, _, gp) = t.plate_current_and_partials(-vk, vpk);
            src2[tt.index()] = c.plate_output_ohms(gp);
        }
        let s2 = TriodeStage::new(
            StageCircuit {
                grid_leak_ohms: LEVEL_POT_OHMS,
                output_coupling_farads: OUTPUT_COUPLING_FARADS,
                ..wired(OUTPUT_LOAD_OHMS)
            },
            src2,
        )
        .with_pot();
        let mut p = Self {
            settings: PreampSettings::default(),
            fs: 48_000.0,
            stage1: s1,
            stage2: s2,
            ends: Ends::new(),
            level_target: 1.0,
            level: 1.0,
            smooth_a: 1.0,
            counter: 0,
            isa: Isa::portable(),
            output_charge: true,
            plate1: Vec::new(),
        };
        p.apply_settings(PreampSettings::default(), true);
        p
    }

    fn prepared(&self) -> bool {
        self.stage1.prepared() && self.stage2.prepared()
    }

    fn prepare(&mut self, spec: &ProcessSpec) {
        self.isa = spec.isa;
        self.stage1.prepare(spec);
        self.stage2.prepare(spec);
        if self.plate1.is_empty() {
            self.plate1 = self.stage1.plate_sources();
        }
        self.set_rates(spec.sample_rate, spec.sample_rate);
        self.apply_settings(self.settings, true);
    }

    fn smoothing_coefficient(fs: f64) -> f64 {
        -(-1.0 / (fs * GAIN_SMOOTHING_MS * 1e-3)).exp_m1()
    }

    /// The stages at `fs`, the ends at `ends_fs`.
    fn set_rates(&mut self, fs: f64, ends_fs: f64) {
        self.fs = fs;
        self.stage1.set_sample_rate(fs);
        self.stage2.set_sample_rate(fs);
        self.smooth_a = Self::smoothing_coefficient(fs);
        self.ends.fs = ends_fs;
        if let Some(fc) = self.settings.hpf.cutoff_hz() {
            self.ends.hpf.set(fc, ends_fs);
        }
        self.update_output_filter();
        self.ends.smooth_a = Self::smoothing_coefficient(ends_fs);
    }

    fn update_output_filter(&mut self) {
        let ro = self.stage2.output_ohms();
        let fc = 1.0 / (2.0 * PI * OUTPUT_COUPLING_FARADS * (OUTPUT_LOAD_OHMS + ro));
        self.ends.out_hp.set(fc, self.ends.fs);
        // Stage 2's table already has the output load on its plate.
        self.ends.out_gain_target = db_to_gain(self.settings.output_db);
    }

    fn apply_settings(&mut self, s: PreampSettings, force: bool) {
        let s = s.clamped();
        let old = self.settings;
        self.settings = s;
        let tb1 = self.stage1.set_tube_bias(s.tube, s.bias);
        let tb2 = self.stage2.set_tube_bias(s.tube, s.bias);
        let ends = &mut self.ends;
        if force || s.hpf != old.hpf {
            ends.hpf_on = s.hpf.cutoff_hz().is_some();
            if let Some(fc) = s.hpf.cutoff_hz() {
                ends.hpf.set(fc, ends.fs);
            }
            if old.hpf == HighPass::Off {
                ends.hpf_restart = true;
            }
        }
        ends.in_gain_target = db_to_gain(s.gain_db);
        self.level_target = db_to_gain(s.level_db);
        if force || tb1 || tb2 || s.output_db != old.output_db {
            self.update_output_filter();
        }
        if force {
            self.ends.in_gain = self.ends.in_gain_target;
            self.level = self.level_target;
            self.stage2.set_wiper(self.level);
            self.ends.out_gain = self.ends.out_gain_target;
        }
    }

    /// Back to the settled operating point; returns the channels' state at
    /// rest (silence in gives exactly zero out).
    fn reset<L: Lane>(&mut self) -> ChannelState<L> {
        self.stage1.reset();
        self.stage2.reset();
        let ends = &mut self.ends;
        ends.hpf_restart = false;
        ends.in_gain = ends.in_gain_target;
        ends.out_gain = ends.out_gain_target;
        (ends.front_counter, ends.back_counter) = (0, 0);
        self.level = self.level_target;
        self.stage2.set_wiper(self.level);
        self.counter = 0;
        if self.prepared() {
            ChannelState::rest(self)
        } else {
            ChannelState::default()
        }
    }

    /// The block loop of `part`, shared by mono (L = f64) and stereo
    /// (L = F2). Works in chunks of at most `CHUNK` samples that end at
    /// multiples of `CHUNK` of the part's absolute sample count, where its
    /// states are flushed of denormals, so the result does not depend on the
    /// block partition. `load(i, v)` fills `v` with the input samples from
    /// index `i` on, `store(i, v)` writes the output samples `v` from index
    /// `i` on (whole chunks, so the sample loops need no bounds checks).
    #[inline(always)]
    fn run<L: StageLane, M: MulAdd>(
        &mut self,
        part: PreampPart,
        st: &mut ChannelState<L>,
        len: usize,
        mut load: impl FnMut(usize, &mut [L]),
        mut store: impl FnMut(usize, &[L]),
    ) {
        match part {
            PreampPart::Front | PreampPart::Back => {
                let front = part == PreampPart::Front;
                let states = (&mut st.hpf, &mut st.out);
                self.ends
                    .run::<L, M>(front, states, len, &mut load, &mut store);
            }
            PreampPart::Whole => self.run_stages::<L, M>(true, st, len, &mut load, &mut store),
            PreampPart::Stages => self.run_stages::<L, M>(false, st, len, &mut load, &mut store),
        }
        // (A part changes only its own state, so only that is checked.)
        if !st.finite(part) {
            *st = ChannelState::rest(self);
        }
    }

    /// The two stages over `len` samples (`whole`: with the ends around
    /// them), chunk by chunk. A pipeline: stage 2's linear pass over chunk k
    /// runs in one loop with stage 1's over chunk k + 1 (when as long), in
    /// the lanes of `L::Pair` (see `kernel.rs`).
    #[inline(always)]
    fn run_stages<L: StageLane, M: MulAdd>(
        &mut self,
        whole: bool,
        st: &mut ChannelState<L>,
        len: usize,
        load: &mut impl FnMut(usize, &mut [L]),
        store: &mut impl FnMut(usize, &[L]),
    ) {
        let k1 = self.stage1.kernel::<M>();
        let c1 = self.stage1.cathode;
        // (In Live the output capacitor's charge is not applied, so it is
        // not followed either.)
        let c2 = match self.output_charge {
            true => self.stage2.cathode,
            false => self.stage2.cathode.without_shift(),
        };
        let mut f1 = k1.big_f(st.s1.q_prev);
        let mut f2 = self.stage2.kernel::<M>().big_f(st.s2.q_prev);
        let (a, tl) = (self.smooth_a, self.level_target);
        let mut gl = self.level;
        let mut counter = self.counter;
        // Chunk buffers, written before they are read in every chunk: `buf`
        // stage 1's input, `mid` stage 1's output times Level (stage 2's
        // input), `out` stage 2's output, `shifted` its curve at the
        // raised supply, `tr1`, `tr2` the stages' table coordinates,
        // cathodes and grid currents.
        let mut buf = [L::default(); CHUNK];
        let (mut mid, mut out) = ([L::default(); CHUNK], [L::default(); CHUNK]);
        let mut shifted = [L::default(); CHUNK];
        let mut blend_out = [L::default(); CHUNK];
        let (mut tr1, mut tr2) = (ChunkTrace::default(), ChunkTrace::default());
        // Stage 1's state before its linear pass over the next chunk, and
        // that pass's record, when the pipeline has done it.
        let mut ahead: Option<(StageLanes<L>, ChunkStats<L>)> = None;
        let mut i0 = 0;
        while i0 < len {
            let n = chunk_len(len - i0, counter);
            let pos = (counter % CHUNK as u64) as usize;
            // The Level pot's wiper sets stage 2's grid drive resistance
            // (Miller corner, grid-current charging, the curve table of its
            // grid current): moved at the start of each whole chunk of the
            // absolute count, so the block partition does not matter.
            if pos == 0 {
                let table = self.stage2.table_index();
                self.stage2.set_wiper(gl);
                if self.stage2.table_index() != table {
                    // Another table (they differ only in grid current):
                    // the ADAA's antiderivative at the last coordinate
                    // from the new one.
                    f2 = self.stage2.kernel::<M>().big_f(st.s2.q_prev);
                }
            }
            let k2 = self.stage2.kernel::<M>();
            // Stage 1's linear pass over this chunk (unless done ahead).
            let (saved1, stats1) = match ahead.take() {
                Some(done) => done,
                None => {
                    self.ends
                        .stage_input::<L, M>(whole, &mut st.hpf, load, i0, &mut buf[..n]);
                    let saved = st.s1;
                    let ds = st.c1.drives(pos, n);
                    (saved, k1.linear_chunk(&mut st.s1, &buf[..n], ds, &mut tr1))
                }
            };
            // Stage 1's ADAA, its cathode, times Level: stage 2's input.
            // (`j < n <= CHUNK`; the masks spare the sample loops a bounds
            // check, which would keep them from unrolling.)
            let p1 = k1.finish_chunk(
                &mut st.s1,
                &saved1,
                stats1,
                &mut f1,
                (&buf[..n], st.c1.drives(pos, n)),
                &mut tr1,
                |j, y| mid[j & (CHUNK - 1)] = y,
                None,
            );
            st.c1
                .close::<M>(&c1, pos, k1.off, saved1.q_prev, &mut mid[..n], &tr1);
            let gain_level = level_ramp(&mut gl, tl, a, n);
            for (m, g) in mid[..n].iter_mut().zip(gain_level) {
                *m = *m * L::splat(g);
            }
            let end = counter + n as u64;
            if end.is_multiple_of(CHUNK as u64) {
                st.s1.flush();
                st.c1.flush();
            }
            // Stage 2's linear pass, in one loop with stage 1's over the
            // next chunk when that is as long (its input replaces this
            // chunk's, no longer needed).
            let saved2 = st.s2;
            let next = i0 + n;
            let stats2 = if next < len && chunk_len(len - next, end) == n {
                self.ends
                    .stage_input::<L, M>(whole, &mut st.hpf, load, next, &mut buf[..n]);
                let saved = st.s1;
                let pos_next = (end % CHUNK as u64) as usize;
                let (s1, s2) = k1.linear_chunk_pair(
                    &k2,
                    &mut st.s1,
                    &mut st.s2,
                    (&buf[..n], st.c1.drives(pos_next, n)),
                    (&mid[..n], st.c2.drives(pos, n)),
                    &mut tr1,
                    &mut tr2,
                );
                ahead = Some((saved, s1));
                s2
            } else {
                k2.linear_chunk(&mut st.s2, &mid[..n], st.c2.drives(pos, n), &mut tr2)
            };
            // Stage 2's ADAA and cathode, then the output end. Where its
            // grid conducts, its grid current behind stage 1's plate as it
            // is at each sample (`GridBlend`).
            let plate1 = self.plate1.get(self.settings.tube.index());
            let mut blended = plate1
                .and_then(|p| self.stage2.grid_blend(p, self.stage1.rest_plate_volts()))
                .map(|grid| Blended {
                    grid,
                    gains: &gain_level,
                    out: &mut blend_out,
                    any: false,
                });
            let p2 = k2.finish_chunk(
                &mut st.s2,
                &saved2,
                stats2,
                &mut f2,
                (&mid[..n], st.c2.drives(pos, n)),
                &mut tr2,
                |j, y| out[j & (CHUNK - 1)] = y,
                blended.as_mut(),
            );
            let blend_any = blended.is_some_and(|b| b.any);
            // The output capacitor's charge moves stage 2's load line by δ
            // (`cathode.rs`): the plate by δ·(T_δ₀ − T)/δ₀ along the curve,
            // T_δ₀ averaged over the same steps as T.
            let kd = match self.output_charge {
                true => self.stage2.shifted_kernel::<M>(),
                false => None,
            };
            if let Some(kd) = kd {
                let shifts = st.c2.shifts(pos, n);
                if shifts.iter().any(|d| d.abs().any_gt(0.0)) {
                    let qs = &tr2.q[..n];
                    let stats = ChunkStats::of(qs, saved2.q_prev);
                    let w = L::splat(1.0 / SUPPLY_STEP_VOLTS);
                    let fd = kd.big_f(saved2.q_prev);
                    kd.average_chunk(qs, saved2.q_prev, fd, &stats, |j, yd| {
                        shifted[j & (CHUNK - 1)] = yd;
                    });
                    for ((o, yd), dl) in out[..n].iter_mut().zip(&shifted[..n]).zip(shifts) {
                        *o = mad::<M, L>(*dl * w, *yd - *o, *o);
                    }
                }
            }
            if blend_any {
                for (o, b) in out[..n].iter_mut().zip(&blend_out[..n]) {
                    *o = *o + *b;
                }
            }
            st.c2
                .close::<M>(&c2, pos, k2.off, saved2.q_prev, &mut out[..n], &tr2);
            if whole {
                self.ends.back::<L, M>(&mut st.out, &mut out[..n]);
            }
            st.q_peak = [st.q_peak[0].hi(p1), st.q_peak[1].hi(p2)];
            store(i0, &out[..n]);
            counter = end;
            i0 = next;
            if counter.is_multiple_of(CHUNK as u64) {
                st.s2.flush();
                st.c2.flush();
            }
        }
        self.level = gl;
        self.counter = counter;
    }

    fn small_signal_response(&self, freq_hz: f64) -> Complex<f64> {
        let ends = &self.ends;
        let hp = if ends.hpf_on {
            ends.hpf.response(freq_hz, ends.fs)
        } else {
            Complex::new(1.0, 0.0)
        };
        hp * self.stage1.response(freq_hz)
            * self.stage2.response(freq_hz)
            * ends.out_hp.response(freq_hz, ends.fs)
            * (ends.in_gain_target * self.level_target * ends.out_gain_target)
    }

    fn transfer_curve(&self, v_in: f64) -> f64 {
        let p1 = self.stage1.transfer_curve(v_in * self.ends.in_gain_target);
        self.stage2.transfer_curve(p1 * self.level_target) * self.ends.out_gain_target
    }

    fn operating_points(&self) -> [(f64, f64, f64); 2] {
        [self.stage1.operating_point(), self.stage2.operating_point()]
    }

    /// Most positive grid-to-cathode voltage `[channel][stage]` of the
    /// peaks in `st`.
    fn grid_peak_volts<L: Lane, const N: usize>(&self, st: &ChannelState<L>) -> [[f64; 2]; N] {
        let peaks = st.q_peak;
        let (s1, s2) = (&self.stage1, &self.stage2);
        std::array::from_fn(|c| [s1.vgk_at(peaks[0].lane(c)), s2.vgk_at(peaks[1].lane(c))])
    }
}
