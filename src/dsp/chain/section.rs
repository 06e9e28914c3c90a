//! The oversampled section: per channel the mic's loading of the preamp's
//! input ([`MicSource`]: the mic's output impedance against the input
//! impedance), the input transformer when it is in ([`MicTransformer`],
//! driven as `settings::transformer_drive` says), then an oversampler
//! around the preamp's non-linear stages (the tube preamp's triodes or the
//! solid-state pre's op-amp stages, `PreampType`), with the preamp's
//! linear ends (input gain and high-pass, output coupling) around it at
//! the host rate ([`PreampPart`]). Both preamp kinds and the transformer
//! are kept set up in every section, so a change of type or a switch of
//! the transformer is a change of section like a change of Gain.
//!
//! The mic loading belongs to the section because it is the preamp's
//! input that loads the mic: with the preamp out there is no input to
//! load, and the mic source (like the tubes) stands aside for the pure
//! delay that stands in for the section. Its latency (`mic::LATENCY`, the
//! same for every mic, the ideal source included) is part of the section's,
//! and its gain at 1 kHz part of the section's small-signal gain (what the
//! auto-gain's static compensation divides by), so a change of mic or of
//! input impedance is a change of section like a change of Gain: a
//! crossfade between two sections, the new one pre-rolled.
//!
//! A section runs at a fixed drive and polarity ([`SectionSettings`]): the
//! chain scales its input so that whatever ramps in front of it, the
//! section sees the track at its drive, and a change of drive is a change
//! of section (see "The auto-gain in motion" in the module header). The
//! chain holds two sections and crossfades between them when a setting
//! changes ([`super::morph::Morph`]).
//!
//! A stereo pair runs in the SIMD lanes of one [`StereoPreamp`], its two
//! oversamplers in one loop (bit-identical to two mono channels, at about
//! the cost of one); any other number of channels runs one preamp per
//! channel. [`Section::run_channels`] hides the difference from the chain.

use super::chunk::ChannelState;
use super::settings::{
    input_response, quality_factor, transformer_drive, PreampType, SectionSettings,
};
use super::{
    MicSource, MicTransformer, Oversampler, Preamp, PreampPart, PreampSettings, ProcessSpec,
    Quality, SolidPreamp, Stage, StereoPreamp, MIC_LATENCY,
};

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
pub(super) enum Preamps {
    /// One mono preamp per channel.
    PerChannel(Vec<Preamp>),
    /// A stereo pair.
    Pair(Box<StereoPreamp>),
}

impl Preamps {
    /// Preamps for `num_channels` channels (allocates; unprepared).
    pub(super) fn for_channels(num_channels: usize) -> Self {
        if num_channels == 2 {
            Preamps::Pair(Box::default())
        } else {
            Preamps::PerChannel((0..num_channels).map(|_| Preamp::new()).collect())
        }
    }

    /// Build tables for the oversampled rate `os_spec` (allocates).
    pub(super) fn prepare(&mut self, os_spec: &ProcessSpec) {
        each_preamp!(self, p => p.prepare(os_spec));
    }

    /// Stages at `os_rate`, ends at `host_rate`.
    pub(super) fn set_rates(&mut self, os_rate: f64, host_rate: f64) {
        each_preamp!(self, p => p.set_rates(os_rate, host_rate));
    }

    /// Stage 2's output capacitor's charge on or off (High: on; Live: off).
    pub(super) fn set_output_charge(&mut self, on: bool) {
        each_preamp!(self, p => p.set_output_charge(on));
    }

    /// New settings, without the preamps' own gain smoothing.
    pub(super) fn set_settings_at_once(&mut self, s: PreampSettings) {
        each_preamp!(self, p => p.set_settings_at_once(s));
    }

    pub(super) fn reset(&mut self) {
        each_preamp!(self, p => p.reset());
    }

    /// The preamp's small-signal gain (the same for every channel), or
    /// `None` with no channels.
    pub(super) fn small_signal_gain(&self) -> Option<f64> {
        match self {
            Preamps::PerChannel(v) => v.first().map(|p| p.small_signal_gain()),
            Preamps::Pair(p) => Some(p.small_signal_gain()),
        }
    }

