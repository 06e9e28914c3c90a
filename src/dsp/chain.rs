//! The chain: input calibration → [DI → preamp → headphone amp] → output.
//!
//! ```text
//!  host f32 ──► sanitize ──► ×in_gain ──► DI box ──► ×pre_gain ──► oversampled preamp ──► auto-gain ──► ×pre_out ──► headphone amp ──► ×out_gain ──► mix ──► compare ──► bypass ──► f32
//!  (dBFS)       (NaN→0)      (dBFS→V,                (pad −20 dB,   (tubes; a pure delay   (loudness of   (preamp     (Zo into the     (V→dBFS,     (dry delayed by the
//!                            source,                  polarity)      of the same latency    the track)     output      headphone load;  out trim)     wet path's latency;
//!                            in trim)                                when it is out)                       level)      a pure delay                  compare plays it at
//!                                                                                                                      when it is out)               the output's loudness)
//! ```
//!
//! Compare ("level-matched bypass") crossfades over 20 ms, like bypass, to
//! the time-aligned dry signal times `√(P_out/P_dry)`, where the P are the
//! K-weighted (BS.1770) powers of the output (after mix, before compare)
//! and of the dry signal, averaged over about 3 s by the auto-gain's
//! estimator ([`LoudnessPair`]). The estimator runs whether compare is on or
//! not, so switching is instant and already matched: a listener compares
//! character, not loudness. Per channel, like the auto-gain.
//!
//! The DI box runs at the host rate: it is linear apart from its core, whose
//! flux lives below a few hundred hertz and which the stage itself runs
//! decimated (see `transformer.rs`), so oversampling would cost CPU and buy
//! nothing. The tube preamp's triode stages run oversampled; its linear
//! ends (input gain and high-pass, output coupling) run at the host rate,
//! before the upsampler and after the downsampler ([`PreampPart`]). The
//! preamp's in/out switch is the crossfade between the oversampled section
//! and the pure delay that stands in for it.
//!
//! # Moving a control
//!
//! Nothing a person does between two samples may burst, dip or click. Three
//! mechanisms, each chosen for what it moves:
//!
//! - **Gains** ramp over 20 ms, per sample ([`GainSmoother`]: straight in
//!   dB). Gains that must cancel ramp alike and cancel at every sample: the
//!   calibration's dBFS → volts and volts → dBFS, and every gain in front of
//!   the preamp and the auto-gain's compensation of it (below).
//! - **Switches** (a stage in or out, bypass, compare, mix) crossfade over
//!   20 ms between the stage's input and output (`Switch`); the stage keeps
//!   running during the fade, and a stage that was fully out comes back
//!   settled on the recent input (the DI and the preamp run over the last
//!   [`PRE_ROLL_S`] first; the headphone amp, linear, from rest).
//! - **Anything that retunes a stage** (tube, bias, Gain, Level, high-pass,
//!   quality, polarity; the DI's ratio, pad, source, load, mains, ground
//!   lift) crossfades between the stage's old and new processing over
//!   20 ms (`Morph`). The chain holds two instances of the DI and of the
//!   oversampled section. The standby one is reset and run over the last
//!   [`PRE_ROLL_S`] of input with the new settings (a ring of recent input
//!   per channel; no allocation), so it comes in settled, in the state it
//!   would have had the settings been in force: no start-up transient, and
//!   none of the old state, which under other settings means something
//!   else (the blocking bias of a stage clipped at another gain, a filter
//!   of another network). Both run while the output fades from one to the
//!   other. A change during a fade waits for its end. The headphone amp
//!   retunes itself smoothly (its output impedance and swing limit move per
//!   sample, a load change crossfades inside the stage).
//!
//! # The auto-gain in motion
//!
//! The auto-gain acts on the section's output only, before the crossfade
//! with the pure delay that stands in for it, so switching the preamp in or
//! out crossfades two paths that are each at their own steady level. The
//! preamp's output level is applied after it (still on the section's
//! path), so that with auto-gain on the output level still does what it
//! says.
//!
//! Its static compensation divides by the small-signal gain at 1 kHz from
//! the track to the section's output. Each section runs at a fixed
//! **drive** (volts at its input per unit of track at 1 kHz: calibration,
//! source and trim, the DI, the pad): its input is the ramped signal
//! scaled by its drive over the ramped front gain, per sample. So its
//! compensation is exact at every sample, and any change of drive is a
//! change of section settings: a crossfade between two sections, each at
//! its own drive. With the DI in, a change of the input gain also re-seats
//! the DI (each DI then runs at its own input gain: a core driven into
//! saturation is not a gain the section could take back), and a DI change
//! re-seats the section on the new DI's output.
//!
//! What the small-signal gain cannot know (how much the tubes compress at
//! this drive, what the DI does to the spectrum the loudness is weighed
//! in) is the slow loudness correction's, measured over seconds. A change
//! hands it over: the new section's pre-roll is weighed (K-weighted, like
//! the auto-gain) against the track over the same samples, and the new
//! section comes in, and stays, at the correction that matches it to the
//! track. Measured against the track rather than against the old section,
//! the hand-overs of many changes cannot add up. A restarting auto-gain
//! (the preamp or Auto Gain switched in) learns the last [`PRE_ROLL_S`]
//! first, so it starts at its steady correction.
//!
//! A quality change crossfades the two sections as well, and the delays of
//! the dry path and of the stand-in move to the new latency by crossfading
//! their taps; the latency reported changes with it. The DI's hum follows
//! the chain's mains clock, so a DI that comes in joins it in phase.
//!
//! Units: the host's samples are dBFS (1.0 = full scale). Between `in_gain`
//! and `out_gain` the signal is in volts: `in_gain` maps a sample of 1.0 to
//! the peak voltage of a full-scale sine under the chosen calibration
//! ("0 dBFS = X dBu"), scaled so that the track's nominal level stands for the
//! source's nominal level; `out_gain` maps volts back with the same
//! calibration. With every stage out, the chain is therefore an exact
//! identity (delayed by the reported latency), because the arithmetic is
//! `f64` and the result is rounded back to `f32` once.
//!
//! Host blocks are processed in chunks of at most [`MAX_BLOCK`] samples, so all
//! scratch memory is fixed-size and allocated in [`Chain::prepare`]. Every
//! continuous gain is smoothed per sample by the core, so the output does not
//! depend on how the host splits its blocks.
//!
//! A stereo pair runs its two channels together where their work is
//! latency-bound: the oversamplers and the preamp in SIMD lanes, and the
//! auto-gain's and the compare's K-weightings in the four lanes of a
//! [`LoudnessQuad`] (each channel's result is bit-identical to running it
//! alone). The host-rate chunk loop runs as an AVX2 build when the CPU has
//! it (no FMA, so the rounding is the same). Gain curves that are settled
//! are written once and reused, and a switch that is settled runs its stage
//! in place, without the copies a crossfade needs.
//!
//! Latency is the oversampler's latency for the chosen quality, whether or not
//! a non-linear stage is active, so that switching stages in and out never
//! changes the latency a host has compensated for. The dry path (for mix and
//! bypass) is delayed by the same amount.
//!
//! # Where things are
//!
//! - `settings.rs`: [`ChainSettings`], the section's settings and its
//!   drive, and what a change of each kind does.
//! - `morph.rs`: the crossfade every switch and every change uses:
//!   `Switch`, `Morph`, the fade's curve.
//! - `section.rs`: the oversampled section (oversamplers and preamps) and
//!   how a stereo pair runs in SIMD lanes.
//! - `preroll.rs`: the rings of recent input, the pre-roll of a new DI or
//!   section, and when each change starts (`Chain::start_changes`).
//! - `handover.rs`: the auto-gain's hand-over to a new section.
//! - `compare.rs`: the compare's loudness match.
//! - `plan.rs`: a chunk's gain curves and what each crossfade asks of it.
//! - `chunk.rs`: one chunk, top to bottom.

