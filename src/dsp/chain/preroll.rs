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
use super::handover::handover_ratio;
use super::morph::MorphStep;
use super::section::Preamps;
use super::{Chain, MAX_BLOCK};

/// How much recent input a section that comes in runs over first, in
/// seconds: seven time constants of the grid's coupling capacitor (47 nF
/// into about 1 MΩ, 48 ms). A stage driven hard into grid current blocks
/// for longer than that time constant suggests: 0.2 s left a +24 dB trim
/// step at Gain 50 2 dB louder than the settled stage 50 ms later; 0.35 s
/// settles it (`tests/motion.rs`). Costs about 1 ms of CPU per change.
pub const PRE_ROLL_S: f64 = 0.35;

/// Write `values` into `ring` from position `pos` on, wrapping at its end
/// (two straight runs, no test per sample).
#[inline]
pub(super) fn ring_write(ring: &mut [f64], pos: usize, mut values: impl Iterator<Item = f64>) {
    let (head, tail) = ring.split_at_mut(pos);
    for (r, v) in tail.iter_mut().chain(head.iter_mut()).zip(&mut values) {
        *r = v;
    }
}

/// The chain's clock (samples since reset) and its rate.
pub(super) type Mains = (u64, f64);

impl ChannelState {
    /// Bring DI instance `i` from rest to where its settings would have
    /// it after the last [`PRE_ROLL_S`] of input (`pos`: the rings' next
    /// write position, their oldest sample). Never allocates.
    /// With `rewrite`, the section-input ring `history` is rewritten from
    /// its output times `rewrite` (the new DI's output at unit drive).
    /// `gain`: the input gain (track → volts) the DI runs at; `mains`: the
    /// chain's clock, in samples, which the DI's hum follows.
    pub(super) fn pre_roll_di(
        &mut self,
        i: usize,
        pos: usize,
        gain: f64,
        rewrite: Option<f64>,
        mains: Mains,
    ) {
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

impl Chain {
    /// Start the changes that wait (see [`Morph`]) at the start of a chunk.
    pub(super) fn step_morphs(&mut self) {
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
    pub(super) fn pre_roll(&mut self, i: usize, warm: bool, measure: bool) {
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
}
