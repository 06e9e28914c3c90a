//! The solid-state preamp ([`SolidPreamp`]): its controls, its three parts
//! ([`PreampPart`]: the linear front and back at the ends' rate, the two
//! op-amp stages at the stages' rate) and their block loops.
//!
//! Latency: 0 samples (plus the fractional ADAA group delay, ≈ 0.11
//! oversampled samples per stage at 192 kHz, not an integer latency).
//! Units: volts in at the mic input, volts out at the output level control.

use super::curve::RailCurve;
use super::stages::{StageParams, StagesRun, StagesState, CHUNK};
use super::{INPUT_STAGE_MAKEUP_DB, OUTPUT_STAGE_GAIN_DB, SWING_VOLTS};
use crate::dsp::fma::Unfused;
use crate::dsp::simd::Channels;
use crate::dsp::tube::{
    adaa_compensation, smooth, HighPass, OnePoleHighPass, PreampPart, PreampSettings, SvfHighPass,
};
use crate::dsp::{db_to_gain, Isa, Lane, ProcessSpec, F2};
use num_complex::Complex;

/// Input voltages are clamped to ±this (far beyond any real mic input; the
/// tube preamp's guard).
const INPUT_LIMIT_VOLTS: f64 = 1e4;
/// Time constant of the internal gain smoothing (as the tube preamp's).
const GAIN_SMOOTHING_MS: f64 = 2.0;
/// The input coupling: 47 µF in each leg into the 1 kΩ bias resistor of
/// each leg (differentially 23.5 µF into 2 kΩ): 1/(2π·2 kΩ·23.5 µF).
const INPUT_COUPLING_HZ: f64 = 3.386;
/// The ADAA pre-emphasis keeps each stage flat to this frequency ...
const ADAA_FLAT_HZ: f64 = 20_000.0;
/// ... within this loss (dB) (the tube stages' figures).
const ADAA_FLAT_DB: f64 = 0.025;

/// Per-sample state of one channel.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct ChannelState {
    /// Input coupling integrator.
    coupling: f64,
    /// Input high-pass integrators.
    hpf: [f64; 2],
    /// Stage 1's last pre-emphasised input (the pre-emphasis state and the
    /// ADAA's previous input at once).
    u1: f64,
    /// Stage 2's, likewise.
    u2: f64,
}

impl ChannelState {
    /// The front's states back to 0 if any is not finite.
    fn restart_front_if_not_finite(&mut self) {
        if !(self.coupling.is_finite() && self.hpf[0].is_finite() && self.hpf[1].is_finite()) {
            self.coupling = 0.0;
            self.hpf = [0.0; 2];
        }
    }
}

/// A transformerless op-amp mic preamp, one channel: input coupling and
/// high-pass, an instrumentation-amp gain stage (Gain), the Level
/// attenuator, a fixed-gain output stage; both stages clip at their rails
/// (see the module header of `solid.rs`). It takes the tube preamp's
/// [`PreampSettings`] (its `tube` and `bias` mean nothing here) and offers
/// the tube [`Preamp`](crate::dsp::tube::Preamp)'s methods with the same
/// meaning, so a chain section can hold either. Runs its stages at the
/// oversampled rate.
#[derive(Clone, Debug)]
pub struct SolidPreamp {
    /// Current settings (clamped).
    settings: PreampSettings,
    /// Rate of the stages, Hz (oversampled in the chain).
    fs: f64,
    /// Rate of the linear ends (front and back), Hz.
    ends_fs: f64,
    /// The input coupling capacitors (one-pole high-pass).
    coupling: OnePoleHighPass,
    /// The input high-pass switch.
    hpf: SvfHighPass,
    /// Whether the input high-pass runs.
    hpf_on: bool,
    /// Set when the high-pass was just switched on (its state must start at 0).
    hpf_restart: bool,
    /// Both stages' static curve.
    curve: RailCurve,
    /// Pole b of the ADAA pre-emphasis (1 + b)/(1 + b·z⁻¹) at `fs`.
    emphasis: f64,
    /// Linear gain of stage 1 (Gain plus the input stage's make-up): target.
    in_gain_target: f64,
    /// Smoothed, at the ends' rate.
    in_gain: f64,
    /// Linear Level: target.
    level_target: f64,
    /// Smoothed, at the stages' rate.
    level: f64,
    /// Linear output level: target.
    out_gain_target: f64,
    /// Smoothed, at the ends' rate.
    out_gain: f64,
    /// Linear gain of the output stage (fixed).
    out_stage_gain: f64,
    /// One-pole smoothing coefficient at `fs`.
    smooth_a: f64,
    /// One-pole smoothing coefficient at `ends_fs`.
    ends_smooth_a: f64,
    /// Samples through the front since reset (flush positions).
    front_counter: u64,
    /// Samples through the stages since reset.
    stages_counter: u64,
    /// The channel's state.
    state: ChannelState,
    /// The build the stages' loops run in.
    isa: Isa,
}