mod chunk;
mod compare;
mod handover;
mod morph;
mod plan;
mod preroll;
mod section;
mod settings;

pub use preroll::PRE_ROLL_S;
pub use settings::{
    input_response, transformer_drive, ChainSettings, PreampType, Source, HIGH_FACTOR, LIVE_FACTOR,
    PAD_DB, PRO_LINE_DBU,
};

// Everything the chain takes from the rest of the DSP core, in one place:
// the submodules import it from here (`use super::…`).
use super::delay::DelayLine;
use super::fma::MulAdd;
use super::headphone::{
    design_loads, CustomFilter, HeadphoneAmp, HeadphoneLevels, HeadphoneSettings,
};
use super::loudness::{AutoGain, AutoGainSettings, LoudnessPair, LoudnessQuad};
use super::meters::{ChainMeters, Tap, TapSums};
use super::mic::{MicSettings, MicSource, LATENCY as MIC_LATENCY};
use super::oversampling::{latency_for, Oversampler, Quality};
use super::simd::Kernel;
use super::smoothing::{GainSmoother, LinearSmoother, Ramp, SMOOTHING_TIME_S};
use super::solid::SolidPreamp;
use super::stage::Stage;
use super::transformer::{
    DiBox, DiSettings, MicTransformer, MicTransformerSettings, NOMINAL_RATIO,
};
use super::tube::{Preamp, PreampPart, PreampSettings, StereoPreamp, GRID_CONDUCTION_VOLTS};
use super::{db_to_gain, full_scale_peak_volts, Isa, ProcessSpec, DBU_REF_VOLTS, MAX_BLOCK};

