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
//!   20 ms between the stage's input and output ([`Switch`]); the stage keeps
//!   running during the fade, and a stage that was fully out comes back
//!   settled on the recent input (the DI and the preamp run over the last
//!   [`PRE_ROLL_S`] first; the headphone amp, linear, from rest).
//! - **Anything that retunes a stage** (tube, bias, Gain, Level, high-pass,
//!   quality, polarity; the DI's ratio, pad, source, load, mains, ground
//!   lift) crossfades between the stage's old and new processing over
//!   20 ms ([`Morph`]). The chain holds two instances of the DI and of the
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

use super::delay::DelayLine;
use super::headphone::{
    design_loads, CustomFilter, HeadphoneAmp, HeadphoneLevels, HeadphoneSettings,
};
use super::loudness::{AutoGain, AutoGainSettings, LoudnessPair, LoudnessQuad};
use super::meters::{ChainMeters, Tap, TapSums};
use super::oversampling::{latency_for, Oversampler, Quality};
use super::smoothing::{GainSmoother, LinearSmoother, Ramp, SMOOTHING_TIME_S};
use super::transformer::{DiBox, DiSettings};
use super::tube::{Preamp, PreampPart, PreampSettings, StereoPreamp, GRID_CONDUCTION_VOLTS};
use super::{db_to_gain, full_scale_peak_volts, ProcessSpec, MAX_BLOCK};

/// Oversampling factor for the live (low-latency) quality.
pub const LIVE_FACTOR: usize = 4;
/// Oversampling factor for the high quality (and offline rendering). The
/// high quality uses linear-phase FIR half-bands at the same factor as live:
/// with the preamp's antiderivative anti-aliasing, 8× measured no better
/// (−111.2 dB against −111.6 dB at 4×, `tests/aliasing.rs`), at twice the CPU.
pub const HIGH_FACTOR: usize = 4;

/// How much recent input a section that comes in runs over first, in
/// seconds: seven time constants of the grid's coupling capacitor (47 nF
/// into about 1 MΩ, 48 ms). A stage driven hard into grid current blocks
/// for longer than that time constant suggests: 0.2 s left a +24 dB trim
/// step at Gain 50 2 dB louder than the settled stage 50 ms later; 0.35 s
/// settles it (`tests/motion.rs`). Costs about 1 ms of CPU per change.
pub const PRE_ROLL_S: f64 = 0.35;

/// Gain of the preamp's pad, −20 dB.
pub const PAD_DB: f64 = -20.0;

/// Nominal level of a pro line (+4 dBu): the reference the source levels are
/// measured from.
pub const PRO_LINE_DBU: f64 = 4.0;

/// What the track stands for electrically.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A microphone: nominal −50 dBu (an SM58 gives −52.4 dBu at 94 dB SPL).
    Mic,
    /// A passive instrument pickup: nominal −20 dBu (about 77 mV rms).
    Instrument,
    /// Consumer line, −10 dBV = −7.78 dBu.
    ConsumerLine,
    /// Professional line, +4 dBu.
    ProLine,
}

impl Source {
    /// Every variant, in display order.
    pub const ALL: [Source; 4] = [
        Source::Mic,
        Source::Instrument,
        Source::ConsumerLine,
        Source::ProLine,
    ];

    /// Nominal level of this source in dBu.
    pub fn nominal_dbu(self) -> f64 {
        match self {
            Source::Mic => -50.0,
            Source::Instrument => -20.0,
            // −10 dBV = 20·log10(0.316 23 / 0.774 60) dBu
            Source::ConsumerLine => -10.0 - 20.0 * super::DBU_REF_VOLTS.log10(),
            Source::ProLine => PRO_LINE_DBU,
        }
    }
}

/// Every setting of the chain, in physical units. `Copy`, so the plugin can
/// build one per block and hand it over without allocating.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChainSettings {
    /// Converter calibration: the dBu rms level of a full-scale sine.
    pub cal_dbu: f64,
    /// What the track stands for: with source S, the level a +4 dBu line
    /// would have on this track stands for S's nominal level.
    pub source: Source,
    /// Trim before the chain, in dB.
    pub in_trim_db: f64,
    /// The preamp's −20 dB pad.
    pub pad: bool,
    /// Polarity (phase) reverse at the preamp input.
    pub polarity: bool,
    /// Trim after the chain, in dB.
    pub out_trim_db: f64,
    /// Wet fraction, 0 (dry) … 1 (wet).
    pub mix: f64,
    /// Host bypass: the output crossfades to the time-aligned dry signal.
    pub bypass: bool,
    /// Level-matched compare: the output crossfades to the time-aligned dry
    /// signal played at the loudness of the processed output.
    pub compare: bool,
    /// Oversampling quality.
    pub quality: Quality,
    /// DI box switched in.
    pub di_on: bool,
    /// DI box settings.
    pub di: DiSettings,
    /// Tube preamp switched in.
    pub pre_on: bool,
    /// Tube preamp settings (`output_db` is applied by the chain, after the
    /// auto-gain).
    pub preamp: PreampSettings,
    /// Keep the preamp's output loudness matched to its input.
    pub auto_gain: bool,
    /// Headphone amp switched in.
    pub hp_on: bool,
    /// Headphone amp and load settings.
    pub headphone: HeadphoneSettings,
}

impl Default for ChainSettings {
    fn default() -> Self {
        Self {
            cal_dbu: 18.0,
            source: Source::ProLine,
            in_trim_db: 0.0,
            pad: false,
            polarity: false,
            out_trim_db: 0.0,
            mix: 1.0,
            bypass: false,
            compare: false,
            quality: Quality::Live,
            di_on: false,
            di: DiSettings::default(),
            pre_on: false,
            preamp: PreampSettings::default(),
            auto_gain: true,
            hp_on: false,
            headphone: HeadphoneSettings::default(),
        }
    }
}

impl ChainSettings {
    /// Linear gain from a host sample to volts at the chain input.
    pub fn input_gain(&self) -> f64 {
        full_scale_peak_volts(self.cal_dbu) * self.source_and_trim_gain()
    }

    /// Linear gain of the source level and the input trim: the input
    /// conversion without the calibration.
    pub fn source_and_trim_gain(&self) -> f64 {
        db_to_gain(self.source.nominal_dbu() - PRO_LINE_DBU) * db_to_gain(self.in_trim_db)
    }

    /// Linear gain of the preamp's pad (1 when off).
    pub fn pad_gain(&self) -> f64 {
        if self.pad {
            db_to_gain(PAD_DB)
        } else {
            1.0
        }
    }

    /// −1 with the polarity reversed, else 1.
    pub fn polarity_sign(&self) -> f64 {
        if self.polarity {
            -1.0
        } else {
            1.0
        }
    }

    /// Linear gain of pad and polarity.
    pub fn preamp_input_gain(&self) -> f64 {
        let pad = if self.pad { db_to_gain(PAD_DB) } else { 1.0 };
        if self.polarity {
            -pad
        } else {
            pad
        }
    }

    /// Linear gain from volts at the chain output to a host sample.
    pub fn output_gain(&self) -> f64 {
        db_to_gain(self.out_trim_db) / full_scale_peak_volts(self.cal_dbu)
    }

    /// True when a stage that must run oversampled (the tube preamp) is in.
    pub fn nonlinear_active(&self) -> bool {
        self.pre_on
    }

    /// Linear gain after the auto-gain: the preamp's output level.
    pub fn preamp_output_gain(&self) -> f64 {
        if self.pre_on {
            db_to_gain(self.preamp.output_db)
        } else {
            1.0
        }
    }

    /// The preamp settings handed to the stage: its output level is the
    /// chain's to apply.
    fn preamp_stage_settings(&self) -> PreampSettings {
        PreampSettings {
            output_db: 0.0,
            ..self.preamp
        }
    }

    /// What the auto-gain compensates at once (its slow loudness correction
    /// does the rest): the small-signal gain at 1 kHz from the track (in
    /// output volts) to the oversampled section's output — input
    /// conversion, the DI when in (`di_gain_1k`), pad, and the preamp when
    /// in (`preamp_gain`, its output level excluded: the chain applies that
    /// after the auto-gain).
    pub fn auto_gain_static_gain(&self, di_gain_1k: f64, preamp_gain: f64) -> f64 {
        let di = if self.di_on { di_gain_1k } else { 1.0 };
        let pre = if self.pre_on { preamp_gain } else { 1.0 };
        let source_and_trim = self.input_gain() / full_scale_peak_volts(self.cal_dbu);
        source_and_trim * di * self.preamp_input_gain().abs() * pre
    }

    /// Oversampling factor of the chosen quality.
    pub fn oversampling_factor(&self) -> usize {
        match self.quality {
            Quality::Live => LIVE_FACTOR,
            Quality::High => HIGH_FACTOR,
        }
    }
}