impl Default for SolidPreamp {
    fn default() -> Self {
        Self::new()
    }
}

/// The one-pole smoothing coefficient of [`GAIN_SMOOTHING_MS`] at `fs`.
fn smoothing_coefficient(fs: f64) -> f64 {
    -(-1.0 / (fs * GAIN_SMOOTHING_MS * 1e-3)).exp_m1()
}

/// Response of one stage's pre-emphasis and ADAA average on its linear
/// part, `(1 + b)/(1 + b·z⁻¹) · (1 + z⁻¹)/2`, at `freq_hz` and rate `fs`.
fn stage_response(b: f64, freq_hz: f64, fs: f64) -> Complex<f64> {
    let z1 = Complex::from_polar(1.0, -std::f64::consts::TAU * freq_hz / fs);
    (1.0 + b) / (1.0 + b * z1) * (1.0 + z1) * 0.5
}

impl SolidPreamp {
    /// Channels carried.
    pub const CHANNELS: usize = 1;

    /// A preamp with default settings, ready at 48 kHz (nothing to build:
    /// `prepare` only sets the rate and resets).
    pub fn new() -> Self {
        let mut p = Self {
            settings: PreampSettings::default(),
            fs: 48_000.0,
            ends_fs: 48_000.0,
            coupling: OnePoleHighPass::default(),
            hpf: SvfHighPass::default(),
            hpf_on: false,
            hpf_restart: false,
            curve: RailCurve::new(SWING_VOLTS),
            emphasis: 0.0,
            in_gain_target: 1.0,
            in_gain: 1.0,
            level_target: 1.0,
            level: 1.0,
            out_gain_target: 1.0,
            out_gain: 1.0,
            out_stage_gain: db_to_gain(OUTPUT_STAGE_GAIN_DB),
            smooth_a: 1.0,
            ends_smooth_a: 1.0,
            front_counter: 0,
            stages_counter: 0,
            state: ChannelState::default(),
            isa: Isa::portable(),
        };
        p.set_rates(48_000.0, 48_000.0);
        p.apply_settings(PreampSettings::default(), true);
        p.reset();
        p
    }

    /// Set every part's rate to `spec.sample_rate` and reset. Never
    /// allocates (there is nothing to build).
    pub fn prepare(&mut self, spec: &ProcessSpec) {
        self.isa = spec.isa;
        self.set_rates(spec.sample_rate, spec.sample_rate);
        self.apply_settings(self.settings, true);
        self.reset();
    }

    /// Every part at `fs`. Never allocates.
    pub fn set_sample_rate(&mut self, fs: f64) {
        self.set_rates(fs, fs);
    }

    /// Run the stages at `fs` and the linear ends at `ends_fs` (the host
    /// rate around an oversampler; see [`PreampPart`]). Never allocates.
    pub fn set_rates(&mut self, fs: f64, ends_fs: f64) {
        self.fs = fs;
        self.ends_fs = ends_fs;
        self.emphasis = adaa_compensation(ADAA_FLAT_HZ, fs, ADAA_FLAT_DB);
        self.smooth_a = smoothing_coefficient(fs);
        self.ends_smooth_a = smoothing_coefficient(ends_fs);
        self.coupling.set(INPUT_COUPLING_HZ, ends_fs);
        if let Some(fc) = self.settings.hpf.cutoff_hz() {
            self.hpf.set(fc, ends_fs);
        }
    }

    /// The settings in use.
    pub fn settings(&self) -> PreampSettings {
        self.settings
    }

    /// Apply settings; Gain, Level and the output level move with the
    /// preamp's 2 ms smoothing. Never allocates.
    pub fn set_settings(&mut self, s: PreampSettings) {
        self.apply_settings(s, false);
    }

    /// Apply settings with no internal gain smoothing: for an instance
    /// that a crossfade brings in, which is the smoothing. Never allocates.
    pub fn set_settings_at_once(&mut self, s: PreampSettings) {
        self.apply_settings(s, true);
    }

    fn apply_settings(&mut self, s: PreampSettings, force: bool) {
        let s = s.clamped();
        let old = self.settings;
        self.settings = s;
        if force || s.hpf != old.hpf {
            self.hpf_on = s.hpf.cutoff_hz().is_some();
            if let Some(fc) = s.hpf.cutoff_hz() {
                self.hpf.set(fc, self.ends_fs);
            }
            if old.hpf == HighPass::Off {
                self.hpf_restart = true;
            }
        }
        self.in_gain_target = db_to_gain(s.gain_db + INPUT_STAGE_MAKEUP_DB);
        self.level_target = db_to_gain(s.level_db);
        self.out_gain_target = db_to_gain(s.output_db);
        if force {
            self.in_gain = self.in_gain_target;
            self.level = self.level_target;
            self.out_gain = self.out_gain_target;
        }
    }