use chunk::ChannelState;
use morph::{Morph, Switch};
use plan::GainCurves;
use section::Section;
use settings::{front_gain, quality_factor, quality_index, SectionSettings};

/// The whole signal chain for up to N channels.
pub struct Chain {
    /// The host stream this chain was prepared for.
    spec: ProcessSpec,
    /// The settings asked for last (targets of the smoothers and morphs).
    settings: ChainSettings,
    /// One state per channel, allocated in `prepare`.
    channels: Vec<ChannelState>,
    /// The two oversampled sections (see [`Morph`]).
    sections: [Section; 2],
    /// Which section plays, and the crossfade between them.
    section_morph: Morph<SectionSettings>,
    /// Which DI instance plays, and the crossfade between them.
    di_morph: Morph<DiSettings>,
    /// Each DI instance's gain at 1 kHz (for the static compensation).
    di_gain: [f64; 2],
    /// The input gain (track → volts) each DI instance was last brought up
    /// to date at; in a re-seat each runs at its own.
    di_in_gain: [f64; 2],
    /// Section latency of each quality at this rate, worked out in `prepare`.
    os_latency: [usize; 2],
    /// The calibration's dBFS → volts.
    cal: GainSmoother,
    /// Source level and input trim.
    source_trim: GainSmoother,
    /// The calibration's volts → dBFS (ramps as the exact reciprocal of
    /// `cal`, so a calibration change leaves an all-out chain untouched).
    uncal: GainSmoother,
    /// Output trim.
    out_trim: GainSmoother,
    /// The preamp's pad.
    pad: GainSmoother,
    /// Polarity of the path that stands in for the section (ramps through
    /// zero on a flip: no click; the sections have their own, and a flip
    /// re-seats them).
    polarity: LinearSmoother,
    /// Wet fraction.
    mix: LinearSmoother,
    /// 0 = processing, 1 = bypassed.
    bypass: LinearSmoother,
    /// 0 = processed output, 1 = level-matched dry (compare).
    compare: LinearSmoother,
    /// The DI box in or out.
    di: Switch,
    /// The oversampled section in, or the pure delay that stands in for it.
    oversampled: Switch,
    /// The auto-gain acting or not.
    auto_gain: Switch,
    /// The auto-gain did not run in the last chunk (restart it).
    auto_gain_idle: bool,
    /// The preamp's output level.
    preamp_output_gain: GainSmoother,
    /// The headphone amp in, or the pure delay that stands in for it.
    headphone: Switch,
    /// Scratch for the per-sample gains of a chunk.
    curves: Box<GainCurves>,
    /// The inputs of the settled chunk plan the curves hold (see
    /// `plan_chunk`), if they hold one.
    steady_key: Option<[u64; 4]>,
    /// The running section fade re-seats the section on the new DI: each
    /// section instance takes its own DI instance's output.
    joint: bool,
    /// Whether the running section was last seated on the DI's output.
    di_seated: bool,
    /// Latency of the wet path in host samples.
    latency: usize,
    /// Next write position in the channels' rings of recent input (the
    /// track and the section's input).
    history_pos: usize,
    /// Samples processed since reset.
    clock: u64,
    /// The level taps run (off: they cost nothing).
    metering: bool,
    /// Peak and power sums of the taps since the last `take_meters`.
    taps: TapSums,
    /// Host samples the taps cover.
    meter_samples: u64,
    /// The oversampled section ran since the last `take_meters` (its grid
    /// peaks mean something).
    meter_section_ran: bool,
    /// A build forced by `prepare_with_isa` (tests); `None`: the fastest
    /// this CPU runs, asked once in `prepare` and kept in `spec.isa`.
    forced_isa: Option<Isa>,
}