/// Per-channel state. Stages that crossfade between an old and a new
/// setting ([`Morph`]) have two instances: index 0 and 1, the morph says
/// which plays.
struct ChannelState {
    /// The wet signal of the current chunk, in volts.
    wet: [f64; MAX_BLOCK],
    /// The dry signal of the current chunk, in dBFS, delayed to match `wet`.
    dry: [f64; MAX_BLOCK],
    /// The track of the current chunk (sanitized, not delayed).
    dry_in: [f64; MAX_BLOCK],
    /// The oversampled section's input and then output, per instance.
    section: [[f64; MAX_BLOCK]; 2],
    /// Stands in for the oversampled section's latency while it is out, so
    /// the latency never depends on which stages are switched in.
    wet_delay: DelayLine,
    /// Aligns the dry signal with the wet path's latency.
    dry_delay: DelayLine,
    /// Scratch: the standby DI's output while a DI change fades; the mixed
    /// output at the end of the chunk.
    alt: [f64; MAX_BLOCK],
    /// The track in output volts: the auto-gain's loudness reference.
    reference: [f64; MAX_BLOCK],
    /// Delays the reference by the oversampled section's latency, so the
    /// auto-gain compares the track with what the section made of the same
    /// samples (a misaligned start would read the section as silent).
    reference_delay: DelayLine,
    /// The section's output statically compensated (the auto-gain's input
    /// and output).
    compensated: [f64; MAX_BLOCK],
    /// Matches the preamp's output loudness to its input (its slow
    /// correction; the static compensation is the chain's).
    auto_gain: AutoGain,
    /// The passive DI box (host rate), two instances.
    di: [DiBox; 2],
    /// Host-rate scratch for a stage being crossfaded.
    scratch: [f64; MAX_BLOCK],
    /// The headphone amp driving its load (host rate).
    headphone: HeadphoneAmp,
    /// Stands in for the headphone amp's latency while it is out.
    headphone_bypass: DelayLine,
    /// Loudness of the dry signal and of the output, for the compare.
    compare: CompareMatch,
    /// K-weighted energies of the track and of the new section's
    /// compensated output over its pre-roll (the auto-gain's hand-over),
    /// weighed like the auto-gain weighs loudness.
    handover: [f64; 2],
    /// The K-weighting of those two signals (only its filters are used).
    handover_meter: LoudnessPair,
    /// The section's input of the last [`PRE_ROLL_S`] at unit drive, a
    /// ring (`Chain::history_pos` is the next write).
    history: Vec<f64>,
    /// The track (the DI's input before the input gain) of the last
    /// [`PRE_ROLL_S`], a ring like `history`.
    di_history: Vec<f64>,
}

impl ChannelState {
    fn new() -> Self {
        Self {
            wet: [0.0; MAX_BLOCK],
            dry: [0.0; MAX_BLOCK],
            dry_in: [0.0; MAX_BLOCK],
            section: [[0.0; MAX_BLOCK]; 2],
            wet_delay: DelayLine::default(),
            dry_delay: DelayLine::default(),
            alt: [0.0; MAX_BLOCK],
            reference: [0.0; MAX_BLOCK],
            reference_delay: DelayLine::default(),
            compensated: [0.0; MAX_BLOCK],
            auto_gain: AutoGain::new(),
            di: [DiBox::new(), DiBox::new()],
            scratch: [0.0; MAX_BLOCK],
            headphone: HeadphoneAmp::new(),
            headphone_bypass: DelayLine::default(),
            compare: CompareMatch::new(),
            handover: [0.0; 2],
            handover_meter: LoudnessPair::new(),
            history: Vec::new(),
            di_history: Vec::new(),
        }
    }

    fn reset(&mut self, s: &ChainSettings) {
        self.wet.fill(0.0);
        self.dry.fill(0.0);
        self.alt.fill(0.0);
        self.auto_gain.reset();
        self.wet_delay.reset();
        self.dry_delay.reset();
        self.reference_delay.reset();
        for di in &mut self.di {
            di.set_settings(s.di);
            di.reset();
        }
        self.headphone.set_settings(s.headphone);
        self.headphone.reset();
        self.headphone_bypass.reset();
        self.compare.reset();
        self.handover = [0.0; 2];
        self.history.fill(0.0);
        self.di_history.fill(0.0);
    }
}

/// Write `values` into `ring` from position `pos` on, wrapping at its end
/// (two straight runs, no test per sample).
#[inline]
fn ring_write(ring: &mut [f64], pos: usize, mut values: impl Iterator<Item = f64>) {
    let (head, tail) = ring.split_at_mut(pos);
    for (r, v) in tail.iter_mut().chain(head.iter_mut()).zip(&mut values) {
        *r = v;
    }
}

/// A DI instance's input: the ramped chain input `wet`, or in a re-seat
/// the `track` at the instance's own input gain.
#[inline]
fn di_input(out: &mut [f64], wet: &[f64], track: Option<&[f64]>, gain: f64) {
    match track {
        Some(x) => out.iter_mut().zip(x).for_each(|(y, x)| *y = x * gain),
        None => out.copy_from_slice(wet),
    }
}

/// The chain's clock (samples since reset) and its rate.
type Mains = (u64, f64);

impl ChannelState {
    /// Bring DI instance `i` from rest to where its settings would have
    /// it after the last [`PRE_ROLL_S`] of input (`pos`: the rings' next
    /// write position, their oldest sample). Never allocates.
    /// With `rewrite`, the section-input ring `history` is rewritten from
    /// its output times `rewrite` (the new DI's output at unit drive).
    /// `gain`: the input gain (track → volts) the DI runs at; `mains`: the
    /// chain's clock, in samples, which the DI's hum follows.
    fn pre_roll_di(&mut self, i: usize, pos: usize, gain: f64, rewrite: Option<f64>, mains: Mains) {
        let di = &mut self.di[i];
        di.reset();
        let len = self.di_history.len();
        let (clock, fs) = mains;
        let start = clock.saturating_sub(len as u64) as f64;
        di.set_mains_phase(start * di.settings().mains_hz.hz() / fs);
        let mut done = 0;
        while done < len {
            let n = (len - done).min(MAX_BLOCK);
            let from = (pos + done) % len;
            let (tail, head) = self.di_history.split_at(from);
            for (y, v) in self.scratch[..n].iter_mut().zip(head.iter().chain(tail)) {
                *y = v * gain;
            }
            di.process(&mut self.scratch[..n]);
            if let Some(unit) = rewrite {
                for (k, y) in self.scratch[..n].iter().enumerate() {
                    self.history[(from + k) % len] = y * unit;
                }
            }
            done += n;
        }
    }
}

/// The auto-gain's hand-over to a new section: the factor on its
/// correction, `√(track / new)` from the K-weighted energies of the track
/// (in the present correction's units) and of the new section's output on
/// the same samples (1 while either is silent; within ±60 dB: a source
/// change moves the drive by up to 54 dB, and at the top of that range the
/// correction makes up for 40 dB of clipping).
fn handover_ratio([old, new]: [f64; 2]) -> f64 {
    if old > 1e-30 && new > 1e-30 {
        (old / new).sqrt().clamp(1e-3, 1e3)
    } else {
        1.0
    }
}

/// The gain in front of the section from its parts, in one order.
#[inline(always)]
fn front_gain(cal: f64, source_trim: f64, pad: f64, di: f64) -> f64 {
    cal * source_trim * pad * (1.0 + (di - 1.0))
}

/// The gain that plays the dry signal at the processed output's loudness:
/// `√(P_out/P_dry)` from a [`LoudnessPair`] (the auto-gain's K-weighted,
/// 3 s estimator) of the dry signal and the output before compare and
/// bypass, in host samples. It runs whether or not compare is on, so
/// switching is instant and already matched; the gain is recomputed every
/// hop (64 samples, 1.3 ms at 48 kHz) and ramped linearly between hops.
/// While compare is off only the estimate runs, not the gain ramp. Before
/// the first estimate, and in silence, it holds (1 at first). Both signals
/// are finite by construction (the chain's input is sanitized, and every
/// stage's output is finite), so they are weighed without a check.
struct CompareMatch {
    /// K-weighted powers of the dry signal (a) and the output (b).
    loudness: LoudnessPair,
    /// Gain at the start of the current hop.
    gain_from: f64,
    /// Gain at the end of the current hop.
    gain_to: f64,
}

impl CompareMatch {
    /// The gain's range, ±80 dB: past it one of the signals is silence.
    const LIMIT: f64 = 1e4;

    fn new() -> Self {
        Self {
            loudness: LoudnessPair::new(),
            gain_from: 1.0,
            gain_to: 1.0,
        }
    }

    fn set_sample_rate(&mut self, fs: f64) {
        self.loudness.set_sample_rate(fs);
    }

    fn reset(&mut self) {
        self.loudness.reset();
        self.gain_from = 1.0;
        self.gain_to = 1.0;
    }

    /// Measure `dry` and `out` (same length) and, when `GAIN` (compare is
    /// on or fading), write the dry signal's matching gain per sample into
    /// `gain`. The estimate moves the same either way.
    fn process<const GAIN: bool>(&mut self, dry: &[f64], out: &[f64], gain: &mut [f64]) {
        let mut start = 0;
        while start < dry.len() {
            let phase = self.loudness.hop_phase();
            let take = self.loudness.hop_left().min(dry.len() - start);
            let step = (self.gain_to - self.gain_from) / LoudnessPair::HOP as f64;
            let mut loud = self.loudness;
            for j in 0..take {
                let i = start + j;
                loud.weigh_finite(dry[i], out[i]);
                if GAIN {
                    gain[i] = self.gain_from + step * (phase + j + 1) as f64;
                }
            }
            self.loudness = loud;
            if self.loudness.advance(take) {
                self.end_hop();
            }
            start += take;
        }
    }

    /// [`Self::process`] with the gains written when `gain` (compare on or
    /// fading).
    #[inline(always)]
    fn process_as(&mut self, gain: bool, dry: &[f64], out: &[f64], gains: &mut [f64]) {
        if gain {
            self.process::<true>(dry, out, gains);
        } else {
            self.process::<false>(dry, out, gains);
        }
    }