    /// Back to rest: silence in gives exactly zero out, smoothed gains at
    /// their targets, counters at zero. Never allocates.
    pub fn reset(&mut self) {
        self.state = ChannelState::default();
        self.hpf_restart = false;
        self.in_gain = self.in_gain_target;
        self.level = self.level_target;
        self.out_gain = self.out_gain_target;
        self.front_counter = 0;
        self.stages_counter = 0;
    }

    /// Linear small-signal gain from mic input to output at 1 kHz (what the
    /// chain's auto-gain divides by): Gain + Level + the fixed make-up
    /// ([`super::MAKEUP_DB`]) + output level, within 0.001 dB (the input
    /// coupling and the ADAA's residual at 1 kHz).
    pub fn small_signal_gain(&self) -> f64 {
        self.small_signal_response(1000.0).norm()
    }

    /// Small-signal response at `freq_hz`, volts out per volt in: input
    /// coupling, high-pass, both stages' ADAA average and pre-emphasis,
    /// every gain (at their targets). The oversampler around the stages in
    /// the chain is not included.
    pub fn small_signal_response(&self, freq_hz: f64) -> Complex<f64> {
        let hp = if self.hpf_on {
            self.hpf.response(freq_hz, self.ends_fs)
        } else {
            Complex::new(1.0, 0.0)
        };
        let stage = stage_response(self.emphasis, freq_hz, self.fs);
        hp * self.coupling.response(freq_hz, self.ends_fs)
            * stage
            * stage
            * (self.in_gain_target * self.level_target * self.out_stage_gain * self.out_gain_target)
    }

    /// Static transfer curve: output volts for a mic-input voltage held
    /// (the coupling capacitors left out; for plotting).
    pub fn transfer_curve(&self, v_in: f64) -> f64 {
        let c = &self.curve;
        let v1 = c.value(v_in * self.in_gain_target);
        c.value(v1 * self.level_target * self.out_stage_gain) * self.out_gain_target
    }

    /// Process one channel in place: mic-input volts in, output volts out,
    /// every part at the stages' rate.
    pub fn process(&mut self, block: &mut [f64]) {
        self.process_part(PreampPart::Whole, block);
    }

    /// Run one part of the preamp over one channel in place. Never
    /// allocates.
    pub fn process_part(&mut self, part: PreampPart, block: &mut [f64]) {
        match part {
            PreampPart::Whole => {
                self.front(block);
                self.stages(block);
                self.back(block);
            }
            PreampPart::Front => self.front(block),
            PreampPart::Stages => self.stages(block),
            PreampPart::Back => self.back(block),
        }
    }

    /// A high-pass switched in since the last block starts from rest.
    fn restart_hpf_if_switched(&mut self) {
        if self.hpf_restart {
            self.state.hpf = [0.0; 2];
            self.hpf_restart = false;
        }
    }

    /// The input end: guard, smoothed Gain, coupling, high-pass.
    fn front(&mut self, block: &mut [f64]) {
        self.restart_hpf_if_switched();
        let (mut coupling, mut hpf) = (self.state.coupling, self.state.hpf);
        let (mut g, mut counter) = (self.in_gain, self.front_counter);
        self.front_lanes::<f64>(
            &mut coupling,
            &mut hpf,
            &mut g,
            &mut counter,
            [block, &mut []],
        );
        (self.in_gain, self.front_counter) = (g, counter);
        (self.state.coupling, self.state.hpf) = (coupling, hpf);
        self.state.restart_front_if_not_finite();
    }

    /// The input end of a stereo pair whose fronts run alike (the same
    /// settings, rate, Gain and sample count: always in a chain's section),
    /// both channels in the lanes of one loop, each bit for bit its own
    /// [`Self::front`] (the same operations, lane by lane: the coupling's
    /// and the high-pass's recursions of both channels in one chain of
    /// dependent operations instead of two); otherwise channel by channel.
    fn front_pair(a: &mut SolidPreamp, b: &mut SolidPreamp, left: &mut [f64], right: &mut [f64]) {
        let together = left.len() == right.len()
            && a.settings == b.settings
            && a.ends_fs.to_bits() == b.ends_fs.to_bits()
            && a.ends_smooth_a.to_bits() == b.ends_smooth_a.to_bits()
            && a.hpf_on == b.hpf_on
            && a.in_gain.to_bits() == b.in_gain.to_bits()
            && a.in_gain_target.to_bits() == b.in_gain_target.to_bits()
            && a.front_counter == b.front_counter;
        if !together {
            a.front(left);
            b.front(right);
            return;
        }
        a.restart_hpf_if_switched();
        b.restart_hpf_if_switched();
        let two = |x: f64, y: f64| F2([x, y]);
        let mut coupling = two(a.state.coupling, b.state.coupling);
        let mut hpf = [0, 1].map(|i| two(a.state.hpf[i], b.state.hpf[i]));
        let (mut g, mut counter) = (a.in_gain, a.front_counter);
        a.front_lanes::<F2>(&mut coupling, &mut hpf, &mut g, &mut counter, [left, right]);
        for (c, p) in [a, b].into_iter().enumerate() {
            (p.in_gain, p.front_counter) = (g, counter);
            p.state.coupling = coupling.lane(c);
            p.state.hpf = [hpf[0].lane(c), hpf[1].lane(c)];
            p.state.restart_front_if_not_finite();
        }
    }

