//! One chunk of at most [`MAX_BLOCK`] host samples, top to bottom, and the
//! per-channel state it works on.

use super::compare::CompareMatch;
use super::handover::handover_ratio;
use super::morph::blend;
use super::plan::ChunkPlan;
use super::preroll::ring_write;
use super::section::Preamps;
use super::{
    AutoGain, Chain, ChainSettings, DelayLine, DiBox, HeadphoneAmp, LoudnessPair, Tap, MAX_BLOCK,
};

/// Per-channel state. Stages that crossfade between an old and a new
/// setting ([`Morph`]) have two instances: index 0 and 1, the morph says
/// which plays.
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
    /// Scratch: the standby DI's output while a DI change fades; the mixed
    /// output at the end of the chunk.
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
    /// Host-rate scratch for a stage being crossfaded.
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
    /// The section's input of the last [`PRE_ROLL_S`] at unit drive, a
    /// ring (`Chain::history_pos` is the next write).
    pub(super) history: Vec<f64>,
    /// The track (the DI's input before the input gain) of the last
    /// [`PRE_ROLL_S`], a ring like `history`.
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
pub(super) fn di_input(out: &mut [f64], wet: &[f64], track: Option<&[f64]>, gain: f64) {
    match track {
        Some(x) => out.iter_mut().zip(x).for_each(|(y, x)| *y = x * gain),
        None => out.copy_from_slice(wet),
    }
}

impl Chain {
    #[inline(always)]
    pub(super) fn process_chunk_any(&mut self, io: &mut [&mut [f32]], start: usize, n: usize) {
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