    /// [`Self::process_pair`] with the gains written when `gain`.
    #[inline(always)]
    fn process_pair_as(
        gain: bool,
        a: &mut CompareMatch,
        b: &mut CompareMatch,
        side_a: (&[f64], &[f64], &mut [f64]),
        side_b: (&[f64], &[f64], &mut [f64]),
    ) {
        if gain {
            Self::process_pair::<true>(a, b, side_a, side_b);
        } else {
            Self::process_pair::<false>(a, b, side_a, side_b);
        }
    }

    /// End of a hop: fold the hop into the averages and aim the gain at the
    /// new estimate.
    fn end_hop(&mut self) {
        self.loudness.end_hop();
        self.gain_from = self.gain_to;
        let [p_dry, p_out] = self.loudness.powers();
        if p_dry > 1e-30 && p_out > 1e-30 {
            let g = (p_out / p_dry).sqrt();
            if g.is_finite() {
                self.gain_to = g.clamp(1.0 / Self::LIMIT, Self::LIMIT);
            }
        }
    }

    /// [`Self::process`] of a stereo pair's two channels at once, their
    /// K-weightings in the four lanes of a [`LoudnessQuad`]: each channel's
    /// gains are bit-identical to its own `process`. Each tuple is
    /// `(dry, out, gain)`, all six slices the same length (otherwise, and
    /// when the two cannot run together, each channel runs on its own).
    #[inline(always)]
    fn process_pair<const GAIN: bool>(
        a: &mut CompareMatch,
        b: &mut CompareMatch,
        (dry_a, out_a, gain_a): (&[f64], &[f64], &mut [f64]),
        (dry_b, out_b, gain_b): (&[f64], &[f64], &mut [f64]),
    ) {
        let n = dry_a.len();
        if [
            out_a.len(),
            gain_a.len(),
            dry_b.len(),
            out_b.len(),
            gain_b.len(),
        ] != [n; 5]
        {
            a.process::<GAIN>(dry_a, out_a, gain_a);
            b.process::<GAIN>(dry_b, out_b, gain_b);
            return;
        }
        let mut start = 0;
        while start < n {
            let Some(mut quad) = LoudnessQuad::load(&a.loudness, &b.loudness) else {
                a.process::<GAIN>(&dry_a[start..], &out_a[start..], &mut gain_a[start..]);
                b.process::<GAIN>(&dry_b[start..], &out_b[start..], &mut gain_b[start..]);
                return;
            };
            let phase = a.loudness.hop_phase();
            let take = a.loudness.hop_left().min(n - start);
            let end = start + take;
            let step_a = (a.gain_to - a.gain_from) / LoudnessPair::HOP as f64;
            let step_b = (b.gain_to - b.gain_from) / LoudnessPair::HOP as f64;
            let (from_a, from_b) = (a.gain_from, b.gain_from);
            let signals = dry_a[start..end]
                .iter()
                .zip(&out_a[start..end])
                .zip(dry_b[start..end].iter().zip(&out_b[start..end]));
            let gains = gain_a[start..end]
                .iter_mut()
                .zip(gain_b[start..end].iter_mut());
            for (j, (((da, oa), (db, ob)), (ga, gb))) in signals.zip(gains).enumerate() {
                quad.weigh_finite([*da, *oa, *db, *ob]);
                if GAIN {
                    let t = (phase + j + 1) as f64;
                    *ga = from_a + step_a * t;
                    *gb = from_b + step_b * t;
                }
            }
            quad.store(&mut a.loudness, &mut b.loudness);
            if a.loudness.advance(take) {
                a.end_hop();
            }
            if b.loudness.advance(take) {
                b.end_hop();
            }
            start = end;
        }
    }
}

/// An in/out switch with a crossfade: a 0 … 1 amount ramped per sample,
/// and the knowledge of whether what it switches was fully out (and so must
/// be reset before it runs again, to start from its settled state).
struct Switch {
    /// 0 = out, 1 = in, ramping between.
    amount: LinearSmoother,
    /// What it switches was fully out.
    stale: bool,
}

/// What a switch asks of one chunk.
#[derive(Clone, Copy)]
struct SwitchPlan {
    /// The switched thing must run (it is in, or fading).
    run: bool,
    /// …after a reset, because it was fully out.
    reset: bool,
    /// The amount is constant over the chunk (so fully in when `run`).
    settled: bool,
}

impl Switch {
    fn new(on: bool) -> Self {
        Self {
            amount: LinearSmoother::new(f64::from(u8::from(on))),
            stale: !on,
        }
    }

    fn set(&mut self, on: bool) {
        self.amount.set_target(f64::from(u8::from(on)));
    }

    fn jump(&mut self, on: bool) {
        self.amount.reset(f64::from(u8::from(on)));
        self.stale = !on;
    }

    /// Fill a chunk's [`Curve`] of `n` samples with the amounts and say
    /// what must happen.
    fn plan_curve(&mut self, curve: &mut Curve, n: usize) -> SwitchPlan {
        let settled = self.amount.is_settled();
        fill_fade(curve, &mut self.amount, n);
        self.plan_settled(settled)
    }

    /// What must happen, the amounts having been produced.
    fn plan_settled(&mut self, settled: bool) -> SwitchPlan {
        let on = self.amount.target() == 1.0;
        let run = !settled || on;
        let reset = run && self.stale;
        self.stale = !run;
        SwitchPlan {
            run,
            reset,
            settled,
        }
    }
}

/// Fill `curve` with the amounts of a 20 ms crossfade, shaped as a
/// smoothstep `3t² − 2t³` of the linear ramp `t`: the two weights still
/// add up to 1, and the fade starts and ends with zero slope, so its
/// corners put no splatter above a few hundred hertz (a linear fade's
/// corners are kinks; fading a loud signal out under a quiet one, they
/// stood 33 dB below the quiet one above 4 kHz).
fn fill_fade(curve: &mut Curve, ramp: &mut LinearSmoother, n: usize) {
    let settled = ramp.is_settled();
    curve.fill(ramp, n);
    if !settled {
        for v in &mut curve.values[..n] {
            *v = *v * *v * (3.0 - 2.0 * *v);
        }
    }
}

/// What the chain needs of the preamp of its oversampled section:
/// [`Preamp`] (one channel) and [`StereoPreamp`] (a pair in SIMD lanes).
trait SectionPreamp {
    /// Channels carried.
    const LANES: usize;
    fn operating_points(&self) -> [(f64, f64, f64); 2];
    /// Grid bias shift `[stage]` of lane `lane`.
    fn grid_shift(&self, lane: usize) -> [f64; 2];
    /// Peak Vgk `[stage]` of lane `lane` since the last take, restarted
    /// for every lane when `lane` is the last one.
    fn take_grid_peak(&mut self, lane: usize) -> [f64; 2];
}

macro_rules! section_preamp {
    ($ty:ident, $shift:expr) => {
        impl SectionPreamp for $ty {
            const LANES: usize = $ty::CHANNELS;
            fn operating_points(&self) -> [(f64, f64, f64); 2] {
                $ty::operating_points(self)
            }
            fn grid_shift(&self, lane: usize) -> [f64; 2] {
                let shift: fn(&$ty, usize) -> [f64; 2] = $shift;
                shift(self, lane)
            }
            fn take_grid_peak(&mut self, lane: usize) -> [f64; 2] {
                let lane = lane.min(Self::LANES - 1);
                let peak = self.grid_peak_volts()[lane];
                if lane + 1 == Self::LANES {
                    self.restart_grid_peaks();
                }
                peak
            }
        }
    };
}

section_preamp!(Preamp, |p, _| p.grid_bias_volts());
section_preamp!(StereoPreamp, |p, lane| p.grid_bias_volts()[lane.min(1)]);

/// Run `$e` with `$p` bound to every preamp of `$s`.
macro_rules! each_preamp {
    ($s:expr, $p:ident => $e:expr) => {
        match $s {
            Preamps::PerChannel(v) => v.iter_mut().for_each(|$p| $e),
            Preamps::Pair($p) => $e,
        }
    };
}

/// The preamps of an oversampled section: one per channel (mono, or more
/// than two channels), or a stereo pair in the SIMD lanes of one
/// [`StereoPreamp`] (bit-identical to two mono ones, at about the cost of
/// one). Their triode stages run at the oversampled rate; their linear ends
/// ([`PreampPart`]) at the host rate, before the upsampler and after the
/// downsampler. The preamp has no switch of its own: the chain's crossfade
/// between the section and the pure delay is the preamp's in/out switch.
enum Preamps {
    /// One mono preamp per channel.
    PerChannel(Vec<Preamp>),
    /// A stereo pair.
    Pair(Box<StereoPreamp>),
}

impl Preamps {
    /// Preamps for `num_channels` channels (allocates; unprepared).
    fn for_channels(num_channels: usize) -> Self {
        if num_channels == 2 {
            Preamps::Pair(Box::default())
        } else {
            Preamps::PerChannel((0..num_channels).map(|_| Preamp::new()).collect())
        }
    }

    /// Build tables for the oversampled rate `os_spec` (allocates).
    fn prepare(&mut self, os_spec: &ProcessSpec) {
        each_preamp!(self, p => p.prepare(os_spec));
    }