    /// The input end's loop over the channels' `blocks` in lanes `L`
    /// (`f64` for one, `F2` for a pair), from and to the states given.
    #[inline(always)]
    fn front_lanes<L: Channels>(
        &self,
        coupling: &mut L,
        hpf: &mut [L; 2],
        g: &mut f64,
        counter: &mut u64,
        mut blocks: [&mut [f64]; 2],
    ) {
        let (a, target) = (self.ends_smooth_a, self.in_gain_target);
        for i in 0..blocks[0].len() {
            if *g != target {
                *g = smooth(*g, target, a);
            }
            let v = L::gather(&blocks, i).sanitize(INPUT_LIMIT_VOLTS) * L::splat(*g);
            let mut v = self.coupling.tick::<Unfused, L>(coupling, v);
            if self.hpf_on {
                v = self.hpf.tick::<Unfused, L>(hpf, v);
            }
            v.scatter(&mut blocks, i);
            *counter += 1;
            if counter.is_multiple_of(CHUNK as u64) {
                *coupling = coupling.flush();
                *hpf = [hpf[0].flush(), hpf[1].flush()];
            }
        }
    }

    /// The two stages and Level, chunk by chunk (chunks end where the
    /// stages' sample count reaches multiples of `CHUNK`; see
    /// `solid/stages.rs`).
    fn stages(&mut self, block: &mut [f64]) {
        let mut st = StagesState {
            u1: self.state.u1,
            u2: self.state.u2,
            level: self.level,
            counter: self.stages_counter,
        };
        self.isa.run(StagesRun::<f64> {
            params: self.stage_params(),
            state: &mut st,
            blocks: [block, &mut []],
        });
        (self.state.u1, self.state.u2) = (st.u1, st.u2);
        self.level = st.level;
        self.stages_counter = st.counter;
    }

    /// What the stages run with.
    fn stage_params(&self) -> StageParams {
        StageParams {
            curve: self.curve,
            b: self.emphasis,
            g2: self.out_stage_gain,
            smooth_a: self.smooth_a,
            target: self.level_target,
        }
    }

    /// Run one part of a stereo pair in place: the stages of both channels
    /// in the lanes of one loop when they run alike (the same rates,
    /// Level and sample count: always in a chain's section), each bit for
    /// bit its own `process_part`; otherwise, and the ends, channel by
    /// channel. Never allocates.
    pub fn process_pair_part(
        a: &mut SolidPreamp,
        b: &mut SolidPreamp,
        part: PreampPart,
        left: &mut [f64],
        right: &mut [f64],
    ) {
        let (pa, pb) = (a.stage_params(), b.stage_params());
        let together = part == PreampPart::Stages
            && left.len() == right.len()
            && a.isa == b.isa
            && a.level == b.level
            && a.stages_counter == b.stages_counter
            && pa == pb;
        if !together {
            if part == PreampPart::Front {
                Self::front_pair(a, b, left, right);
                return;
            }
            a.process_part(part, left);
            b.process_part(part, right);
            return;
        }
        let mut st = StagesState {
            u1: F2([a.state.u1, b.state.u1]),
            u2: F2([a.state.u2, b.state.u2]),
            level: a.level,
            counter: a.stages_counter,
        };
        a.isa.run(StagesRun::<F2> {
            params: pa,
            state: &mut st,
            blocks: [left, right],
        });
        (a.state.u1, b.state.u1) = (st.u1.lane(0), st.u1.lane(1));
        (a.state.u2, b.state.u2) = (st.u2.lane(0), st.u2.lane(1));
        (a.level, b.level) = (st.level, st.level);
        (a.stages_counter, b.stages_counter) = (st.counter, st.counter);
    }

    /// The output end: the smoothed output level.
    fn back(&mut self, block: &mut [f64]) {
        let (a, target) = (self.ends_smooth_a, self.out_gain_target);
        let mut g = self.out_gain;
        if g != target {
            for y in block.iter_mut() {
                g = smooth(g, target, a);
                *y *= g;
            }
        } else {
            for y in block.iter_mut() {
                *y *= g;
            }
        }
        self.out_gain = g;
    }
}