impl Default for Chain {
    fn default() -> Self {
        Self::new()
    }
}

impl Chain {
    /// An unprepared chain with default settings.
    pub fn new() -> Self {
        let settings = ChainSettings::default();
        let section = SectionSettings::of(&settings, settings.input_gain());
        Self {
            spec: ProcessSpec {
                sample_rate: 48_000.0,
                max_block: MAX_BLOCK,
                isa: Isa::portable(),
            },
            settings,
            channels: Vec::new(),
            sections: [
                Section::for_channels(0, section),
                Section::for_channels(0, section),
            ],
            section_morph: Morph::new(section),
            di_morph: Morph::new(settings.di),
            di_gain: [1.0; 2],
            di_in_gain: [settings.input_gain(); 2],
            os_latency: [0; 2],
            cal: GainSmoother::new(full_scale_peak_volts(settings.cal_dbu)),
            source_trim: GainSmoother::new(settings.source_and_trim_gain()),
            uncal: GainSmoother::new(1.0 / full_scale_peak_volts(settings.cal_dbu)),
            out_trim: GainSmoother::new(db_to_gain(settings.out_trim_db)),
            pad: GainSmoother::new(settings.pad_gain()),
            polarity: LinearSmoother::new(settings.polarity_sign()),
            mix: LinearSmoother::new(settings.mix),
            bypass: LinearSmoother::new(0.0),
            compare: LinearSmoother::new(0.0),
            di: Switch::new(false),
            oversampled: Switch::new(false),
            auto_gain: Switch::new(false),
            auto_gain_idle: true,
            preamp_output_gain: GainSmoother::new(1.0),
            headphone: Switch::new(false),
            curves: Box::new(GainCurves::new()),
            forced_isa: None,
            joint: false,
            di_seated: false,
            steady_key: None,
            latency: 0,
            history_pos: 0,
            clock: 0,
            metering: false,
            taps: TapSums::default(),
            meter_samples: 0,
            meter_section_ran: false,
        }
    }

    /// `prepare`, with every loop of the chain forced to run in `isa`
    /// (tests: each build, end to end). Later `prepare`s keep it.
    pub fn prepare_with_isa(&mut self, sample_rate: f64, num_channels: usize, isa: Isa) {
        self.forced_isa = Some(isa);
        self.prepare(sample_rate, num_channels);
    }

    /// The build the chain's loops run in (chosen in `prepare`).
    pub fn isa(&self) -> Isa {
        self.spec.isa
    }