    /// Stages at `os_rate`, ends at `host_rate`.
    fn set_rates(&mut self, os_rate: f64, host_rate: f64) {
        each_preamp!(self, p => p.set_rates(os_rate, host_rate));
    }

    /// New settings, without the preamps' own gain smoothing.
    fn set_settings_at_once(&mut self, s: PreampSettings) {
        each_preamp!(self, p => p.set_settings_at_once(s));
    }

    fn reset(&mut self) {
        each_preamp!(self, p => p.reset());
    }

    /// The preamp's small-signal gain (the same for every channel), or
    /// `None` with no channels.
    fn small_signal_gain(&self) -> Option<f64> {
        match self {
            Preamps::PerChannel(v) => v.first().map(|p| p.small_signal_gain()),
            Preamps::Pair(p) => Some(p.small_signal_gain()),
        }
    }

    /// Grid readings of channel `ch`: (bias Vgk at rest with the current
    /// charge, peak Vgk since the last call) per stage. Call for every
    /// channel in order (the pair restarts its peaks after the last).
    fn grid(&mut self, ch: usize) -> Option<([f64; 2], [f64; 2])> {
        fn read<P: SectionPreamp>(p: &mut P, lane: usize) -> ([f64; 2], [f64; 2]) {
            let ops = p.operating_points();
            let shift = p.grid_shift(lane);
            let bias = [-ops[0].0 + shift[0], -ops[1].0 + shift[1]];
            (bias, p.take_grid_peak(lane))
        }
        match self {
            Preamps::PerChannel(v) => v.get_mut(ch).map(|p| read(p, 0)),
            Preamps::Pair(p) => (ch < 2).then(|| read(p.as_mut(), ch)),
        }
    }
}

/// What the oversampled section is set to: the preamp (its output level
/// excluded: the chain applies it), the oversampling quality and the drive.
#[derive(Clone, Copy, Debug, PartialEq)]
struct SectionSettings {
    preamp: PreampSettings,
    quality: Quality,
    /// Volts at the section's input per unit of track at 1 kHz: the
    /// calibration, source and trim, the DI, the pad. The section runs at
    /// this drive whatever ramps in front of it (its input is scaled by
    /// drive / ramped front gain), so a change of drive is a crossfade
    /// between two sections, each at its own drive and exactly compensated.
    drive: f64,
    /// ±1: the polarity switch in front of the tubes.
    polarity: f64,
}

impl SectionSettings {
    fn of(s: &ChainSettings, drive: f64) -> Self {
        Self {
            preamp: s.preamp_stage_settings(),
            quality: s.quality,
            drive,
            polarity: s.polarity_sign(),
        }
    }
}

/// The oversampled section: per channel an oversampler around the
/// preamp's triode stages, the preamp's linear ends at the host rate
/// around it ([`PreampPart`]). The chain keeps two and crossfades between
/// them when a setting changes ([`Morph`]).
struct Section {
    /// One oversampler per channel.
    oversamplers: Vec<Oversampler>,
    /// The preamps (a stereo pair in the lanes of one).
    preamps: Preamps,
    /// The settings in force.
    settings: SectionSettings,
    /// Small-signal gain at 1 kHz of the preamp with these settings: what
    /// the auto-gain's static compensation divides by.
    gain: f64,
}

impl Section {
    /// A section for `num_channels` channels (allocates; unprepared).
    fn for_channels(num_channels: usize, s: SectionSettings) -> Self {
        Self {
            oversamplers: (0..num_channels).map(|_| Oversampler::new()).collect(),
            preamps: Preamps::for_channels(num_channels),
            settings: s,
            gain: 1.0,
        }
    }

    /// Design and build everything for the host stream `spec` (allocates),
    /// then take the settings in force.
    fn prepare(&mut self, spec: &ProcessSpec) {
        for os in &mut self.oversamplers {
            os.prepare(spec);
        }
        let factor = quality_factor(self.settings.quality);
        self.preamps.prepare(&ProcessSpec {
            sample_rate: spec.sample_rate * factor as f64,
            max_block: spec.max_block * factor,
        });
        let s = self.settings;
        // Force the rates and the configuration.
        self.settings.quality = match s.quality {
            Quality::Live => Quality::High,
            Quality::High => Quality::Live,
        };
        self.apply(s, spec.sample_rate);
    }

    /// Take new settings at once (the crossfade is the caller's). A quality
    /// change reconfigures the oversamplers (designed in `prepare`: no
    /// design work here) and clears their state. Never allocates.
    fn apply(&mut self, s: SectionSettings, host_rate: f64) {
        if s.quality != self.settings.quality {
            let factor = quality_factor(s.quality);
            for os in &mut self.oversamplers {
                os.configure(s.quality, factor);
            }
            self.preamps.set_rates(host_rate * factor as f64, host_rate);
        }
        self.preamps.set_settings_at_once(s.preamp);
        self.gain = self.preamps.small_signal_gain().unwrap_or(1.0);
        self.settings = s;
    }

    /// Back to the settled state.
    fn reset(&mut self) {
        for os in &mut self.oversamplers {
            os.reset();
        }
        self.preamps.reset();
    }

    /// Latency in host samples.
    fn latency(&self) -> usize {
        self.oversamplers
            .first()
            .map_or(0, |os| os.latency_samples())
    }

    /// Run channel `k` in place (host-rate volts in and out).
    fn process_mono(&mut self, k: usize, x: &mut [f64]) {
        if let (Preamps::PerChannel(v), Some(os)) =
            (&mut self.preamps, self.oversamplers.get_mut(k))
        {
            if let Some(p) = v.get_mut(k) {
                p.process_part(PreampPart::Front, x);
                os.upsample(x);
                p.process_part(PreampPart::Stages, os.oversampled());
                os.downsample(x);
                p.process_part(PreampPart::Back, x);
            }
        }
    }

    /// Run a stereo pair in place, both channels in the lanes of one
    /// preamp and their oversamplers in one loop.
    fn process_pair(&mut self, left: &mut [f64], right: &mut [f64]) {
        if let (Preamps::Pair(p), [a, b]) = (&mut self.preamps, &mut self.oversamplers[..]) {
            p.process_stereo_part(PreampPart::Front, left, right);
            Oversampler::upsample_pair(a, b, left, right);
            p.process_stereo_part(PreampPart::Stages, a.oversampled(), b.oversampled());
            Oversampler::downsample_pair(a, b, left, right);
            p.process_stereo_part(PreampPart::Back, left, right);
        }
    }
}

/// Oversampling factor of a quality.
fn quality_factor(q: Quality) -> usize {
    match q {
        Quality::Live => LIVE_FACTOR,
        Quality::High => HIGH_FACTOR,
    }
}

/// The 20 ms crossfade between two instances of a stage that a change of
/// its settings asks for. The change goes to the standby instance, which
/// the chain brings up to date on the recent input (its pre-roll), and the
/// output fades from the old processing to the new. A change that arrives
/// during a fade waits for its end (at most 20 ms), so every change gets a
/// whole fade and no fade is cut short. A stage that is not running
/// (switched out) takes changes at once: it is brought up to date when it
/// comes back in anyway.
struct Morph<T> {
    /// 0 → 1 from the playing instance to the standby while a change fades.
    amount: LinearSmoother,
    /// The playing instance (0 or 1).
    active: usize,
    /// A change is fading in on the standby instance.
    fading: bool,
    /// Settings of the instance that plays once the running fade (if any)
    /// ends.
    current: T,
    /// The settings asked for last.
    wanted: T,
}

/// What a [`Morph`] asks of the chain at the start of a chunk.
enum MorphStep<T> {
    /// Nothing.
    Keep,
    /// Give instance `.0` the settings at once (the stage is not running).
    Apply(usize, T),
    /// Give instance `.to` the settings, bring it up to date, and fade to
    /// it.
    Fade { to: usize, settings: T },
}

impl<T: Copy + PartialEq> Morph<T> {
    fn new(s: T) -> Self {
        Self {
            amount: LinearSmoother::new(0.0),
            active: 0,
            fading: false,
            current: s,
            wanted: s,
        }
    }

    /// The standby instance.
    fn standby(&self) -> usize {
        1 - self.active
    }

    /// The instance that plays once the running fade (if any) ends.
    fn wanted_instance(&self) -> usize {
        if self.fading {
            self.standby()
        } else {
            self.active
        }
    }

    /// Host samples until the running fade ends (a chunk must end there,
    /// so the next change starts at the same sample whatever the blocks).
    fn remaining(&self) -> usize {
        if self.fading {
            self.amount.remaining().max(1)
        } else {
            usize::MAX
        }
    }

    /// At the start of a chunk: end a finished fade, then start the next
    /// change, if any. `running`: the stage runs in this chunk.
    /// `hold`: a change must wait. `force`: fade even without a change
    /// (to re-seat the stage on a new input).
    fn step(&mut self, running: bool, hold: bool, force: bool) -> MorphStep<T> {
        self.finish();
        let change = self.wanted != self.current;
        if self.fading || (hold && change) || !(change || (force && running)) {
            return MorphStep::Keep;
        }
        self.current = self.wanted;
        if !running {
            return MorphStep::Apply(self.active, self.wanted);
        }
        self.fading = true;
        self.amount.set_target(1.0);
        MorphStep::Fade {
            to: self.standby(),
            settings: self.wanted,
        }
    }

