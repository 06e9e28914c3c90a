//! One chunk of at most [`MAX_BLOCK`] host samples, top to bottom, and the
//! per-channel state it works on.
//!
//! Every switch and every change of settings is a crossfade ([`Fade`],
//! `morph.rs`), so one chunk does the same things whatever is moving:
//!
//! 1. What comes back in is brought up to date on the recent input.
//! 2. Per channel, at the host rate up to the section: the track, the DI
//!    (each running instance, then the crossfades), the pad, each running
//!    section instance's input, and the stand-in delay.
//! 3. Each running section instance, every channel through it.
//! 4. Per channel, the section's output: its instances crossfaded,
//!    compensated; then the auto-gain and its switch, the preamp's output
//!    level and its switch, the headphone amp, the output conversion and
//!    the mix; then the compare and the bypass, to the host.
//!
//! A crossfade at its start costs nothing, and a stage fully in with one
//! instance runs in place: a settled chunk does only the work its stages
//! need. What differs between a stereo pair (whose channels run together
//! in SIMD lanes) and other layouts is in `Section::run_channels`,
//! [`run_auto_gain`] and [`measure_compare`].

use super::compare::CompareMatch;
use super::handover::handover_ratio;
use super::morph::{crossfade, Fade};
use super::plan::{ChunkPlan, Fades, GainCurves};
use super::preroll::{pre_roll_dis, ring_write};
use super::{
    AutoGain, Chain, ChainSettings, DelayLine, DiBox, HeadphoneAmp, LoudnessPair, Tap, TapSums,
    MAX_BLOCK,
};
use crate::dsp::fma::MulAdd;

/// Per-channel state. Stages that crossfade between an old and a new
/// setting ([`super::morph::Morph`]) have two instances: index 0 and 1, the
/// morph says which plays.
pub(super) struct ChannelState {
    /// The wet signal of the current chunk, in volts.
    pub(super) wet: [f64; MAX_BLOCK],
    /// The dry signal of the current chunk, in dBFS, delayed to match `wet`.
    pub(super) dry: [f64; MAX_BLOCK],
    /// The track of the current chunk (sanitized, not delayed).
    pub(super) dry_in: [f64; MAX_BLOCK],
    /// The oversampled section's input and then output, per instance.
    pub(super) section: [[f64; MAX_BLOCK]; 2],
    /// Stands in for the oversampled section's latency while it is out, so
    /// the latency never depends on which stages are switched in.
    pub(super) wet_delay: DelayLine,
    /// Aligns the dry signal with the wet path's latency.
    pub(super) dry_delay: DelayLine,
    /// The DI instance faded to while a DI change fades; the mixed output
    /// at the end of the chunk.
    pub(super) alt: [f64; MAX_BLOCK],
    /// The track in output volts: the auto-gain's loudness reference.
    pub(super) reference: [f64; MAX_BLOCK],
    /// Delays the reference by the oversampled section's latency, so the
    /// auto-gain compares the track with what the section made of the same
    /// samples (a misaligned start would read the section as silent).
    pub(super) reference_delay: DelayLine,
    /// The section's output statically compensated (the auto-gain's input
    /// and output).
    pub(super) compensated: [f64; MAX_BLOCK],
    /// Matches the preamp's output loudness to its input (its slow
    /// correction; the static compensation is the chain's).
    pub(super) auto_gain: AutoGain,
    /// The passive DI box (host rate), two instances.
    pub(super) di: [DiBox; 2],
    /// Host-rate scratch: the playing DI instance's output while the DI
    /// fades; the section's output before the auto-gain; the headphone
    /// amp's output while it fades; the compare's gains, then the dry
    /// signal at them.
    pub(super) scratch: [f64; MAX_BLOCK],
    /// The headphone amp driving its load (host rate).
    pub(super) headphone: HeadphoneAmp,
    /// Stands in for the headphone amp's latency while it is out.
    pub(super) headphone_bypass: DelayLine,
    /// Loudness of the dry signal and of the output, for the compare.
    pub(super) compare: CompareMatch,
    /// K-weighted energies of the track and of the new section's
    /// compensated output over its pre-roll (the auto-gain's hand-over),
    /// weighed like the auto-gain weighs loudness.
    pub(super) handover: [f64; 2],
    /// The K-weighting of those two signals (only its filters are used).
    pub(super) handover_meter: LoudnessPair,
    /// The section's input of the last [`PRE_ROLL_S`](super::PRE_ROLL_S) at unit drive, a
    /// ring (`Chain::history_pos` is the next write; see `preroll.rs`).
    pub(super) history: Vec<f64>,
    /// The track (the DI's input before the input gain) of the last
    /// [`PRE_ROLL_S`](super::PRE_ROLL_S), a ring like `history`.
    pub(super) di_history: Vec<f64>,
}