    /// Allocate everything for `num_channels` channels at `sample_rate`.
    /// The only method that allocates. Ends in a settled, reset state.
    pub fn prepare(&mut self, sample_rate: f64, num_channels: usize) {
        self.spec = ProcessSpec {
            sample_rate,
            max_block: MAX_BLOCK,
            isa: self.forced_isa.unwrap_or_else(Isa::detect),
        };
        self.channels = (0..num_channels).map(|_| ChannelState::new()).collect();
        // The half-band designs behind the latencies are worked out here,
        // never on the audio thread.
        for q in [Quality::Live, Quality::High] {
            self.os_latency[quality_index(q)] =
                MIC_LATENCY + latency_for(q, quality_factor(q), sample_rate);
        }
        let hp_latency = HeadphoneAmp::new().latency_samples();
        let max_os_latency = self.os_latency.into_iter().max().unwrap_or(0);
        let max_latency = max_os_latency + hp_latency;
        let designs = design_loads(sample_rate);
        let section = SectionSettings::of(&self.settings, self.settings.input_gain());
        for s in &mut self.sections {
            *s = Section::for_channels(num_channels, section);
            s.prepare(&self.spec);
        }
        let history = ((PRE_ROLL_S * sample_rate).ceil() as usize).max(MAX_BLOCK);
        for ch in &mut self.channels {
            ch.history = vec![0.0; history];
            ch.di_history = vec![0.0; history];
            ch.wet_delay.prepare(max_latency);
            ch.dry_delay.prepare(max_latency);
            ch.reference_delay.prepare(max_latency);
            ch.auto_gain.prepare(&self.spec);
            // The chain applies the static compensation itself.
            ch.auto_gain.set_settings(AutoGainSettings {
                enabled: true,
                static_gain: 1.0,
            });
            ch.compare.set_sample_rate(sample_rate);
            ch.handover_meter.set_sample_rate(sample_rate);
            for di in &mut ch.di {
                di.prepare(&self.spec);
            }
            ch.headphone.prepare_with(&self.spec, &designs);
            ch.headphone_bypass.prepare(max_latency);
            ch.headphone_bypass
                .set_delay(ch.headphone.latency_samples());
        }
        for s in [
            &mut self.polarity,
            &mut self.mix,
            &mut self.bypass,
            &mut self.compare,
            &mut self.di.amount,
            &mut self.oversampled.amount,
            &mut self.auto_gain.amount,
            &mut self.headphone.amount,
            &mut self.section_morph.amount,
            &mut self.di_morph.amount,
        ] {
            s.set_sample_rate(sample_rate);
        }
        for s in [
            &mut self.cal,
            &mut self.source_trim,
            &mut self.uncal,
            &mut self.out_trim,
            &mut self.pad,
            &mut self.preamp_output_gain,
        ] {
            s.set_sample_rate(sample_rate);
        }
        self.reset();
    }

    /// Clear all state and jump every smoother to its target. Never
    /// allocates.
    pub fn reset(&mut self) {
        let s = self.settings;
        for ch in &mut self.channels {
            ch.reset(&s);
        }
        self.history_pos = 0;
        self.clock = 0;
        self.di_morph.settle();
        let di_gain = self.di_gain_of(self.di_morph.active);
        self.di_gain = [di_gain; 2];
        self.di_in_gain = [s.input_gain(); 2];
        self.section_morph.wanted = SectionSettings::of(&s, self.drive_target());
        let rate = self.spec.sample_rate;
        for sec in &mut self.sections {
            sec.apply(self.section_morph.wanted, rate);
            sec.reset();
        }
        self.section_morph.settle();
        self.joint = false;
        self.di_seated = s.di_on;
        self.di.jump(s.di_on);
        self.oversampled.jump(s.pre_on);
        self.auto_gain.jump(s.auto_gain);
        self.auto_gain_idle = true;
        self.headphone.jump(s.hp_on);
        self.cal.reset(full_scale_peak_volts(s.cal_dbu));
        self.source_trim.reset(s.source_and_trim_gain());
        self.uncal.reset(1.0 / full_scale_peak_volts(s.cal_dbu));
        self.out_trim.reset(db_to_gain(s.out_trim_db));
        self.pad.reset(s.pad_gain());
        self.polarity.reset(s.polarity_sign());
        self.preamp_output_gain
            .reset(db_to_gain(s.preamp.output_db));
        self.mix.reset(s.mix.clamp(0.0, 1.0));
        self.bypass.reset(if s.bypass { 1.0 } else { 0.0 });
        self.compare.reset(if s.compare { 1.0 } else { 0.0 });
        let os_latency = self.sections[self.section_morph.active].latency();
        self.set_delays(os_latency, false);
    }

    /// The drive the section heads for: the targets of the gains in front
    /// of it, multiplied in the order `plan_chunk` multiplies their curves.
    fn drive_target(&self) -> f64 {
        let di = if self.settings.di_on {
            self.di_gain[self.di_morph.wanted_instance()]
        } else {
            1.0
        };
        front_gain(
            self.cal.target(),
            self.source_trim.target(),
            self.pad.target(),
            di,
        )
    }

    /// Gain at 1 kHz of DI instance `i` (1 with no channels).
    fn di_gain_of(&self, i: usize) -> f64 {
        self.channels
            .first()
            .map_or(1.0, |ch| ch.di[i].response(1000.0).norm())
    }