    /// End a fade that is complete.
    fn finish(&mut self) {
        if self.fading && self.amount.is_settled() {
            self.active = self.standby();
            self.fading = false;
            self.amount.reset(0.0);
        }
    }

    /// Forget any fade: both instances take the wanted settings (the
    /// caller's part).
    fn settle(&mut self) {
        self.fading = false;
        self.amount.reset(0.0);
        self.current = self.wanted;
    }
}

/// Crossfade `out` (a stage's input) towards `processed` (its output) by
/// `amount` per sample; when the switch has settled (fully in), take the
/// output exactly.
#[inline]
fn blend(out: &mut [f64], processed: &[f64], amount: &[f64], settled: bool) {
    if settled {
        out.copy_from_slice(processed);
    } else {
        for ((w, y), k) in out.iter_mut().zip(processed).zip(amount) {
            *w += k * (y - *w);
        }
    }
}

/// One chunk's per-sample values of a smoothed quantity. A settled value
/// fills the whole curve once and is then reused while it stays settled
/// (most chunks write nothing).
struct Curve {
    /// The values; the first `n` of a chunk of `n` samples are valid.
    values: [f64; MAX_BLOCK],
    /// Bits of the value the whole curve holds, if it is constant.
    constant: Option<u64>,
}

impl Curve {
    fn new() -> Self {
        Self {
            values: [0.0; MAX_BLOCK],
            constant: None,
        }
    }

    /// Hold `v` over the whole curve.
    #[inline]
    fn hold(&mut self, v: f64) {
        if self.constant != Some(v.to_bits()) {
            self.values.fill(v);
            self.constant = Some(v.to_bits());
        }
    }

    /// Fill the first `n` values from `ramp` (at most `MAX_BLOCK`).
    #[inline]
    fn fill(&mut self, ramp: &mut impl Ramp, n: usize) {
        if ramp.is_settled() {
            self.hold(ramp.value());
        } else {
            ramp.fill(&mut self.values[..n]);
            self.constant = None;
        }
    }

    /// The first `n` values of `a` times those of `b`.
    #[inline]
    fn product(&mut self, a: &Curve, b: &Curve, n: usize) {
        if a.constant.is_some() && b.constant.is_some() {
            self.hold(a.values[0] * b.values[0]);
        } else {
            for ((v, x), y) in self.values[..n].iter_mut().zip(&a.values).zip(&b.values) {
                *v = x * y;
            }
            self.constant = None;
        }
    }
}

impl std::ops::Deref for Curve {
    type Target = [f64];
    fn deref(&self) -> &[f64] {
        &self.values
    }
}

/// Per-sample gain curves of one chunk, shared by all channels.
struct GainCurves {
    /// The calibration's dBFS → volts.
    cal: Curve,
    /// Source level and input trim.
    source_trim: Curve,
    /// `cal × source_trim`: the input conversion.
    input: Curve,
    /// The calibration's volts → dBFS.
    uncal: Curve,
    /// Output trim.
    out_trim: Curve,
    /// `uncal × out_trim`: the output conversion.
    output: Curve,
    /// The preamp's pad (−20 dB or 1).
    pad: Curve,
    /// Polarity (±1, through zero on a flip).
    polarity: Curve,
    mix: Curve,
    bypass: Curve,
    compare: Curve,
    /// The DI switch.
    di: Curve,
    /// The crossfade between the DI's two instances.
    di_morph: Curve,
    /// The preamp switch (section against its stand-in delay).
    oversampled: Curve,
    /// The crossfade between the two sections.
    section_morph: Curve,
    /// The auto-gain switch.
    auto_gain: Curve,
    /// The preamp's output level.
    preamp_output: Curve,
    /// The headphone amp switch.
    headphone: Curve,
    /// The reciprocal of the gain from the track to the section's input at
    /// 1 kHz (calibration, source and trim, the DI, the pad), per sample.
    front_gain: [f64; MAX_BLOCK],
    /// What each section instance scales its input by: its drive over
    /// `front_gain`.
    drive_scale: [[f64; MAX_BLOCK]; 2],
    /// The auto-gain's static compensation of each section instance.
    compensation: [[f64; MAX_BLOCK]; 2],
}

impl GainCurves {
    fn new() -> Self {
        Self {
            cal: Curve::new(),
            source_trim: Curve::new(),
            input: Curve::new(),
            uncal: Curve::new(),
            out_trim: Curve::new(),
            output: Curve::new(),
            pad: Curve::new(),
            polarity: Curve::new(),
            mix: Curve::new(),
            bypass: Curve::new(),
            compare: Curve::new(),
            di: Curve::new(),
            di_morph: Curve::new(),
            oversampled: Curve::new(),
            section_morph: Curve::new(),
            auto_gain: Curve::new(),
            preamp_output: Curve::new(),
            headphone: Curve::new(),
            front_gain: [0.0; MAX_BLOCK],
            drive_scale: [[0.0; MAX_BLOCK]; 2],
            compensation: [[0.0; MAX_BLOCK]; 2],
        }
    }
}

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
    /// Polarity (ramps through zero on a flip: no click).
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
    /// Next write position in the channels' section-input rings.
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
    /// The CPU has AVX2: the host-rate loops run as an AVX2 build (no FMA,
    /// so the arithmetic and its rounding are the same).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    has_avx2: bool,
}

impl Default for Chain {
    fn default() -> Self {
        Self::new()
    }
}

