//! How a new instance comes in settled: the per-channel rings of recent
//! input, the pre-roll of a DI or a section over them, and the re-seats
//! (when a change starts, what is brought up to date on what).
//!
//! A stage that comes in (a change of its settings, or switched back in)
//! is reset and run over the last [`PRE_ROLL_S`] of input with its new
//! settings, so it starts in the state it would have had the settings been
//! in force: no start-up transient, and none of the old state, which under
//! other settings means something else (the blocking bias of a stage
//! clipped at another gain, a filter of another network). Two rings per
//! channel hold that input: the track (the DI's input) and the section's
//! input at unit drive.

use super::chunk::ChannelState;
use super::morph::MorphStep;
use super::{Chain, DiBox, MAX_BLOCK};

/// How much recent input a section that comes in runs over first, in
/// seconds: seven time constants of the grid's coupling capacitor (47 nF
/// into about 1 MΩ, 48 ms). A stage driven hard into grid current blocks
/// for longer than that time constant suggests: 0.2 s left a +24 dB trim
/// step at Gain 50 2 dB louder than the settled stage 50 ms later; 0.35 s
/// settles it (`tests/motion.rs`). Costs about 1 ms of CPU per change.
pub const PRE_ROLL_S: f64 = 0.35;

/// Write `values` into `ring` from position `pos` on, wrapping at its end
/// (two straight loops, no test per sample: a chained iterator, as this
/// was, tests which half it is in at every sample and does not vectorise;
/// it took 6 % of the solid-state chain's processing in a profile).
#[inline]
pub(super) fn ring_write(ring: &mut [f64], pos: usize, mut values: impl Iterator<Item = f64>) {
    let (head, tail) = ring.split_at_mut(pos);
    for (r, v) in tail.iter_mut().zip(&mut values) {
        *r = v;
    }
    for (r, v) in head.iter_mut().zip(&mut values) {
        *r = v;
    }
}

/// The samples of `ring` from position `from` on, wrapping at its end
/// (oldest first when `from` is the next write position).
#[inline]
pub(super) fn ring_read(ring: &[f64], from: usize) -> impl Iterator<Item = &f64> {
    let (tail, head) = ring.split_at(from);
    head.iter().chain(tail)
}

/// The chain's clock (samples since reset) and its rate.
pub(super) type Mains = (u64, f64);

/// One chunk of a pre-roll: `n` samples from ring position `from`, `done`
/// samples into a pre-roll of `len`.
#[derive(Clone, Copy)]
pub(super) struct PreRollChunk {
    /// The chunk's first ring position.
    pub(super) from: usize,
    /// Its length.
    pub(super) n: usize,
    /// Samples of the pre-roll before it.
    pub(super) done: usize,
    /// The pre-roll's length (the rings').
    pub(super) len: usize,
}