    /// Point the wet path's delays at a section latency (crossfaded when
    /// `fade`, else at once) and record the chain's latency.
    fn set_delays(&mut self, os_latency: usize, fade: bool) {
        let hp_latency = self
            .channels
            .first()
            .map_or(0, |ch| ch.headphone.latency_samples());
        let fade_len = (SMOOTHING_TIME_S * self.spec.sample_rate).round() as usize;
        for ch in &mut self.channels {
            if fade {
                ch.wet_delay.set_delay_faded(os_latency, fade_len);
                ch.dry_delay
                    .set_delay_faded(os_latency + hp_latency, fade_len);
            } else {
                ch.wet_delay.set_delay(os_latency);
                ch.dry_delay.set_delay(os_latency + hp_latency);
            }
            // (A loudness reference: nobody hears it jump.)
            ch.reference_delay.set_delay(os_latency);
        }
        self.latency = os_latency + hp_latency;
    }

    /// The settings asked for last.
    pub fn settings(&self) -> &ChainSettings {
        &self.settings
    }

    /// Take new settings. Gains ramp; discrete changes and those that
    /// retune a stage crossfade between the stage's old and new processing
    /// (from the next processed sample). A quality change crossfades too
    /// and changes the latency ([`Self::latency_samples`] says the new one
    /// at once). Never allocates. (What each kind of change does:
    /// `settings.rs`.)
    pub fn set_settings(&mut self, s: ChainSettings) {
        if s == self.settings {
            return;
        }
        self.settings = s;
        self.cal.set_target(full_scale_peak_volts(s.cal_dbu));
        self.source_trim.set_target(s.source_and_trim_gain());
        self.uncal
            .set_target(1.0 / full_scale_peak_volts(s.cal_dbu));
        self.out_trim.set_target(db_to_gain(s.out_trim_db));
        self.pad.set_target(s.pad_gain());
        self.polarity.set_target(s.polarity_sign());
        self.mix.set_target(s.mix.clamp(0.0, 1.0));
        self.bypass.set_target(if s.bypass { 1.0 } else { 0.0 });
        self.compare.set_target(if s.compare { 1.0 } else { 0.0 });
        self.di.set(s.di_on);
        self.oversampled.set(s.pre_on);
        self.auto_gain.set(s.auto_gain);
        self.preamp_output_gain
            .set_target(db_to_gain(s.preamp.output_db));
        self.headphone.set(s.hp_on);
        for ch in &mut self.channels {
            ch.headphone.set_settings(s.headphone);
        }
        self.di_morph.wanted = s.di;
        // (The drive is worked out when the section's changes start:
        // `Chain::start_changes`.)
        self.section_morph.wanted = SectionSettings::of(&s, self.section_morph.wanted.drive);
        let hp_latency = self
            .channels
            .first()
            .map_or(0, |ch| ch.headphone.latency_samples());
        self.latency = self.os_latency[quality_index(s.quality)] + hp_latency;
    }

    /// Hand a measured headphone curve's filter (from
    /// [`super::headphone::design_custom`], designed off the audio thread for
    /// this sample rate and the current output impedance) to one channel's
    /// headphone amp. It takes effect with `HeadphoneModel::Custom`. Never
    /// allocates; returns the filter it displaces, for the caller to free
    /// off the audio thread.
    pub fn swap_headphone_custom(
        &mut self,
        channel: usize,
        filter: CustomFilter,
    ) -> Option<CustomFilter> {
        let ch = self.channels.get_mut(channel)?;
        Some(ch.headphone.swap_custom(filter))
    }

    /// Voltage, current and power at the headphone, per channel (for the
    /// editor and the renderer's report).
    pub fn headphone_levels(&self, channel: usize) -> Option<HeadphoneLevels> {
        self.channels.get(channel).map(|ch| ch.headphone.levels())
    }

    /// Switch the level taps on or off (off by default; off, they cost
    /// nothing). Switching on starts a fresh accumulation. Never allocates.
    pub fn set_metering(&mut self, on: bool) {
        if on && !self.metering {
            self.metering = true;
            self.take_meters();
        }
        self.metering = on;
    }

    /// Whether the level taps run.
    pub fn metering(&self) -> bool {
        self.metering
    }