/// Index of a quality in per-quality tables.
fn quality_index(q: Quality) -> usize {
    match q {
        Quality::Live => 0,
        Quality::High => 1,
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
            has_avx2: false,
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

    /// Allocate everything for `num_channels` channels at `sample_rate`.
    /// The only method that allocates. Ends in a settled, reset state.
    pub fn prepare(&mut self, sample_rate: f64, num_channels: usize) {
        self.spec = ProcessSpec {
            sample_rate,
            max_block: MAX_BLOCK,
        };
        self.channels = (0..num_channels).map(|_| ChannelState::new()).collect();
        #[cfg(target_arch = "x86_64")]
        {
            self.has_avx2 = std::arch::is_x86_feature_detected!("avx2");
        }
        // The half-band designs behind the latencies are worked out here,
        // never on the audio thread.
        for q in [Quality::Live, Quality::High] {
            self.os_latency[quality_index(q)] = latency_for(q, quality_factor(q), sample_rate);
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
    /// at once). Never allocates.
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
        // (The drive is worked out when the section's changes start.)
        self.section_morph.wanted = SectionSettings::of(&s, self.section_morph.wanted.drive);
        let hp_latency = self
            .channels
            .first()
            .map_or(0, |ch| ch.headphone.latency_samples());
        self.latency = self.os_latency[quality_index(s.quality)] + hp_latency;
    }

    /// Start the changes that wait (see [`Morph`]) at the start of a chunk.
    fn step_morphs(&mut self) {
        let rate = self.spec.sample_rate;
        let di_running = !(self.di.amount.is_settled() && self.di.amount.target() == 0.0);
        let os_running =
            !(self.oversampled.amount.is_settled() && self.oversampled.amount.target() == 0.0);
        if self.section_morph.fading && self.section_morph.amount.is_settled() {
            // The fade is over: the auto-gain's correction moves to the new
            // section by the loudness ratio the two had on the same samples.
            for ch in &mut self.channels {
                ch.auto_gain.hand_over(handover_ratio(ch.handover));
                ch.handover = [0.0; 2];
            }
        }
        self.section_morph.finish();
        self.di_morph.finish();
        self.joint = self.joint && self.section_morph.fading;
        // With the preamp running, a DI change crossfades together with a
        // re-seat of the section on the new DI's output (so the auto-gain
        // hands over what the DI change does to the loudness: a pad, the
        // hum of a lifted ground), and so waits while the section fades.
        // So does a change of the input gain while the DI is fully in: the
        // new DI runs at the new gain.
        let input_gain = self.cal.target() * self.source_trim.target();
        let mains = (self.clock, self.spec.sample_rate);
        let di_in = self.di.amount.is_settled() && self.di.amount.target() == 1.0;
        let active_di = self.di_morph.active;
        if !(os_running && di_in) {
            self.di_in_gain[active_di] = input_gain;
        }
        let input_moved = self.di_in_gain[active_di] != input_gain;
        let mut reseat = false;
        match self.di_morph.step(
            di_running,
            os_running && self.section_morph.fading,
            os_running && di_in && input_moved,
        ) {
            MorphStep::Keep => {}
            MorphStep::Apply(i, s) => {
                for ch in &mut self.channels {
                    ch.di[i].set_settings(s);
                }
                self.di_gain[i] = self.di_gain_of(i);
                self.di_in_gain[i] = input_gain;
            }
            MorphStep::Fade { to, settings } => {
                // From rest over the recent input: the old instance's state
                // means something else under other settings (a pad or a
                // load changes the network the states belong to).
                for ch in &mut self.channels {
                    ch.di[to].set_settings(settings);
                }
                self.di_gain[to] = self.di_gain_of(to);
                self.di_in_gain[to] = input_gain;
                reseat = os_running;
                // The section's recent input as the new DI makes it, at unit
                // drive, for the re-seated section's pre-roll.
                let unit = 1.0 / (input_gain * self.di_gain[to]);
                let rewrite = reseat.then_some(unit);
                for ch in &mut self.channels {
                    ch.pre_roll_di(to, self.history_pos, input_gain, rewrite, mains);
                }
            }
        }
        // The DI switched in or out under a running section: re-seat it on
        // the recent input as the new DI state makes it (the DI colours the
        // spectrum the auto-gain weighs, which no gain can stand for).
        if !os_running || reseat {
            self.di_seated = self.settings.di_on;
        } else if self.settings.di_on != self.di_seated && !self.section_morph.fading {
            self.di_seated = self.settings.di_on;
            reseat = true;
            let a = self.di_morph.active;
            let pos = self.history_pos;
            if self.settings.di_on {
                let unit = 1.0 / (input_gain * self.di_gain[a]);
                for ch in &mut self.channels {
                    ch.pre_roll_di(a, pos, input_gain, Some(unit), mains);
                }
            } else {
                for ch in &mut self.channels {
                    let (history, track) = (&mut ch.history, &ch.di_history);
                    history.copy_from_slice(track);
                }
            }
        }
        self.section_morph.wanted.drive = self.drive_target();
        let (target, s) = match self.section_morph.step(os_running, false, reseat) {
            MorphStep::Keep => return,
            MorphStep::Apply(i, s) => (i, s),
            MorphStep::Fade { to, settings } => (to, settings),
        };
        self.joint = reseat && self.di_morph.fading;
        for ch in &mut self.channels {
            ch.handover = [0.0; 2];
            ch.handover_meter.reset();
        }
        let old_latency = self.sections[self.section_morph.active].latency();
        self.sections[target].apply(s, rate);
        if self.section_morph.fading {
            self.pre_roll(target, false, true);
        }
        let latency = self.sections[target].latency();
        if latency != old_latency {
            self.set_delays(latency, true);
        }
    }

    /// Bring section `i` from rest to where it would be had its settings
    /// been in force for the last [`PRE_ROLL_S`]: run it over the recent
    /// input at its own drive (the output is not used). So a section that
    /// comes in carries no state from other settings (the blocking bias of
    /// a clipped stage at another gain, a half-band of another quality) and
    /// no start-up transient; the two sections of a crossfade are each in
    /// their steady state. About 0.2 s of the section's work, once per
    /// change. Never allocates.
    ///
    /// With `warm`, the auto-gain (just reset) measures the section's
    /// compensated output against the track over the same samples.
    ///
    /// With `measure`, the auto-gain's hand-over is measured: the
    /// K-weighted energies of the track and of this section's compensated
    /// output at the present correction, over the same samples (the last
    /// three quarters of them, the K-weighting having settled), so the new
    /// section comes in with the correction that matches it to the track,
    /// as the auto-gain's own estimate would in its steady state. Measured
    /// against the track, not against the old section, errors cannot add
    /// up over many changes.
    fn pre_roll(&mut self, i: usize, warm: bool, measure: bool) {
        self.sections[i].reset();
        let drive = self.sections[i].settings.drive;
        let signed = drive * self.sections[i].settings.polarity;
        let cal = self.cal.target();
        let comp = cal / (drive * self.sections[i].gain).max(1e-300);
        let len = self.channels.first().map_or(0, |ch| ch.history.len());
        let pair = matches!(self.sections[i].preamps, Preamps::Pair(_));
        let mut done = 0;
        while done < len {
            let n = (len - done).min(MAX_BLOCK);
            // Oldest first: the ring's next write position is its oldest.
            let from = (self.history_pos + done) % len;
            for ch in &mut self.channels {
                let (tail, head) = ch.history.split_at(from);
                let ring = head.iter().chain(tail.iter());
                for (y, v) in ch.section[i][..n].iter_mut().zip(ring) {
                    *y = v * signed;
                }
            }
            let section = &mut self.sections[i];
            if pair {
                if let [a, b] = &mut self.channels[..] {
                    section.process_pair(&mut a.section[i][..n], &mut b.section[i][..n]);
                }
            } else {
                for (k, ch) in self.channels.iter_mut().enumerate() {
                    section.process_mono(k, &mut ch.section[i][..n]);
                }
            }
            if measure {
                for ch in &mut self.channels {
                    // The track against this section's output at the
                    // present correction, which the hand-over scales.
                    let unit = cal / ch.auto_gain.gain().max(1e-300);
                    let (tail, head) = ch.di_history.split_at(from);
                    let track = head.iter().chain(tail.iter());
                    let [mut sa, mut sb] = ch.handover;
                    for (k, (x, y)) in track.zip(&ch.section[i][..n]).enumerate() {
                        let (ka, kb) = ch.handover_meter.weigh_finite(x * unit, y * comp);
                        if 4 * (done + k) >= len {
                            sa += ka * ka;
                            sb += kb * kb;
                        }
                    }
                    ch.handover = [sa, sb];
                }
            }
            if warm {
                for ch in &mut self.channels {
                    let (tail, head) = ch.di_history.split_at(from);
                    let track = head.iter().chain(tail.iter());
                    for (r, x) in ch.reference[..n].iter_mut().zip(track) {
                        *r = x * cal;
                    }
                    for (p, y) in ch.compensated[..n].iter_mut().zip(&ch.section[i][..n]) {
                        *p = y * comp;
                    }
                    ch.auto_gain
                        .process(&ch.reference[..n], &mut ch.compensated[..n]);
                }
            }
            done += n;
        }
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
            self.step_morphs();
            let n = (len - start)
                .min(MAX_BLOCK)
                .min(self.di_morph.remaining())
                .min(self.section_morph.remaining());
            self.process_chunk(channels, start, n);
            start += n;
        }
    }

    fn process_chunk(&mut self, io: &mut [&mut [f32]], start: usize, n: usize) {
        #[cfg(target_arch = "x86_64")]
        if self.has_avx2 {
            // SAFETY: `has_avx2` is set only when the CPU reports AVX2.
            unsafe { self.process_chunk_avx2(io, start, n) };
            return;
        }
        self.process_chunk_any(io, start, n);
    }

    /// `process_chunk_any` compiled with AVX2 (the stages it calls choose
    /// their own builds).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn process_chunk_avx2(&mut self, io: &mut [&mut [f32]], start: usize, n: usize) {
        self.process_chunk_any(io, start, n);
    }

    /// Fill the chunk's gain curves and the static compensation of each
    /// running section.
    #[inline(always)]
    fn plan_chunk(&mut self, n: usize) -> ChunkPlan {
        let c = &mut *self.curves;
        c.cal.fill(&mut self.cal, n);
        c.source_trim.fill(&mut self.source_trim, n);
        c.input.product(&c.cal, &c.source_trim, n);
        c.uncal.fill(&mut self.uncal, n);
        c.out_trim.fill(&mut self.out_trim, n);
        c.output.product(&c.uncal, &c.out_trim, n);
        c.pad.fill(&mut self.pad, n);
        c.polarity.fill(&mut self.polarity, n);
        c.mix.fill(&mut self.mix, n);
        c.bypass.fill(&mut self.bypass, n);
        let compare_off = self.compare.is_settled() && self.compare.target() == 0.0;
        c.compare.fill(&mut self.compare, n);
        let di = self.di.plan_curve(&mut c.di, n);
        let di_fading = self.di_morph.fading;
        if di_fading {
            fill_fade(&mut c.di_morph, &mut self.di_morph.amount, n);
        }
        let os = self.oversampled.plan_curve(&mut c.oversampled, n);
        let section_fading = self.section_morph.fading;
        if section_fading {
            fill_fade(&mut c.section_morph, &mut self.section_morph.amount, n);
        }
        let ag = self.auto_gain.plan_curve(&mut c.auto_gain, n);
        let ag_run = os.run && ag.run;
        let ag_reset = ag_run && self.auto_gain_idle;
        self.auto_gain_idle = !ag_run;
        c.preamp_output.fill(&mut self.preamp_output_gain, n);
        let hp = self.headphone.plan_curve(&mut c.headphone, n);

        // The gain from the track to the section's input at 1 kHz, from the
        // very curves that apply it: the calibration, source and trim, the
        // DI (in, out or fading; one instance or the crossfade of two), the
        // pad. Each running section scales its input by its own drive over
        // this, so it runs at its drive whatever ramps in front of it, and
        // its static compensation is exact: the calibration (which the
        // output conversion takes back) over its drive and its preamp's
        // small-signal gain.
        // Settled (the common case): the same numbers, worked out once and
        // reused while nothing moves (bit for bit what the per-sample loops
        // give, so the output does not depend on which chunks are settled).
        let steady = c.cal.constant.is_some()
            && c.source_trim.constant.is_some()
            && c.pad.constant.is_some()
            && (!di.run || (di.settled && !di_fading))
            && !section_fading;
        if steady {
            let mut f = c.cal[0] * c.source_trim[0] * c.pad[0];
            if di.run {
                f *= 1.0 + c.di[0] * (self.di_gain[self.di_morph.active] - 1.0);
            }
            let f = 1.0 / f.max(1e-300);
            let i = self.section_morph.active;
            let section = &self.sections[i];
            let signed = section.settings.drive * section.settings.polarity;
            let k = 1.0 / (section.settings.drive * section.gain).max(1e-300);
            let key = [f, signed * f, c.cal[0] * k, i as f64].map(f64::to_bits);
            if self.steady_key != Some(key) {
                c.front_gain.fill(f);
                c.drive_scale[i].fill(signed * f);
                c.compensation[i].fill(c.cal[0] * k);
                self.steady_key = Some(key);
            }
        } else {
            self.steady_key = None;
            self.plan_moving(n, di, di_fading, section_fading, ag_run);
        }
        // A re-seat on a new DI (fully in): each section takes its own DI
        // instance's output, so its front gain has that DI's gain alone.
        let joint = self.joint && os.run && section_fading && di_fading && di.run && di.settled;
        ChunkPlan {
            compare_off,
            di,
            di_fading,
            joint,
            os,
            section_fading,
            ag,
            ag_run,
            ag_reset,
            hp,
        }
    }

    /// The per-sample front gains, drive scales and compensations of a
    /// chunk in which something moves (see `plan_chunk`).
    fn plan_moving(
        &mut self,
        n: usize,
        di: SwitchPlan,
        di_fading: bool,
        section_fading: bool,
        ag_run: bool,
    ) {
        let c = &mut *self.curves;
        let front = &mut c.front_gain[..n];
        let gains = c.cal.iter().zip(&*c.source_trim).zip(&*c.pad);
        for (f, ((cal, st), pad)) in front.iter_mut().zip(gains) {
            *f = cal * st * pad;
        }
        if di.run {
            let (a, b) = (self.di_morph.active, self.di_morph.standby());
            let (ga, gb) = (self.di_gain[a], self.di_gain[b]);
            let amounts = c.di.iter().zip(&*c.di_morph);
            for (f, (on, morph)) in front.iter_mut().zip(amounts) {
                let g = if di_fading {
                    ga + morph * (gb - ga)
                } else {
                    ga
                };
                *f *= 1.0 + on * (g - 1.0);
            }
        }
        for f in front.iter_mut() {
            *f = 1.0 / f.max(1e-300);
        }
        let front = &c.front_gain[..n];
        // A re-seat on a new DI (fully in): each section takes its own DI
        // instance's output, so its front gain has that DI's gain alone.
        let joint = self.joint && section_fading && di_fading && di.run && di.settled;
        {
            let running = if section_fading { 2 } else { 1 };
            let order = [self.section_morph.active, self.section_morph.standby()];
            let di_of = [self.di_morph.active, self.di_morph.standby()];
            for (&i, &d) in order[..running].iter().zip(&di_of) {
                let section = &self.sections[i];
                let drive = section.settings.drive;
                let signed = drive * section.settings.polarity;
                if joint {
                    // Its DI runs at its own input gain.
                    let g = self.di_gain[d] * self.di_in_gain[d];
                    for (s, pad) in c.drive_scale[i][..n].iter_mut().zip(&*c.pad) {
                        *s = signed / (pad * g).max(1e-300);
                    }
                } else {
                    for (s, f) in c.drive_scale[i][..n].iter_mut().zip(front) {
                        *s = signed * f;
                    }
                }
                if ag_run {
                    let k = 1.0 / (drive * section.gain).max(1e-300);
                    for (v, cal) in c.compensation[i][..n].iter_mut().zip(&c.cal[..n]) {
                        *v = cal * k;
                    }
                }
            }
        }
    }

    #[inline(always)]
    fn process_chunk_any(&mut self, io: &mut [&mut [f32]], start: usize, n: usize) {
        let plan = self.plan_chunk(n);
        // A restarting auto-gain learns the loudness of the last
        // [`PRE_ROLL_S`] first, so it starts at its steady correction, not
        // at 1 and then a jump.
        let warm = plan.ag_reset;
        if warm {
            for ch in self.channels.iter_mut() {
                ch.auto_gain.reset();
            }
        }
        if plan.os.run && plan.os.reset {
            // Back in after being out: from its steady state on the recent
            // input, not from rest.
            self.pre_roll(self.section_morph.active, warm, false);
            if plan.section_fading {
                self.pre_roll(self.section_morph.standby(), false, false);
            }
        } else if warm && !plan.section_fading {
            // (The idle section stands in for the playing one.)
            self.pre_roll(self.section_morph.standby(), true, false);
        }
        let ChunkPlan {
            compare_off,
            di,
            di_fading,
            joint,
            os,
            section_fading,
            ag,
            ag_run,
            ag_reset: _,
            hp,
        } = plan;
        let c = &*self.curves;
        let metering = self.metering;
        let taps = &mut self.taps;
        if metering {
            self.meter_samples += n as u64;
            self.meter_section_ran |= os.run;
        }
        let active = self.channels.len().min(io.len());
        let history_pos = self.history_pos;
        // (Targets, not the ramps' values at the chunk's end, which depend
        // on the chunk's length.)
        let input_gain = self.cal.target() * self.source_trim.target();
        let di_in_gain = self.di_in_gain;
        let mains = (self.clock, self.spec.sample_rate);
        let (di_a, di_b) = (self.di_morph.active, self.di_morph.standby());
        let (sec_a, sec_b) = (self.section_morph.active, self.section_morph.standby());
        // The section instances that run: the playing one, and the one
        // faded to.
        let both = [sec_a, sec_b];
        let running = match (os.run, section_fading) {
            (false, _) => &both[..0],
            (true, false) => &both[..1],
            (true, true) => &both[..],
        };
        let pair = matches!(self.sections[0].preamps, Preamps::Pair(_)) && self.channels.len() == 2;
        // …and, when the host feeds both, its loudness measurements.
        let pair_fed = pair && active == 2;

        for (ch, host) in self.channels.iter_mut().zip(io.iter_mut()) {
            if di.run && di.reset {
                // Back in after being out: settled on the recent input.
                ch.pre_roll_di(di_a, history_pos, input_gain, None, mains);
            }
            let host = &mut host[start..start + n];
            let (wet, dry) = (&mut ch.wet[..n], &mut ch.dry[..n]);
            for ((w, d), &x) in wet.iter_mut().zip(dry.iter_mut()).zip(host.iter()) {
                // Non-finite input would poison every filter state: treat it as silence.
                let x = if x.is_finite() { f64::from(x) } else { 0.0 };
                *d = x;
                *w = x;
            }
            if joint {
                ch.dry_in[..n].copy_from_slice(dry);
            }
            // The auto-gain's reference: the track itself, in the volts the
            // output conversion maps back to the same dBFS.
            for ((r, w), g) in ch.reference[..n]
                .iter_mut()
                .zip(wet.iter())
                .zip(&c.cal[..n])
            {
                *r = w * g;
            }
            ch.reference_delay.process(&mut ch.reference[..n]);
            // The track, for a DI that has to catch up.
            ring_write(&mut ch.di_history, history_pos, dry.iter().copied());
            ch.dry_delay.process(dry);
            for (w, g) in wet.iter_mut().zip(&c.input[..n]) {
                *w *= g;
            }
            if metering {
                taps.add(Tap::Input, wet);
            }
            if di.run {
                if di.settled && !di_fading {
                    ch.di[di_a].process(wet);
                } else {
                    // In a re-seat each DI runs at its own input gain (the
                    // input's ramp is for the stand-in path): a DI driven
                    // into its core's saturation is not a gain the section
                    // could take back.
                    let track = joint.then_some(&ch.dry_in[..n]);
                    let out = &mut ch.scratch[..n];
                    di_input(out, wet, track, di_in_gain[di_a]);
                    ch.di[di_a].process(out);
                    if di_fading {
                        let new = &mut ch.alt[..n];
                        di_input(new, wet, track, di_in_gain[di_b]);
                        ch.di[di_b].process(new);
                        if joint {
                            for (i, y) in [(sec_a, &*out), (sec_b, &*new)] {
                                let gains = c.pad.iter().zip(&c.drive_scale[i]);
                                for (x, (v, (g, d))) in
                                    ch.section[i][..n].iter_mut().zip(y.iter().zip(gains))
                                {
                                    *x = v * g * d;
                                }
                            }
                        }
                        blend(out, new, &c.di_morph[..n], false);
                    }
                    blend(wet, out, &c.di[..n], di.settled);
                }
            }
            if metering {
                taps.add(Tap::DiOut, wet);
            }
            for (w, g) in wet.iter_mut().zip(&c.pad[..n]) {
                *w *= g;
            }
            // The section's recent input at unit drive (polarity aside),
            // for a section that has to catch up (`pre_roll`).
            let unit = wet.iter().zip(&c.front_gain[..n]).map(|(x, f)| x * f);
            ring_write(&mut ch.history, history_pos, unit);
            // Each running section takes its copy of the input; the delay
            // path is always fed, so it is ready the moment the section is
            // switched out. `wet` becomes the delay path's output (unused
            // while the section is fully in).
            for &i in running.iter().filter(|_| !joint) {
                for ((y, x), g) in ch.section[i][..n]
                    .iter_mut()
                    .zip(&*wet)
                    .zip(&c.drive_scale[i][..n])
                {
                    *y = x * g;
                }
            }
            // (The sections have their own polarity: a flip re-seats them,
            // rather than ramping their input through zero.)
            if c.polarity.constant != Some(1f64.to_bits()) {
                for (w, g) in wet.iter_mut().zip(&c.polarity[..n]) {
                    *w *= g;
                }
            }
            if metering {
                taps.add(Tap::PreampIn, wet);
            }
            if os.run && os.settled {
                ch.wet_delay.push(wet);
            } else {
                ch.wet_delay.process(wet);
            }
        }

        if let Some(len) = self.channels.first().map(|ch| ch.history.len()) {
            self.history_pos = (history_pos + n) % len;
        }
        self.clock += n as u64;

        // The sections, a stereo pair in the lanes of one preamp.
        for &i in running {
            let section = &mut self.sections[i];
            if pair {
                if let [a, b] = &mut self.channels[..] {
                    // An unfed right channel (mono host) takes silence.
                    if active < 2 {
                        b.section[i][..n].fill(0.0);
                    }
                    section.process_pair(&mut a.section[i][..n], &mut b.section[i][..n]);
                }
            } else {
                for (k, ch) in self.channels.iter_mut().enumerate().take(active) {
                    section.process_mono(k, &mut ch.section[i][..n]);
                }
            }
        }

        // The section's output: uncompensated (`scratch`) while the
        // auto-gain is not fully on, compensated (`compensated`) while it
        // acts; one instance, or the crossfade of two.
        if os.run {
            for ch in self.channels.iter_mut().take(active) {
                let [ya, yb] = [&ch.section[sec_a][..n], &ch.section[sec_b][..n]];
                if !(ag_run && ag.settled) {
                    let u = &mut ch.scratch[..n];
                    u.copy_from_slice(ya);
                    if section_fading {
                        blend(u, yb, &c.section_morph[..n], false);
                    }
                }
                if ag_run {
                    let [ca, cb] = [&c.compensation[sec_a][..n], &c.compensation[sec_b][..n]];
                    let y = &mut ch.compensated[..n];
                    for i in 0..n {
                        y[i] = ya[i] * ca[i];
                    }
                    if section_fading {
                        // The new section comes in with the correction that
                        // matches it to the track (see `pre_roll`), handed
                        // over when the fade ends.
                        let h = handover_ratio(ch.handover);
                        for i in 0..n {
                            y[i] += c.section_morph[i] * (h * yb[i] * cb[i] - y[i]);
                        }
                    }
                }
            }
        }
        if ag_run {
            if pair_fed {
                if let [a, b] = &mut self.channels[..] {
                    // Both channels' loudness in one loop (their K-weighting
                    // recursions overlap).
                    AutoGain::process_pair(
                        &mut a.auto_gain,
                        &mut b.auto_gain,
                        (&a.reference[..n], &mut a.compensated[..n]),
                        (&b.reference[..n], &mut b.compensated[..n]),
                    );
                }
            } else {
                for ch in self.channels.iter_mut().take(active) {
                    ch.auto_gain
                        .process(&ch.reference[..n], &mut ch.compensated[..n]);
                }
            }
        }

        for ch in self.channels.iter_mut().take(active) {
            if os.run {
                let out = if ag_run {
                    let y = &mut ch.compensated[..n];
                    if !ag.settled {
                        // The switch's amount is how much the auto-gain acts.
                        let u = &ch.scratch[..n];
                        for ((v, u), m) in y.iter_mut().zip(u).zip(&c.auto_gain[..n]) {
                            *v = u + m * (*v - u);
                        }
                    }
                    y
                } else {
                    &mut ch.scratch[..n]
                };
                for (v, g) in out.iter_mut().zip(&c.preamp_output[..n]) {
                    *v *= g;
                }
                blend(&mut ch.wet[..n], out, &c.oversampled[..n], os.settled);
            }
            let (wet, dry) = (&mut ch.wet[..n], &ch.dry[..n]);
            if metering {
                taps.add(Tap::PreampOut, wet);
                if !hp.run {
                    // Out: the headphone sees what the preamp gives.
                    taps.add(Tap::Headphone, wet);
                }
            }

            // The headphone amp; its bypass delay is always fed so it is
            // ready the moment the amp is switched out.
            if hp.run {
                if hp.reset {
                    ch.headphone.reset();
                }
                if hp.settled {
                    ch.headphone_bypass.push(wet);
                    ch.headphone.process(wet);
                } else {
                    let amp = &mut ch.scratch[..n];
                    amp.copy_from_slice(wet);
                    ch.headphone.process(amp);
                    ch.headphone_bypass.process(wet);
                    blend(wet, amp, &c.headphone[..n], false);
                }
                if metering {
                    taps.add(Tap::Headphone, wet);
                }
            } else {
                ch.headphone_bypass.process(wet);
            }
            if metering {
                taps.add(Tap::Output, wet);
            }

            let mixed = &mut ch.alt[..n];
            for i in 0..n {
                let processed = wet[i] * c.output[i];
                mixed[i] = processed * c.mix[i] + dry[i] * (1.0 - c.mix[i]);
            }
            // The compare's loudness match runs all the time, so switching
            // is instant and already matched.
            if !pair_fed {
                ch.compare
                    .process_as(!compare_off, dry, mixed, &mut ch.scratch[..n]);
            }
        }
        if pair_fed {
            if let [a, b] = &mut self.channels[..] {
                let sides = (
                    (&a.dry[..n], &a.alt[..n], &mut a.scratch[..n]),
                    (&b.dry[..n], &b.alt[..n], &mut b.scratch[..n]),
                );
                let (ca, cb) = (&mut a.compare, &mut b.compare);
                CompareMatch::process_pair_as(!compare_off, ca, cb, sides.0, sides.1);
            }
        }

        for (ch, host) in self.channels.iter_mut().zip(io.iter_mut()) {
            let host = &mut host[start..start + n];
            let (mixed, dry, dry_gain) = (&mut ch.alt[..n], &ch.dry[..n], &ch.scratch[..n]);
            if !compare_off {
                for i in 0..n {
                    mixed[i] += c.compare[i] * (dry[i] * dry_gain[i] - mixed[i]);
                }
            }
            for i in 0..n {
                let out = mixed[i] * (1.0 - c.bypass[i]) + dry[i] * c.bypass[i];
                host[i] = out as f32;
            }
        }
    }
}