/// Bring DI instance `i` of each of `channels` from rest to where its
/// settings would have it after the last [`PRE_ROLL_S`] of input (`pos`:
/// the rings' next write position, their oldest sample). Never allocates.
/// With `rewrite`, each channel's section-input ring `history` is
/// rewritten from its output times `rewrite` (the new DI's output at unit
/// drive). `gain`: the input gain (track → volts) the DI runs at; `mains`:
/// the chain's clock, in samples, which the DI's hum follows. A stereo
/// pair runs in the lanes of one loop ([`DiBox::process_pair`](super::DiBox::process_pair):
/// each channel bit for bit its own; the pre-roll is the bulk of the CPU
/// a DI switched in costs in its block).
pub(super) fn pre_roll_dis(
    channels: &mut [ChannelState],
    i: usize,
    pos: usize,
    gain: f64,
    rewrite: Option<f64>,
    mains: Mains,
) {
    // (Every channel's rings have one length, which `pos` indexes: the
    // chain allocates them together.)
    let Some(len) = channels.first().map(|ch| ch.di_history.len()) else {
        return;
    };
    let (clock, fs) = mains;
    let start = clock.saturating_sub(len as u64) as f64;
    for ch in channels.iter_mut() {
        let di = &mut ch.di[i];
        di.reset();
        di.set_mains_phase(start * di.settings().mains_hz.hz() / fs);
    }
    let mut done = 0;
    while done < len {
        let n = (len - done).min(MAX_BLOCK);
        let from = (pos + done) % len;
        for ch in channels.iter_mut() {
            let track = ring_read(&ch.di_history, from);
            for (y, v) in ch.scratch[..n].iter_mut().zip(track) {
                *y = v * gain;
            }
        }
        match channels {
            [a, b] => DiBox::process_pair(
                &mut a.di[i],
                &mut b.di[i],
                &mut a.scratch[..n],
                &mut b.scratch[..n],
            ),
            _ => {
                for ch in channels.iter_mut() {
                    ch.di[i].process(&mut ch.scratch[..n]);
                }
            }
        }
        if let Some(unit) = rewrite {
            for ch in channels.iter_mut() {
                for (k, y) in ch.scratch[..n].iter().enumerate() {
                    ch.history[(from + k) % len] = y * unit;
                }
            }
        }
        done += n;
    }
}

impl Chain {
    /// The input gain (track → volts) the ramps head for. (Targets, not
    /// the ramps' values at a chunk's end, which depend on its length.)
    pub(super) fn input_gain_target(&self) -> f64 {
        self.cal.target() * self.source_trim.target()
    }

    /// The chain's clock, which the DI's hum follows.
    pub(super) fn mains(&self) -> Mains {
        (self.clock, self.spec.sample_rate)
    }

    /// At the start of a chunk: end the crossfades that are over, then
    /// start the changes that wait (see [`super::morph::Morph`]): the DI's
    /// (with a re-seat of the section on the new DI), a re-seat of the
    /// section on a DI switched in or out, the section's.
    pub(super) fn start_changes(&mut self) {
        let di_running = self.di.is_running();
        let os_running = self.oversampled.is_running();
        if self.section_morph.is_over() {
            self.hand_over();
        }
        self.section_morph.finish();
        self.di_morph.finish();
        self.joint = self.joint && self.section_morph.fading;
        let reseat = self.start_di_change(di_running, os_running);
        let reseat = self.reseat_on_di_switch(os_running, reseat);
        self.start_section_change(os_running, reseat);
    }

    /// Start a change of the DI's settings, if one waits. With the preamp
    /// running, a DI change crossfades together with a re-seat of the
    /// section on the new DI's output (so the auto-gain hands over what
    /// the DI change does to the loudness: a pad, the hum of a lifted
    /// ground), and so waits while the section fades. So does a change of
    /// the input gain while the DI is fully in: the new DI runs at the new
    /// gain. Returns whether the section must be re-seated.
    fn start_di_change(&mut self, di_running: bool, os_running: bool) -> bool {
        let input_gain = self.input_gain_target();
        let di_in = self.di.is_fully_in();
        let active_di = self.di_morph.active;
        if !(os_running && di_in) {
            self.di_in_gain[active_di] = input_gain;
        }
        let input_moved = self.di_in_gain[active_di] != input_gain;
        match self.di_morph.step(
            di_running,
            os_running && self.section_morph.fading,
            os_running && di_in && input_moved,
        ) {
            MorphStep::Keep => false,
            MorphStep::Apply(i, s) => {
                for ch in &mut self.channels {
                    ch.di[i].set_settings(s);
                }
                self.di_gain[i] = self.di_gain_of(i);
                self.di_in_gain[i] = input_gain;
                false
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
                let reseat = os_running;
                // The section's recent input as the new DI makes it, at unit
                // drive, for the re-seated section's pre-roll.
                let unit = 1.0 / (input_gain * self.di_gain[to]);
                let rewrite = reseat.then_some(unit);
                let (pos, mains) = (self.history_pos, self.mains());
                pre_roll_dis(&mut self.channels, to, pos, input_gain, rewrite, mains);
                reseat
            }
        }
    }