    /// The meters since the last call (all zero while metering is off), and
    /// restart the accumulation. Never allocates.
    ///
    /// Levels are peak (max over channels) and rms (power mean over
    /// channels) in volts at each tap; grid, DI and headphone readings are
    /// the maximum over channels (grid bias, grid peak, DI saturation) or the
    /// mean (headphone power; the headphone current as the rms over
    /// channels). A grid peak reads the stage's bias when the preamp did not
    /// run during the period.
    pub fn take_meters(&mut self) -> ChainMeters {
        if !self.metering {
            return ChainMeters::default();
        }
        let s = self.settings;
        let values = (self.meter_samples as f64) * self.channels.len() as f64;
        let taps = std::mem::take(&mut self.taps);
        let mut m = ChainMeters {
            input: taps.reading(Tap::Input, values),
            di_out: taps.reading(Tap::DiOut, values),
            preamp_in: taps.reading(Tap::PreampIn, values),
            preamp_out: taps.reading(Tap::PreampOut, values),
            headphone: taps.reading(Tap::Headphone, values),
            output: taps.reading(Tap::Output, values),
            grid_conduction_volts: GRID_CONDUCTION_VOLTS,
            samples: self.meter_samples,
            ..ChainMeters::default()
        };
        let nch = self.channels.len();
        let mut grid_peak = [f64::NEG_INFINITY; 2];
        let mut grid_bias = [f64::NEG_INFINITY; 2];
        let (mut di_sat, mut power, mut current_sq) = (0.0f64, 0.0, 0.0);
        for (k, ch) in self.channels.iter_mut().enumerate() {
            let (bias, peaks) = self.sections[self.section_morph.active]
                .preamps
                .grid(k)
                .unwrap_or_default();
            for i in 0..2 {
                let bias = bias[i];
                grid_bias[i] = grid_bias[i].max(bias);
                let peak = if self.meter_section_ran {
                    peaks[i]
                } else {
                    bias
                };
                grid_peak[i] = grid_peak[i].max(peak);
            }
            di_sat = di_sat.max(ch.di[self.di_morph.active].take_peak_saturation());
            let hp = ch.headphone.levels();
            power += hp.power_watts;
            current_sq += hp.i_rms_amps * hp.i_rms_amps;
        }
        if nch > 0 {
            m.grid_peak_volts = grid_peak;
            m.grid_bias_volts = grid_bias;
            if s.di_on {
                m.di_saturation = di_sat;
            }
            if s.hp_on {
                m.headphone_power_watts = power / nch as f64;
                m.headphone_current_amps = (current_sq / nch as f64).sqrt();
            }
        }
        self.meter_samples = 0;
        self.meter_section_ran = false;
        m
    }

    /// Latency of the output relative to the input, in host samples.
    pub fn latency_samples(&self) -> usize {
        self.latency
    }

    /// Number of channels prepared.
    pub fn num_channels(&self) -> usize {
        self.channels.len()
    }

    /// Process a host block in place: one slice per channel, all the same
    /// length. Channels beyond those prepared are left untouched. Never
    /// allocates, locks or blocks.
    pub fn process(&mut self, channels: &mut [&mut [f32]]) {
        let len = channels.iter().map(|c| c.len()).min().unwrap_or(0);
        let mut start = 0;
        while start < len {
            // A chunk ends where a crossfade between two instances ends, so
            // a change waiting for it starts at the same sample whatever the
            // host's blocks.
            self.start_changes();
            let n = (len - start)
                .min(MAX_BLOCK)
                .min(self.di_morph.remaining())
                .min(self.section_morph.remaining());
            self.process_chunk(channels, start, n);
            start += n;
        }
    }

    /// One chunk, in the chain's build (the host-rate loops have no
    /// multiply-add to fuse: every build rounds them alike).
    fn process_chunk(&mut self, io: &mut [&mut [f32]], start: usize, n: usize) {
        struct Chunk<'a, 'b>(&'a mut Chain, &'a mut [&'b mut [f32]], usize, usize);
        impl Kernel for Chunk<'_, '_> {
            type Output = ();
            #[inline(always)]
            fn run<M: MulAdd>(self) {
                self.0.process_chunk_any::<M>(self.1, self.2, self.3);
            }
        }
        self.spec.isa.run(Chunk(self, io, start, n));
    }
}

// (Last, so that a reader of this file, or a check that stops at the first
// test module, sees all of its production code first.)
#[cfg(test)]
mod tests;