    /// Grid readings of channel `ch`: (bias Vgk at rest with the current
    /// charge, peak Vgk since the last call) per stage. Call for every
    /// channel in order (the pair restarts its peaks after the last).
    pub(super) fn grid(&mut self, ch: usize) -> Option<([f64; 2], [f64; 2])> {
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

/// The oversampled section: per channel an oversampler around the
/// preamp's triode stages, the preamp's linear ends at the host rate
/// around it ([`PreampPart`]). The chain keeps two and crossfades between
/// them when a setting changes ([`super::morph::Morph`]).
pub(super) struct Section {
    /// The mic's loading of the preamp input, one per channel (host rate).
    pub(super) mics: Vec<MicSource>,
    /// The input transformer, one per channel (host rate; runs when the
    /// settings say so).
    pub(super) xfmrs: Vec<MicTransformer>,
    /// Gains in front of and after the transformer ([`transformer_drive`]).
    xfmr_gains: (f64, f64),
    /// One oversampler per channel.
    pub(super) oversamplers: Vec<Oversampler>,
    /// The tube preamps (a stereo pair in the lanes of one).
    pub(super) preamps: Preamps,
    /// The solid-state preamps, one per channel (the section runs these
    /// instead of the tubes when its settings say so; both kinds are kept
    /// set up, so a change of type is a change of section like any other).
    pub(super) solids: Vec<SolidPreamp>,
    /// The settings in force.
    pub(super) settings: SectionSettings,
    /// Small-signal gain at 1 kHz of the mic loading and the preamp with
    /// these settings: what the auto-gain's static compensation divides by.
    pub(super) gain: f64,
}

impl Section {
    /// A section for `num_channels` channels (allocates; unprepared).
    pub(super) fn for_channels(num_channels: usize, s: SectionSettings) -> Self {
        Self {
            mics: (0..num_channels).map(|_| MicSource::new()).collect(),
            xfmrs: (0..num_channels).map(|_| MicTransformer::new()).collect(),
            xfmr_gains: (1.0, 1.0),
            oversamplers: (0..num_channels).map(|_| Oversampler::new()).collect(),
            preamps: Preamps::for_channels(num_channels),
            solids: (0..num_channels).map(|_| SolidPreamp::new()).collect(),
            settings: s,
            gain: 1.0,
        }
    }

    /// Design and build everything for the host stream `spec` (allocates),
    /// then take the settings in force.
    pub(super) fn prepare(&mut self, spec: &ProcessSpec) {
        if let Some((first, rest)) = self.mics.split_first_mut() {
            first.prepare(spec);
            for mic in rest {
                mic.prepare_from(spec, first);
            }
        }
        for x in &mut self.xfmrs {
            x.prepare(spec);
        }
        for os in &mut self.oversamplers {
            os.prepare(spec);
        }
        let factor = quality_factor(self.settings.quality);
        let os_spec = ProcessSpec {
            sample_rate: spec.sample_rate * factor as f64,
            max_block: spec.max_block * factor,
            ..*spec
        };
        self.preamps.prepare(&os_spec);
        for p in &mut self.solids {
            p.prepare(&os_spec);
        }
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
    pub(super) fn apply(&mut self, s: SectionSettings, host_rate: f64) {
        if s.quality != self.settings.quality {
            let factor = quality_factor(s.quality);
            for os in &mut self.oversamplers {
                os.configure(s.quality, factor);
            }
            self.preamps.set_rates(host_rate * factor as f64, host_rate);
            // The output capacitor's charge costs about a fifth of the live
            // chain's time: High only (`tube::cathode`).
            self.preamps.set_output_charge(s.quality == Quality::High);
            for p in &mut self.solids {
                p.set_rates(host_rate * factor as f64, host_rate);
            }
        }
        // Only what runs is set: a section whose preamp kind or
        // transformer changes is applied again (`apply` always takes the
        // whole settings), so the idle ones need no design work here.
        match s.pre_type {
            PreampType::Tube => self.preamps.set_settings_at_once(s.preamp),
            PreampType::SolidState => {
                for p in &mut self.solids {
                    p.set_settings_at_once(s.preamp);
                }
            }
        }
        for mic in &mut self.mics {
            mic.set_settings(s.mic);
        }
        if s.in_xfmr {
            let (xfmr, into, out) = transformer_drive(&s.mic);
            for x in &mut self.xfmrs {
                x.set_settings(xfmr);
            }
            self.xfmr_gains = (into, out);
        }
        let mic_gain = match (self.mics.first(), self.xfmrs.first()) {
            (Some(m), Some(x)) => input_response(m, x, &s.mic, s.in_xfmr, 1000.0).norm(),
            _ => 1.0,
        };
        let preamp_gain = match s.pre_type {
            PreampType::Tube => self.preamps.small_signal_gain(),
            PreampType::SolidState => self.solids.first().map(|p| p.small_signal_gain()),
        };
        self.gain = mic_gain * preamp_gain.unwrap_or(1.0);
        self.settings = s;
    }

    /// Back to the settled state.
    pub(super) fn reset(&mut self) {
        for mic in &mut self.mics {
            mic.reset();
        }
        for x in &mut self.xfmrs {
            x.reset();
        }
        for os in &mut self.oversamplers {
            os.reset();
        }
        self.preamps.reset();
        for p in &mut self.solids {
            p.reset();
        }
    }

    /// Latency in host samples: the mic loading's and the oversampler's.
    pub(super) fn latency(&self) -> usize {
        MIC_LATENCY
            + self
                .oversamplers
                .first()
                .map_or(0, |os| os.latency_samples())
    }

    /// Run the buffer `buffer` of the first `fed` channels in place
    /// (host-rate volts in and out): a stereo pair in the lanes of one
    /// preamp (an unfed right channel takes silence: the pair runs
    /// whole), any other layout each channel on its own.
    #[inline]
    pub(super) fn run_channels(
        &mut self,
        channels: &mut [ChannelState],
        buffer: usize,
        n: usize,
        fed: usize,
    ) {
        let pair = matches!(self.preamps, Preamps::Pair(_));
        match channels {
            [a, b] if pair => {
                if fed < 2 {
                    b.section[buffer][..n].fill(0.0);
                }
                self.process_pair(&mut a.section[buffer][..n], &mut b.section[buffer][..n]);
            }
            _ => {
                for (k, ch) in channels.iter_mut().enumerate().take(fed) {
                    self.process_mono(k, &mut ch.section[buffer][..n]);
                }
            }
        }
    }

    /// Run channel `k` in place (host-rate volts in and out).
    fn process_mono(&mut self, k: usize, x: &mut [f64]) {
        let (Some(os), Some(mic)) = (self.oversamplers.get_mut(k), self.mics.get_mut(k)) else {
            return;
        };
        mic.process(x);
        if self.settings.in_xfmr {
            if let Some(t) = self.xfmrs.get_mut(k) {
                t.process_scaled(x, self.xfmr_gains);
            }
        }
        match (self.settings.pre_type, &mut self.preamps) {
            (PreampType::Tube, Preamps::PerChannel(v)) => {
                if let Some(p) = v.get_mut(k) {
                    oversampled(p, os, x);
                }
            }
            (PreampType::SolidState, _) => {
                if let Some(p) = self.solids.get_mut(k) {
                    oversampled(p, os, x);
                }
            }
            // (A tube section of one channel is never a pair.)
            (PreampType::Tube, Preamps::Pair(_)) => {}
        }
    }

    /// Run a stereo pair in place: the tubes in the lanes of one preamp,
    /// the oversamplers in one loop, the solid-state pre's stages in the
    /// lanes of one loop (its ends, a few operations per sample, channel
    /// by channel).
    fn process_pair(&mut self, left: &mut [f64], right: &mut [f64]) {
        let ([a, b], [ma, mb]) = (&mut self.oversamplers[..], &mut self.mics[..]) else {
            return;
        };
        MicSource::process_pair(ma, mb, left, right);
        if let (true, [ta, tb]) = (self.settings.in_xfmr, &mut self.xfmrs[..]) {
            MicTransformer::process_pair_scaled(ta, tb, left, right, self.xfmr_gains);
        }
        match (
            self.settings.pre_type,
            &mut self.preamps,
            &mut self.solids[..],
        ) {
            (PreampType::Tube, Preamps::Pair(p), _) => {
                p.process_stereo_part(PreampPart::Front, left, right);
                Oversampler::upsample_pair(a, b, left, right);
                p.process_stereo_part(PreampPart::Stages, a.oversampled(), b.oversampled());
                Oversampler::downsample_pair(a, b, left, right);
                p.process_stereo_part(PreampPart::Back, left, right);
            }
            (PreampType::SolidState, _, [pa, pb]) => {
                SolidPreamp::process_pair_part(pa, pb, PreampPart::Front, left, right);
                Oversampler::upsample_pair(a, b, left, right);
                let (oa, ob) = (a.oversampled(), b.oversampled());
                SolidPreamp::process_pair_part(pa, pb, PreampPart::Stages, oa, ob);
                Oversampler::downsample_pair(a, b, left, right);
                SolidPreamp::process_pair_part(pa, pb, PreampPart::Back, left, right);
            }
            // (Two channels always have a pair preamp and two solids.)
            _ => {}
        }
    }
}

/// What the oversampled part of a section runs: a preamp cut into its
/// host-rate ends and its oversampled stages (the tube preamp and the
/// solid-state one, each a channel).
trait PartedPreamp {
    fn part(&mut self, part: PreampPart, x: &mut [f64]);
}

impl PartedPreamp for Preamp {
    fn part(&mut self, part: PreampPart, x: &mut [f64]) {
        self.process_part(part, x);
    }
}

impl PartedPreamp for SolidPreamp {
    fn part(&mut self, part: PreampPart, x: &mut [f64]) {
        self.process_part(part, x);
    }
}

/// One channel through preamp `p` around oversampler `os`, in place: the
/// input end at the host rate, the stages oversampled, the output end.
#[inline]
fn oversampled(p: &mut impl PartedPreamp, os: &mut Oversampler, x: &mut [f64]) {
    p.part(PreampPart::Front, x);
    os.upsample(x);
    p.part(PreampPart::Stages, os.oversampled());
    os.downsample(x);
    p.part(PreampPart::Back, x);
}