    /// The DI switched in or out under a running section: re-seat it on
    /// the recent input as the new DI state makes it (the DI colours the
    /// spectrum the auto-gain weighs, which no gain can stand for).
    /// `reseat`: a DI change re-seats the section already. Returns whether
    /// the section must be re-seated.
    fn reseat_on_di_switch(&mut self, os_running: bool, reseat: bool) -> bool {
        let di_on = self.settings.di_on;
        if !os_running || reseat {
            self.di_seated = di_on;
            return reseat;
        }
        if di_on == self.di_seated || self.section_morph.fading {
            return false;
        }
        self.di_seated = di_on;
        if di_on {
            let input_gain = self.input_gain_target();
            let a = self.di_morph.active;
            let unit = 1.0 / (input_gain * self.di_gain[a]);
            let (pos, mains) = (self.history_pos, self.mains());
            pre_roll_dis(&mut self.channels, a, pos, input_gain, Some(unit), mains);
        } else {
            for ch in &mut self.channels {
                let (history, track) = (&mut ch.history, &ch.di_history);
                history.copy_from_slice(track);
            }
        }
        true
    }

    /// Start a change of the section's settings, or a re-seat (`reseat`),
    /// if one waits: the standby section takes the settings, is pre-rolled
    /// with the auto-gain's hand-over measured, and the output fades to it
    /// (a quality change moves the wet path's delays to its latency).
    fn start_section_change(&mut self, os_running: bool, reseat: bool) {
        self.section_morph.wanted.drive = self.drive_target();
        let (target, s) = match self.section_morph.step(os_running, false, reseat) {
            MorphStep::Keep => return,
            MorphStep::Apply(i, s) => (i, s),
            MorphStep::Fade { to, settings } => (to, settings),
        };
        self.joint = reseat && self.di_morph.fading;
        for ch in &mut self.channels {
            ch.start_handover();
        }
        let old_latency = self.sections[self.section_morph.active].latency();
        self.sections[target].apply(s, self.spec.sample_rate);
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
    /// their steady state. [`PRE_ROLL_S`] of the section's work, about
    /// 1 ms of CPU, once per change. Never allocates.
    ///
    /// With `warm`, the auto-gain (just reset) learns the loudness of the
    /// section's compensated output against the track over the same
    /// samples (`ChannelState::warm_auto_gain`). With `measure`, the
    /// auto-gain's hand-over to this section is measured
    /// (`ChannelState::weigh_handover`).
    pub(super) fn pre_roll(&mut self, i: usize, warm: bool, measure: bool) {
        let section = &mut self.sections[i];
        section.reset();
        let drive = section.settings.drive;
        let signed = drive * section.settings.polarity;
        let cal = self.cal.target();
        let comp = cal / (drive * section.gain).max(1e-300);
        let len = self.channels.first().map_or(0, |ch| ch.history.len());
        let all = self.channels.len();
        let mut done = 0;
        while done < len {
            let n = (len - done).min(MAX_BLOCK);
            // Oldest first: the ring's next write position is its oldest.
            let from = (self.history_pos + done) % len;
            for ch in &mut self.channels {
                let ring = ring_read(&ch.history, from);
                for (y, v) in ch.section[i][..n].iter_mut().zip(ring) {
                    *y = v * signed;
                }
            }
            self.sections[i].run_channels(&mut self.channels, i, n, all);
            let at = PreRollChunk { from, n, done, len };
            for ch in &mut self.channels {
                if measure {
                    ch.weigh_handover(i, at, cal, comp);
                }
                if warm {
                    ch.warm_auto_gain(i, at, cal, comp);
                }
            }
            done += n;
        }
    }
}