impl ChannelState {
    pub(super) fn new() -> Self {
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

    pub(super) fn reset(&mut self, s: &ChainSettings) {
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

/// A DI instance's input: the ramped chain input `wet`, or in a re-seat
/// the `track` at the instance's own input gain.
#[inline]
fn di_input(out: &mut [f64], wet: &[f64], track: Option<&[f64]>, gain: f64) {
    match track {
        Some(x) => out.iter_mut().zip(x).for_each(|(y, x)| *y = x * gain),
        None => out.copy_from_slice(wet),
    }
}

/// Fold a channel's chunk `x` into the level tap `tap`, when metering.
#[inline(always)]
fn tap(taps: &mut Option<&mut TapSums>, tap: Tap, x: &[f64]) {
    if let Some(sums) = taps {
        sums.add(tap, x);
    }
}

/// The two channels of a stereo chain when the host feeds both (`fed`):
/// their loudness measurements run together, in the lanes of one loop
/// (bit-identical to each on its own). Any other layout runs each fed
/// channel on its own.
#[inline(always)]
fn fed_pair(channels: &mut [ChannelState], fed: usize) -> Option<[&mut ChannelState; 2]> {
    match channels {
        [a, b] if fed == 2 => Some([a, b]),
        _ => None,
    }
}

/// The DI of each fed channel ([`ChannelState::run_di`]). A stereo pair
/// with the DI fully in, one instance running, runs in the lanes of one
/// loop ([`DiBox::process_pair`]: each channel bit for bit its own; the
/// two channels' core steps overlap).
#[inline(always)]
fn run_dis(channels: &mut [ChannelState], x: &Chunk) {
    if let ((Fade::To, Fade::From), [a, b]) = ((x.fade.di, x.fade.di_morph), &mut *channels) {
        let (d, n) = (x.di[0], x.n);
        DiBox::process_pair(&mut a.di[d], &mut b.di[d], &mut a.wet[..n], &mut b.wet[..n]);
        return;
    }
    for ch in channels {
        ch.run_di(x);
    }
}

/// The auto-gain of every fed channel, on its section's compensated
/// output (a stereo pair in one loop: their K-weighting recursions
/// overlap).
#[inline(always)]
fn run_auto_gain<M: MulAdd>(channels: &mut [ChannelState], n: usize, fed: usize) {
    if let Some([a, b]) = fed_pair(channels, fed) {
        AutoGain::process_pair::<M>(
            &mut a.auto_gain,
            &mut b.auto_gain,
            (&a.reference[..n], &mut a.compensated[..n]),
            (&b.reference[..n], &mut b.compensated[..n]),
        );
    } else {
        for ch in channels.iter_mut().take(fed) {
            ch.auto_gain
                .process(&ch.reference[..n], &mut ch.compensated[..n]);
        }
    }
}

/// The compare's loudness measurement of every fed channel: its dry
/// signal against its mixed output (in `alt`), and while compare is `on`
/// (or fading), the dry signal's matching gains (into `scratch`).
#[inline(always)]
fn measure_compare<M: MulAdd>(channels: &mut [ChannelState], n: usize, fed: usize, on: bool) {
    if let Some([a, b]) = fed_pair(channels, fed) {
        let sides = (
            (&a.dry[..n], &a.alt[..n], &mut a.scratch[..n]),
            (&b.dry[..n], &b.alt[..n], &mut b.scratch[..n]),
        );
        let (ca, cb) = (&mut a.compare, &mut b.compare);
        CompareMatch::process_pair_as::<M>(on, ca, cb, sides.0, sides.1);
    } else {
        for ch in channels.iter_mut().take(fed) {
            let (dry, mixed) = (&ch.dry[..n], &ch.alt[..n]);
            ch.compare.process_as(on, dry, mixed, &mut ch.scratch[..n]);
        }
    }
}

/// What every channel reads in one chunk.
struct Chunk<'a> {
    /// Samples in the chunk.
    n: usize,
    /// Its per-sample gains.
    c: &'a GainCurves,
    /// Where each of its crossfades stands.
    fade: Fades<'a>,
    /// The DI instances that run while the DI does: the playing one, and
    /// the one faded to.
    di: &'static [usize],
    /// The input gain (track → volts) each DI instance runs at in a
    /// re-seat.
    di_in_gain: [f64; 2],
    /// The section instances: the playing one and the standby one.
    section: [usize; 2],
    /// The section instances that run: none while the section is out; the
    /// playing one, and the one faded to.
    sections: &'static [usize],
    /// Each running section takes its own DI instance's output (a re-seat
    /// on a new DI).
    joint: bool,
    /// Where the chunk goes in the rings of recent input.
    history_pos: usize,
}

impl Chain {
    /// Process `n` samples of the host's channels `io` from `start` on (at
    /// most [`MAX_BLOCK`], and not across the end of a crossfade between
    /// two instances; see `Chain::process`).
    #[inline(always)]
    pub(super) fn process_chunk_any<M: MulAdd>(
        &mut self,
        io: &mut [&mut [f32]],
        start: usize,
        n: usize,
    ) {
        let plan = self.plan_chunk(n);
        // The channels the host feeds (fewer than prepared: the rest wait).
        let fed = self.channels.len().min(io.len());
        // 1. What comes back in, up to date.
        self.bring_in(&plan, fed);
        if self.metering {
            self.meter_samples += n as u64;
            self.meter_section_ran |= plan.os.run;
        }
        let x = Chunk {
            n,
            c: &self.curves,
            fade: plan.fades(&self.curves, n),
            di: self.di_morph.running(true),
            di_in_gain: self.di_in_gain,
            section: self.section_morph.instances(),
            sections: self.section_morph.running(plan.os.run),
            joint: plan.joint,
            history_pos: self.history_pos,
        };
        let mut taps = self.metering.then_some(&mut self.taps);

        // 2. Up to the section.
        for (ch, host) in self.channels.iter_mut().zip(io.iter()) {
            ch.front(&host[start..start + n], &x, &mut taps);
        }
        run_dis(&mut self.channels[..fed], &x);
        for ch in self.channels.iter_mut().take(fed) {
            ch.front_after_di(&x, &mut taps);
        }
        // 3. The section: each running instance.
        for &i in x.sections {
            self.sections[i].run_channels(&mut self.channels, i, n, fed);
        }
        // 4. From the section on.
        let channels = &mut self.channels;
        if x.fade.section.runs() {
            for ch in channels.iter_mut().take(fed) {
                ch.section_output(&x);
            }
            if x.fade.auto_gain.runs() {
                run_auto_gain::<M>(channels, n, fed);
            }
        }
        for ch in channels.iter_mut().take(fed) {
            ch.back(&x, &mut taps);
        }
        // The compare's loudness match runs all the time, so switching is
        // instant and already matched.
        measure_compare::<M>(channels, n, fed, x.fade.compare.runs());
        for (ch, host) in self.channels.iter_mut().zip(io.iter_mut()) {
            ch.output(&mut host[start..start + n], &x);
        }

        if let Some(len) = self.channels.first().map(|ch| ch.history.len()) {
            self.history_pos = (self.history_pos + n) % len;
        }
        self.clock += n as u64;
    }

    /// What comes back in starts settled, not from rest: a restarting
    /// auto-gain learns the loudness of the last
    /// [`PRE_ROLL_S`](super::PRE_ROLL_S) first, so it starts at its steady
    /// correction, not at 1 and then a jump; a section or a DI back in
    /// after being out is pre-rolled over it; the headphone amp (linear)
    /// starts from rest.
    #[inline(always)]
    fn bring_in(&mut self, plan: &ChunkPlan, fed: usize) {
        let warm = plan.ag_reset;
        if warm {
            for ch in self.channels.iter_mut() {
                ch.auto_gain.reset();
            }
        }
        let [playing, standby] = self.section_morph.instances();
        if plan.os.run && plan.os.reset {
            self.pre_roll(playing, warm, false);
            if plan.section_fading {
                self.pre_roll(standby, false, false);
            }
        } else if warm && !plan.section_fading {
            // The auto-gain learns over the standby section, so the playing
            // one keeps its state. (The standby holds the settings from
            // before the last change, if there was one.)
            self.pre_roll(standby, true, false);
        }
        if plan.di.run && plan.di.reset {
            let (gain, mains) = (self.input_gain_target(), self.mains());
            let (i, pos) = (self.di_morph.active, self.history_pos);
            pre_roll_dis(&mut self.channels[..fed], i, pos, gain, None, mains);
        }
        if plan.hp.run && plan.hp.reset {
            for ch in self.channels.iter_mut().take(fed) {
                ch.headphone.reset();
            }
        }
    }
}

impl ChannelState {
    /// The host rate up to the DI: the track (and the dry path, the
    /// auto-gain's reference and the ring of recent input it feeds) and
    /// the input conversion, in `wet`.
    #[inline(always)]
    fn front(&mut self, host: &[f32], x: &Chunk, taps: &mut Option<&mut TapSums>) {
        let (n, c) = (x.n, x.c);
        let (wet, dry) = (&mut self.wet[..n], &mut self.dry[..n]);
        for ((w, d), &v) in wet.iter_mut().zip(dry.iter_mut()).zip(host) {
            // Non-finite input would poison every filter state: treat it as silence.
            let v = if v.is_finite() { f64::from(v) } else { 0.0 };
            *d = v;
            *w = v;
        }
        if x.joint {
            self.dry_in[..n].copy_from_slice(dry);
        }
        // The auto-gain's reference: the track itself, in the volts the
        // output conversion maps back to the same dBFS.
        for ((r, w), g) in self.reference[..n].iter_mut().zip(&*wet).zip(&c.cal[..n]) {
            *r = w * g;
        }
        self.reference_delay.process(&mut self.reference[..n]);
        // The track, for a DI that has to catch up.
        ring_write(&mut self.di_history, x.history_pos, dry.iter().copied());
        self.dry_delay.process(dry);
        for (w, g) in wet.iter_mut().zip(&c.input[..n]) {
            *w *= g;
        }
        tap(taps, Tap::Input, wet);
    }

    /// The host rate from the DI's output (`run_dis`) to the oversampled
    /// section: the pad, each running section instance's input, and the
    /// path that stands in for the section: the stand-in delay, after the
    /// polarity switch, in `wet`.
    #[inline(always)]
    fn front_after_di(&mut self, x: &Chunk, taps: &mut Option<&mut TapSums>) {
        let (n, c) = (x.n, x.c);
        let wet = &mut self.wet[..n];
        tap(taps, Tap::DiOut, wet);
        for (w, g) in wet.iter_mut().zip(&c.pad[..n]) {
            *w *= g;
        }
        // The section's recent input at unit drive (polarity aside), for a
        // section that has to catch up (`pre_roll`).
        let unit = wet.iter().zip(&c.inv_front_gain[..n]).map(|(x, f)| x * f);
        ring_write(&mut self.history, x.history_pos, unit);
        // Each running section instance takes its copy of the input, at
        // its own drive (in a re-seat it took its own DI's output above).
        if !x.joint {
            for &i in x.sections {
                let gains = &c.drive_scale[i][..n];
                for ((y, x), g) in self.section[i][..n].iter_mut().zip(&*wet).zip(gains) {
                    *y = x * g;
                }
            }
        }
        // The stand-in path. (The sections have their own polarity: a flip
        // re-seats them, rather than ramping their input through zero.)
        if c.polarity.constant != Some(1f64.to_bits()) {
            for (w, g) in wet.iter_mut().zip(&c.polarity[..n]) {
                *w *= g;
            }
        }
        tap(taps, Tap::PreampIn, wet);
        // The stand-in delay is always fed, so it is ready the moment the
        // section is switched out; its output is not needed while the
        // section is fully in.
        if let Fade::To = x.fade.section {
            self.wet_delay.push(wet);
        } else {
            self.wet_delay.process(wet);
        }
    }

    /// The DI on `wet`. Fully in with one instance, it runs in place.
    /// Otherwise each running instance runs on its own copy of the input,
    /// the two crossfade (a change of DI settings), and the switch
    /// crossfades from the DI's input to that.
    #[inline(always)]
    fn run_di(&mut self, x: &Chunk) {
        let (n, c) = (x.n, x.c);
        let wet = &mut self.wet[..n];
        match (x.fade.di, x.fade.di_morph) {
            (Fade::From, _) => {}
            (Fade::To, Fade::From) => self.di[x.di[0]].process(wet),
            (switch, morph) => {
                // In a re-seat each DI runs at its own input gain (the
                // input's ramp is for the stand-in path): a DI driven into
                // its core's saturation is not a gain the section could
                // take back.
                let track = x.joint.then_some(&self.dry_in[..n]);
                let [out, new] = [&mut self.scratch[..n], &mut self.alt[..n]];
                for (y, &d) in [&mut *out, &mut *new].into_iter().zip(x.di) {
                    di_input(y, wet, track, x.di_in_gain[d]);
                    self.di[d].process(y);
                }
                if x.joint {
                    // Each section instance on its own DI instance's
                    // output, through the pad.
                    for (&i, y) in x.sections.iter().zip([&*out, &*new]) {
                        let gains = c.pad.iter().zip(&c.drive_scale[i]);
                        let section = &mut self.section[i][..n];
                        for (s, (v, (g, d))) in section.iter_mut().zip(y.iter().zip(gains)) {
                            *s = v * g * d;
                        }
                    }
                }
                crossfade(out, new, morph);
                crossfade(wet, out, switch);
            }
        }
    }

    /// The section's output, its running instances crossfaded (a change of
    /// its settings): as it is in `scratch` (unless the auto-gain fully
    /// acts), and statically compensated in `compensated`, the auto-gain's
    /// input (while it runs).
    #[inline(always)]
    fn section_output(&mut self, x: &Chunk) {
        let (n, c) = (x.n, x.c);
        let [a, b] = x.section;
        let (ya, yb) = match &mut self.section {
            [s0, s1] if a == 0 => (&s0[..n], &mut s1[..n]),
            [s0, s1] => (&s1[..n], &mut s0[..n]),
        };
        if !matches!(x.fade.auto_gain, Fade::To) {
            let u = &mut self.scratch[..n];
            u.copy_from_slice(ya);
            crossfade(u, yb, x.fade.section_morph);
        }
        if x.fade.auto_gain.runs() {
            let y = &mut self.compensated[..n];
            for ((v, s), k) in y.iter_mut().zip(ya).zip(&c.compensation[a][..n]) {
                *v = s * k;
            }
            if x.fade.section_morph.runs() {
                // The new section comes in with the correction that
                // matches it to the track (measured over its pre-roll,
                // `handover.rs`), handed over when the fade ends.
                let h = handover_ratio(self.handover);
                for (s, k) in yb.iter_mut().zip(&c.compensation[b][..n]) {
                    *s = h * *s * k;
                }
                crossfade(y, yb, x.fade.section_morph);
            }
        }
    }

    /// The host rate from the section on: the auto-gain's switch, the
    /// preamp's output level, the preamp's switch (from the stand-in in
    /// `wet` to the section), the headphone amp and its switch, the output
    /// conversion and the mix (into `alt`).
    #[inline(always)]
    fn back(&mut self, x: &Chunk, taps: &mut Option<&mut TapSums>) {
        let (n, c) = (x.n, x.c);
        let wet = &mut self.wet[..n];
        if x.fade.section.runs() {
            // The switch's amount is how much the auto-gain acts.
            let out = match x.fade.auto_gain {
                Fade::To => &mut self.compensated[..n],
                fade => {
                    let u = &mut self.scratch[..n];
                    crossfade(u, &self.compensated[..n], fade);
                    u
                }
            };
            for (v, g) in out.iter_mut().zip(&c.preamp_output[..n]) {
                *v *= g;
            }
            crossfade(wet, out, x.fade.section);
        }
        tap(taps, Tap::PreampOut, wet);

        // The headphone amp; its stand-in delay is always fed, so it is
        // ready the moment the amp is switched out.
        match x.fade.headphone {
            Fade::From => {
                // Out: the headphone sees what the preamp gives.
                tap(taps, Tap::Headphone, wet);
                self.headphone_bypass.process(wet);
            }
            Fade::To => {
                self.headphone_bypass.push(wet);
                self.headphone.process(wet);
            }
            fade @ Fade::Moving(_) => {
                let amp = &mut self.scratch[..n];
                amp.copy_from_slice(wet);
                self.headphone.process(amp);
                self.headphone_bypass.process(wet);
                crossfade(wet, amp, fade);
            }
        }
        if x.fade.headphone.runs() {
            tap(taps, Tap::Headphone, wet);
        }
        tap(taps, Tap::Output, wet);

        let (mixed, dry) = (&mut self.alt[..n], &self.dry[..n]);
        for i in 0..n {
            let processed = wet[i] * c.output[i];
            mixed[i] = processed * c.mix[i] + dry[i] * (1.0 - c.mix[i]);
        }
    }

    /// To the host: the compare's crossfade to the dry signal at the
    /// output's loudness (its gains in `scratch`), then the bypass to the
    /// dry signal (a mix, like `mix`: fully bypassed is the dry signal
    /// exactly).
    #[inline(always)]
    fn output(&mut self, host: &mut [f32], x: &Chunk) {
        let (n, c) = (x.n, x.c);
        let (mixed, dry) = (&mut self.alt[..n], &self.dry[..n]);
        if x.fade.compare.runs() {
            let matched = &mut self.scratch[..n];
            for (g, d) in matched.iter_mut().zip(dry) {
                *g *= d;
            }
            crossfade(mixed, matched, x.fade.compare);
        }
        for i in 0..n {
            let out = mixed[i] * (1.0 - c.bypass[i]) + dry[i] * c.bypass[i];
            host[i] = out as f32;
        }
    }
}