/// What one chunk does (see [`Chain::plan_chunk`]).
#[derive(Clone, Copy)]
struct ChunkPlan {
    /// Compare is fully off.
    compare_off: bool,
    /// The DI switch.
    di: SwitchPlan,
    /// The DI's two instances crossfade.
    di_fading: bool,
    /// …and each section takes its own DI's output.
    joint: bool,
    /// The preamp switch (the section against its stand-in).
    os: SwitchPlan,
    /// The two sections crossfade.
    section_fading: bool,
    /// The auto-gain switch.
    ag: SwitchPlan,
    /// The auto-gain runs (its switch, and the section, are in).
    ag_run: bool,
    /// …after a restart.
    ag_reset: bool,
    /// The headphone switch.
    hp: SwitchPlan,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_pair_is_bit_identical_to_two_mono_compares() {
        // Different material per channel (one side silent for a while, so
        // its gain holds), in block sizes that straddle the hops.
        let n = 9_000;
        let wave = |i: usize, f: f64, a: f64| a * (i as f64 * f).sin();
        let dry_l: Vec<f64> = (0..n).map(|i| wave(i, 0.031, 0.3)).collect();
        let out_l: Vec<f64> = (0..n).map(|i| (wave(i, 0.031, 0.3) * 4.0).tanh()).collect();
        let dry_r: Vec<f64> = (0..n)
            .map(|i| if i < 3_000 { 0.0 } else { wave(i, 0.27, 0.1) })
            .collect();
        let out_r: Vec<f64> = dry_r.iter().map(|v| v * 0.5).collect();
        let (mut a, mut b) = (CompareMatch::new(), CompareMatch::new());
        let (mut ga, mut gb) = (vec![0.0; n], vec![0.0; n]);
        // Some blocks run with compare off (no gains written): the estimate
        // must move the same, so the gains written later still match.
        let mut written = vec![true; n];
        let mut start = 0;
        for (k, size) in [1usize, 31, 64, 500, 3].iter().cycle().enumerate() {
            if start >= n {
                break;
            }
            let end = (start + size).min(n);
            let left = (&dry_l[start..end], &out_l[start..end], &mut ga[start..end]);
            let right = (&dry_r[start..end], &out_r[start..end], &mut gb[start..end]);
            let on = k % 4 != 1;
            CompareMatch::process_pair_as(on, &mut a, &mut b, left, right);
            written[start..end].fill(on);
            start = end;
        }
        let (mut ma, mut mb) = (CompareMatch::new(), CompareMatch::new());
        let (mut ea, mut eb) = (vec![0.0; n], vec![0.0; n]);
        ma.process::<true>(&dry_l, &out_l, &mut ea);
        mb.process::<true>(&dry_r, &out_r, &mut eb);
        assert!(written.iter().filter(|w| !**w).count() > 1000);
        for i in (0..n).filter(|&i| written[i]) {
            assert!(ga[i] == ea[i], "left differs from mono at {i}");
            assert!(gb[i] == eb[i], "right differs from mono at {i}");
        }
        // The right plays its dry signal at the output's loudness: ½ (−6 dB).
        assert!((gb[n - 1] - 0.5).abs() < 1e-3, "{}", gb[n - 1]);
    }

    #[test]
    fn source_levels_are_the_documented_ones() {
        assert!((Source::ConsumerLine.nominal_dbu() - (-7.78)).abs() < 0.01);
        assert_eq!(Source::ProLine.nominal_dbu(), 4.0);
    }

    #[test]
    fn calibration_maps_full_scale_to_the_stated_dbu() {
        // A full-scale sine (peak 1.0) must have cal dBu rms in volts.
        for cal in [18.0, 20.0, 22.0, 24.0] {
            let s = ChainSettings {
                cal_dbu: cal,
                ..ChainSettings::default()
            };
            let volts_rms = s.input_gain() / 2f64.sqrt();
            let dbu = 20.0 * (volts_rms / 0.7746).log10();
            assert!((dbu - cal).abs() < 0.001, "{cal}: {dbu}");
        }
    }
}
