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
//! The preamp's output level is applied after the auto-gain, so that with
//! auto-gain on the output level still does what it says.
//!
//! Switching a stage in or out crossfades over 20 ms between the stage's
//! input and output (the stage keeps running during the fade), and switching
//! between the oversampled section and the pure delay crossfades the two
//! paths, so no switch clicks. A stage that was fully out is reset when it
//! comes back in, so it starts from its settled state.
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
use super::meters::{ChainMeters, Tap, TapSums};
use super::oversampling::{latency_for, Oversampler, Quality, MAX_FACTOR};
use super::smoothing::LinearSmoother;
use super::transformer::{DiBox, DiSettings};
use super::tube::{
    AutoGain, AutoGainSettings, LoudnessPair, LoudnessQuad, Preamp, PreampPart, PreampSettings,
    StereoPreamp, GRID_CONDUCTION_VOLTS,
};
use super::{db_to_gain, full_scale_peak_volts, ProcessSpec, MAX_BLOCK};

/// Oversampling factor for the live (low-latency) quality.
pub const LIVE_FACTOR: usize = 4;
/// Oversampling factor for the high quality (and offline rendering). The
/// high quality uses linear-phase FIR half-bands at the same factor as live:
/// with the preamp's antiderivative anti-aliasing, 8× measured no better
/// (−111.2 dB against −111.6 dB at 4×, `tests/aliasing.rs`), at twice the CPU.
pub const HIGH_FACTOR: usize = 4;

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
        full_scale_peak_volts(self.cal_dbu)
            * db_to_gain(self.source.nominal_dbu() - PRO_LINE_DBU)
            * db_to_gain(self.in_trim_db)
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

    /// True when the auto-gain acts.
    fn auto_gain_on(&self) -> bool {
        self.pre_on && self.auto_gain
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

/// Per-channel state.
struct ChannelState {
    /// The wet signal of the current chunk, in volts.
    wet: [f64; MAX_BLOCK],
    /// The dry signal of the current chunk, in dBFS, delayed to match `wet`.
    dry: [f64; MAX_BLOCK],
    /// Runs the non-linear stages at a multiple of the host rate.
    oversampler: Oversampler,
    /// Stands in for the oversampler's latency while no non-linear stage is
    /// active, so the latency never depends on which stages are switched in.
    wet_delay: DelayLine,
    /// Aligns the dry signal with the wet path's latency.
    dry_delay: DelayLine,
    /// The delay path's copy of the wet chunk while the two paths crossfade.
    alt: [f64; MAX_BLOCK],
    /// The track in output volts: the auto-gain's loudness reference.
    reference: [f64; MAX_BLOCK],
    /// Delays the reference by the oversampled section's latency, so the
    /// auto-gain compares the track with what the section made of the same
    /// samples (a misaligned start would read the section as silent).
    reference_delay: DelayLine,
    /// Scratch for the oversampled section's and the auto-gain's output
    /// while they are crossfaded with their input.
    compensated: [f64; MAX_BLOCK],
    /// Matches the preamp's output loudness to its input.
    auto_gain: AutoGain,
    /// The passive DI box (host rate).
    di: DiBox,
    /// Host-rate scratch for a stage being crossfaded.
    scratch: [f64; MAX_BLOCK],
    /// The headphone amp driving its load (host rate).
    headphone: HeadphoneAmp,
    /// Stands in for the headphone amp's latency while it is out.
    headphone_bypass: DelayLine,
    /// Loudness of the dry signal and of the output, for the compare.
    compare: CompareMatch,
}

impl ChannelState {
    fn new() -> Self {
        Self {
            wet: [0.0; MAX_BLOCK],
            dry: [0.0; MAX_BLOCK],
            oversampler: Oversampler::new(),
            wet_delay: DelayLine::default(),
            dry_delay: DelayLine::default(),
            alt: [0.0; MAX_BLOCK],
            reference: [0.0; MAX_BLOCK],
            reference_delay: DelayLine::default(),
            compensated: [0.0; MAX_BLOCK],
            auto_gain: AutoGain::new(),
            di: DiBox::new(),
            scratch: [0.0; MAX_BLOCK],
            headphone: HeadphoneAmp::new(),
            headphone_bypass: DelayLine::default(),
            compare: CompareMatch::new(),
        }
    }

    fn reset(&mut self, s: &ChainSettings) {
        self.wet.fill(0.0);
        self.dry.fill(0.0);
        self.alt.fill(0.0);
        self.auto_gain.reset();
        self.oversampler.reset();
        self.wet_delay.reset();
        self.dry_delay.reset();
        self.reference_delay.reset();
        self.di.set_settings(s.di);
        self.di.reset();
        self.headphone.set_settings(s.headphone);
        self.headphone.reset();
        self.headphone_bypass.reset();
        self.compare.reset();
    }
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
        curve.fill(&mut self.amount, n);
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

/// Run `$e` with `$p` bound to every preamp of the sections `$s`.
macro_rules! each_preamp {
    ($s:expr, $p:ident => $e:expr) => {
        match $s {
            Sections::PerChannel(v) => v.iter_mut().for_each(|$p| $e),
            Sections::Pair($p) => $e,
        }
    };
}

/// The preamps of the oversampled section: one per channel (mono, or more
/// than two channels), or a stereo pair in the SIMD lanes of one
/// [`StereoPreamp`] (bit-identical to two mono ones, at about the cost of
/// one). Its triode stages run at the oversampled rate; its linear ends
/// ([`PreampPart`]) at the host rate, before the upsampler and after the
/// downsampler. The section has no switch of its own: the chain's
/// crossfade between the section and the pure delay is the preamp's
/// in/out switch.
enum Sections {
    /// One mono preamp per channel.
    PerChannel(Vec<Preamp>),
    /// A stereo pair.
    Pair(Box<StereoPreamp>),
}

impl Sections {
    /// Sections for `num_channels` channels (allocates; unprepared).
    fn for_channels(num_channels: usize) -> Self {
        if num_channels == 2 {
            Sections::Pair(Box::default())
        } else {
            Sections::PerChannel((0..num_channels).map(|_| Preamp::new()).collect())
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

    fn set_settings(&mut self, s: &ChainSettings) {
        each_preamp!(self, p => p.set_settings(s.preamp_stage_settings()));
    }

    fn reset(&mut self, s: &ChainSettings) {
        each_preamp!(self, p => {
            p.set_settings(s.preamp_stage_settings());
            p.reset();
        });
    }

    /// The preamp's small-signal gain (the same for every channel), or
    /// `None` with no channels.
    fn small_signal_gain(&self) -> Option<f64> {
        match self {
            Sections::PerChannel(v) => v.first().map(|p| p.small_signal_gain()),
            Sections::Pair(p) => Some(p.small_signal_gain()),
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
            Sections::PerChannel(v) => v.get_mut(ch).map(|p| read(p, 0)),
            Sections::Pair(p) => (ch < 2).then(|| read(p.as_mut(), ch)),
        }
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

    /// Fill the first `n` values from `smoother` (at most `MAX_BLOCK`).
    #[inline]
    fn fill(&mut self, smoother: &mut LinearSmoother, n: usize) {
        if smoother.is_settled() {
            let v = smoother.value();
            if self.constant != Some(v.to_bits()) {
                self.values.fill(v);
                self.constant = Some(v.to_bits());
            }
        } else {
            smoother.fill(&mut self.values[..n]);
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
    input: Curve,
    preamp_input: Curve,
    output: Curve,
    mix: Curve,
    bypass: Curve,
    compare: Curve,
    di: Curve,
    oversampled: Curve,
    auto_gain: Curve,
    preamp_output: Curve,
    headphone: Curve,
}

/// The whole signal chain for up to N channels.
pub struct Chain {
    /// The host stream this chain was prepared for.
    spec: ProcessSpec,
    /// The settings in force (targets of the smoothers).
    settings: ChainSettings,
    /// One state per channel, allocated in `prepare`.
    channels: Vec<ChannelState>,
    /// The oversampled stages of the channels (a stereo pair runs as one).
    sections: Sections,
    /// dBFS → volts, source and input trim.
    input_gain: LinearSmoother,
    /// Pad and polarity (ramps through zero on a polarity flip: no click).
    preamp_input_gain: LinearSmoother,
    /// Volts → dBFS and output trim.
    output_gain: LinearSmoother,
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
    /// The preamp's output level.
    preamp_output_gain: LinearSmoother,
    /// The headphone amp in, or the pure delay that stands in for it.
    headphone: Switch,
    /// Scratch for the per-sample gains of a chunk.
    curves: Box<GainCurves>,
    /// Latency of the wet path in host samples.
    latency: usize,
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

impl Chain {
    /// An unprepared chain with default settings.
    pub fn new() -> Self {
        let settings = ChainSettings::default();
        Self {
            spec: ProcessSpec {
                sample_rate: 48_000.0,
                max_block: MAX_BLOCK,
            },
            settings,
            channels: Vec::new(),
            sections: Sections::PerChannel(Vec::new()),
            input_gain: LinearSmoother::new(settings.input_gain()),
            preamp_input_gain: LinearSmoother::new(settings.preamp_input_gain()),
            output_gain: LinearSmoother::new(settings.output_gain()),
            mix: LinearSmoother::new(settings.mix),
            bypass: LinearSmoother::new(0.0),
            compare: LinearSmoother::new(0.0),
            di: Switch::new(false),
            oversampled: Switch::new(false),
            auto_gain: Switch::new(false),
            preamp_output_gain: LinearSmoother::new(1.0),
            headphone: Switch::new(false),
            curves: Box::new(GainCurves {
                input: Curve::new(),
                preamp_input: Curve::new(),
                output: Curve::new(),
                mix: Curve::new(),
                bypass: Curve::new(),
                compare: Curve::new(),
                di: Curve::new(),
                oversampled: Curve::new(),
                auto_gain: Curve::new(),
                preamp_output: Curve::new(),
                headphone: Curve::new(),
            }),
            has_avx2: false,
            latency: 0,
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
        self.sections = Sections::for_channels(num_channels);
        #[cfg(target_arch = "x86_64")]
        {
            self.has_avx2 = std::arch::is_x86_feature_detected!("avx2");
        }
        let max_latency = [Quality::Live, Quality::High]
            .into_iter()
            .map(|q| {
                let s = ChainSettings {
                    quality: q,
                    ..self.settings
                };
                latency_for(q, s.oversampling_factor(), sample_rate)
            })
            .max()
            .unwrap_or(0)
            + HeadphoneAmp::new().latency_samples();
        let designs = design_loads(sample_rate);
        let os_spec = ProcessSpec {
            sample_rate: sample_rate * self.settings.oversampling_factor() as f64,
            max_block: MAX_BLOCK * MAX_FACTOR,
        };
        self.sections.prepare(&os_spec);
        for ch in &mut self.channels {
            ch.oversampler.prepare(&self.spec);
            ch.wet_delay.prepare(max_latency);
            ch.dry_delay.prepare(max_latency);
            ch.reference_delay.prepare(max_latency);
            ch.auto_gain.prepare(&self.spec);
            ch.compare.set_sample_rate(sample_rate);
            ch.di.prepare(&self.spec);
            ch.headphone.prepare_with(&self.spec, &designs);
            ch.headphone_bypass.prepare(max_latency);
            ch.headphone_bypass
                .set_delay(ch.headphone.latency_samples());
        }
        for s in [
            &mut self.input_gain,
            &mut self.preamp_input_gain,
            &mut self.output_gain,
            &mut self.mix,
            &mut self.bypass,
            &mut self.compare,
            &mut self.di.amount,
            &mut self.oversampled.amount,
            &mut self.auto_gain.amount,
            &mut self.preamp_output_gain,
            &mut self.headphone.amount,
        ] {
            s.set_sample_rate(sample_rate);
        }
        self.apply_quality();
        self.reset();
        // The auto-gain's static compensation depends on the prepared
        // stages with the settings in force (`reset` hands them over): set
        // it now, not only when the settings change, or a chain set up
        // before `prepare` starts with the default compensation.
        self.update_auto_gain();
    }

    /// Clear all state and jump every smoother to its target. Never allocates.
    pub fn reset(&mut self) {
        let s = self.settings;
        for ch in &mut self.channels {
            ch.reset(&s);
        }
        self.sections.reset(&s);
        self.di.jump(s.di_on);
        self.oversampled.jump(s.nonlinear_active());
        self.auto_gain.jump(s.auto_gain_on());
        self.headphone.jump(s.hp_on);
        self.input_gain.reset(s.input_gain());
        self.preamp_input_gain.reset(s.preamp_input_gain());
        self.output_gain.reset(s.output_gain());
        self.mix.reset(s.mix);
        self.bypass.reset(if s.bypass { 1.0 } else { 0.0 });
        self.compare.reset(if s.compare { 1.0 } else { 0.0 });
    }

    /// The settings in force.
    pub fn settings(&self) -> &ChainSettings {
        &self.settings
    }

    /// Take new settings. Continuous values ramp; a quality change
    /// reconfigures the oversampler (no allocation) and changes the latency.
    pub fn set_settings(&mut self, s: ChainSettings) {
        if s == self.settings {
            return;
        }
        let quality_changed = s.quality != self.settings.quality;
        self.settings = s;
        self.input_gain.set_target(s.input_gain());
        self.preamp_input_gain.set_target(s.preamp_input_gain());
        self.output_gain.set_target(s.output_gain());
        self.mix.set_target(s.mix.clamp(0.0, 1.0));
        self.bypass.set_target(if s.bypass { 1.0 } else { 0.0 });
        self.compare.set_target(if s.compare { 1.0 } else { 0.0 });
        self.di.set(s.di_on);
        self.oversampled.set(s.nonlinear_active());
        self.auto_gain.set(s.auto_gain_on());
        self.preamp_output_gain.set_target(s.preamp_output_gain());
        self.headphone.set(s.hp_on);
        for ch in &mut self.channels {
            ch.headphone.set_settings(s.headphone);
            ch.di.set_settings(s.di);
        }
        self.sections.set_settings(&s);
        self.update_auto_gain();
        if quality_changed {
            self.apply_quality();
            for ch in &mut self.channels {
                ch.reset(&s);
            }
            self.sections.reset(&s);
        }
    }

    fn apply_quality(&mut self) {
        let (q, factor) = (self.settings.quality, self.settings.oversampling_factor());
        let os_rate = self.spec.sample_rate * factor as f64;
        for ch in &mut self.channels {
            ch.oversampler.configure(q, factor);
        }
        self.sections.set_rates(os_rate, self.spec.sample_rate);
        let os_latency = latency_for(q, factor, self.spec.sample_rate);
        let hp_latency = self
            .channels
            .first()
            .map_or(0, |ch| ch.headphone.latency_samples());
        self.latency = os_latency + hp_latency;
        for ch in &mut self.channels {
            ch.wet_delay.set_delay(os_latency);
            ch.reference_delay.set_delay(os_latency);
            ch.dry_delay.set_delay(self.latency);
        }
    }

    /// Hand the section's small-signal gain to the auto-gain.
    fn update_auto_gain(&mut self) {
        let s = self.settings;
        for ch in &mut self.channels {
            // What the auto-gain compensates at once (its slow loudness
            // correction does the rest): the small-signal gain at 1 kHz.
            let static_gain = s.auto_gain_static_gain(
                ch.di.response(1000.0).norm(),
                self.sections.small_signal_gain().unwrap_or(1.0),
            );
            ch.auto_gain.set_settings(AutoGainSettings {
                enabled: true,
                static_gain,
            });
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
            let (bias, peaks) = self.sections.grid(k).unwrap_or_default();
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
            di_sat = di_sat.max(ch.di.take_peak_saturation());
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
            let n = (len - start).min(MAX_BLOCK);
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

    #[inline(always)]
    fn process_chunk_any(&mut self, io: &mut [&mut [f32]], start: usize, n: usize) {
        let c = &mut *self.curves;
        c.input.fill(&mut self.input_gain, n);
        c.preamp_input.fill(&mut self.preamp_input_gain, n);
        c.output.fill(&mut self.output_gain, n);
        c.mix.fill(&mut self.mix, n);
        c.bypass.fill(&mut self.bypass, n);
        let compare_off = self.compare.is_settled() && self.compare.target() == 0.0;
        c.compare.fill(&mut self.compare, n);
        let di = self.di.plan_curve(&mut c.di, n);
        let os = self.oversampled.plan_curve(&mut c.oversampled, n);
        let ag = self.auto_gain.plan_curve(&mut c.auto_gain, n);
        c.preamp_output.fill(&mut self.preamp_output_gain, n);
        let hp = self.headphone.plan_curve(&mut c.headphone, n);
        let c = &*c;
        let track_volts = full_scale_peak_volts(self.settings.cal_dbu);
        let metering = self.metering;
        let taps = &mut self.taps;
        if metering {
            self.meter_samples += n as u64;
            self.meter_section_ran |= os.run;
        }
        let active = self.channels.len().min(io.len());
        // A stereo pair runs its oversamplers together too.
        let pair = matches!(self.sections, Sections::Pair(_)) && self.channels.len() == 2;
        // …and, when the host feeds both, its loudness measurements.
        let pair_fed = pair && active == 2;
        if os.run && os.reset {
            self.sections.reset(&self.settings);
        }

        for (k, (ch, host)) in self.channels.iter_mut().zip(io.iter_mut()).enumerate() {
            let host = &mut host[start..start + n];
            let (wet, dry) = (&mut ch.wet[..n], &mut ch.dry[..n]);
            for ((w, d), &x) in wet.iter_mut().zip(dry.iter_mut()).zip(host.iter()) {
                // Non-finite input would poison every filter state: treat it as silence.
                let x = if x.is_finite() { f64::from(x) } else { 0.0 };
                *d = x;
                *w = x;
            }
            // The auto-gain's reference: the track itself, in the volts the
            // output conversion maps back to the same dBFS.
            for (r, w) in ch.reference[..n].iter_mut().zip(wet.iter()) {
                *r = w * track_volts;
            }
            ch.reference_delay.process(&mut ch.reference[..n]);
            ch.dry_delay.process(dry);
            for (w, g) in wet.iter_mut().zip(&c.input[..n]) {
                *w *= g;
            }
            if metering {
                taps.add(Tap::Input, wet);
            }
            if di.run {
                if di.reset {
                    ch.di.reset();
                }
                if di.settled {
                    ch.di.process(wet);
                } else {
                    let out = &mut ch.scratch[..n];
                    out.copy_from_slice(wet);
                    ch.di.process(out);
                    blend(wet, out, &c.di[..n], false);
                }
            }
            if metering {
                taps.add(Tap::DiOut, wet);
            }
            for (w, g) in wet.iter_mut().zip(&c.preamp_input[..n]) {
                *w *= g;
            }
            if metering {
                taps.add(Tap::PreampIn, wet);
            }

            // The delay path is always fed, so it is ready the moment the
            // oversampled section is switched out. Its output is the wet
            // signal when the section is out, blended with the section's
            // while it fades, and unused when it is fully in.
            if !os.run {
                ch.wet_delay.process(wet);
            } else if os.settled {
                ch.wet_delay.push(wet);
            } else {
                let alt = &mut ch.alt[..n];
                alt.copy_from_slice(wet);
                ch.wet_delay.process(alt);
            }

            if os.run {
                if os.reset {
                    ch.oversampler.reset();
                }
                // The preamp's input end at the host rate, in place: the
                // delay path has taken its copy (pushed, or in `alt`), and
                // the wet signal is written anew from the section's output.
                if let Sections::PerChannel(v) = &mut self.sections {
                    v[k].process_part(PreampPart::Front, wet);
                    ch.oversampler.upsample(wet);
                }
            }
        }
        if os.run && pair {
            if let ([a, b], Sections::Pair(preamp)) = (&mut self.channels[..], &mut self.sections) {
                // An unfed right channel (mono host) takes silence.
                if active < 2 {
                    b.wet[..n].fill(0.0);
                }
                preamp.process_stereo_part(PreampPart::Front, &mut a.wet[..n], &mut b.wet[..n]);
                // Left and right in one loop (their recursions overlap).
                Oversampler::upsample_pair(
                    &mut a.oversampler,
                    &mut b.oversampler,
                    &a.wet[..n],
                    &b.wet[..n],
                );
            }
        }

        // The triode stages of every channel at once (a stereo pair in the
        // lanes of one preamp).
        if os.run {
            match &mut self.sections {
                Sections::PerChannel(v) => {
                    for (ch, p) in self.channels.iter_mut().zip(v).take(active) {
                        p.process_part(PreampPart::Stages, ch.oversampler.oversampled());
                    }
                }
                Sections::Pair(p) => {
                    if let [a, b] = &mut self.channels[..] {
                        p.process_stereo_part(
                            PreampPart::Stages,
                            a.oversampler.oversampled(),
                            b.oversampler.oversampled(),
                        );
                    }
                }
            }
        }

        // Back to the host rate and through the preamp's output end:
        // straight into the wet signal when the section is fully in, else
        // into scratch to blend with the delay path.
        if os.run && pair {
            if let ([a, b], Sections::Pair(p)) = (&mut self.channels[..], &mut self.sections) {
                let (out_a, out_b) = if os.settled {
                    (&mut a.wet[..n], &mut b.wet[..n])
                } else {
                    (&mut a.compensated[..n], &mut b.compensated[..n])
                };
                Oversampler::downsample_pair(&mut a.oversampler, &mut b.oversampler, out_a, out_b);
                p.process_stereo_part(PreampPart::Back, out_a, out_b);
            }
        }
        for (k, ch) in self.channels.iter_mut().enumerate().take(active) {
            let wet = &mut ch.wet[..n];
            if os.run {
                let out = if os.settled {
                    wet
                } else {
                    &mut ch.compensated[..n]
                };
                if let Sections::PerChannel(v) = &mut self.sections {
                    ch.oversampler.downsample(out);
                    v[k].process_part(PreampPart::Back, out);
                }
                if !os.settled {
                    let wet = &mut ch.wet[..n];
                    wet.copy_from_slice(&ch.alt[..n]);
                    blend(wet, &ch.compensated[..n], &c.oversampled[..n], false);
                }
            }
            let wet = &mut ch.wet[..n];
            if ag.run && ag.reset {
                ch.auto_gain.reset();
            }
            if ag.run && !pair_fed {
                if ag.settled {
                    ch.auto_gain.process(&ch.reference[..n], wet);
                } else {
                    let comp = &mut ch.compensated[..n];
                    comp.copy_from_slice(wet);
                    ch.auto_gain.process(&ch.reference[..n], comp);
                    blend(wet, comp, &c.auto_gain[..n], false);
                }
            }
        }
        if ag.run && pair_fed {
            if let [a, b] = &mut self.channels[..] {
                // Both channels' loudness in one loop (their K-weighting
                // recursions overlap).
                if ag.settled {
                    AutoGain::process_pair(
                        &mut a.auto_gain,
                        &mut b.auto_gain,
                        (&a.reference[..n], &mut a.wet[..n]),
                        (&b.reference[..n], &mut b.wet[..n]),
                    );
                } else {
                    a.compensated[..n].copy_from_slice(&a.wet[..n]);
                    b.compensated[..n].copy_from_slice(&b.wet[..n]);
                    AutoGain::process_pair(
                        &mut a.auto_gain,
                        &mut b.auto_gain,
                        (&a.reference[..n], &mut a.compensated[..n]),
                        (&b.reference[..n], &mut b.compensated[..n]),
                    );
                    blend(
                        &mut a.wet[..n],
                        &a.compensated[..n],
                        &c.auto_gain[..n],
                        false,
                    );
                    blend(
                        &mut b.wet[..n],
                        &b.compensated[..n],
                        &c.auto_gain[..n],
                        false,
                    );
                }
            }
        }

        for ch in self.channels.iter_mut().take(active) {
            let (wet, dry) = (&mut ch.wet[..n], &ch.dry[..n]);
            for (w, g) in wet.iter_mut().zip(&c.preamp_output[..n]) {
                *w *= g;
            }
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
