//! The auto-gain's hand-over from one section to the next (see "The
//! auto-gain in motion" in the module header): what the static
//! compensation cannot know (how much the tubes compress at this drive,
//! what the DI does to the spectrum the loudness is weighed in) is the slow
//! loudness correction's, and a change of section hands it over. The new
//! section's pre-roll is weighed against the track, K-weighted like the
//! auto-gain, and the new section comes in, and stays, at the correction
//! that matches it to the track. Measured against the track rather than
//! against the old section, the hand-overs of many changes cannot add up
//! (comparing old with new added up to +70 dB in a random automation run).
//!
//! A restarting auto-gain (the preamp or Auto Gain switched in) learns the
//! last [`PRE_ROLL_S`](super::PRE_ROLL_S) first, so it starts at its steady correction.

use super::chunk::ChannelState;
use super::preroll::{ring_read, PreRollChunk};
use super::Chain;

/// The auto-gain's hand-over to a new section: the factor on its
/// correction, `√(track / new)` from the K-weighted energies of the track
/// (in the present correction's units) and of the new section's output on
/// the same samples (1 while either is silent; within ±60 dB: a source
/// change moves the drive by up to 54 dB, and at the top of that range the
/// correction makes up for 40 dB of clipping).
pub(super) fn handover_ratio([old, new]: [f64; 2]) -> f64 {
    if old > 1e-30 && new > 1e-30 {
        (old / new).sqrt().clamp(1e-3, 1e3)
    } else {
        1.0
    }
}

impl ChannelState {
    /// A change of section starts: forget the last measurement.
    pub(super) fn start_handover(&mut self) {
        self.handover = [0.0; 2];
        self.handover_meter.reset();
    }

    /// Weigh one chunk `at` of section instance `i`'s pre-roll for the
    /// hand-over: the K-weighted energies of the track and of the
    /// section's output, compensated (`comp`) and at the present
    /// correction, over the same samples (the last three quarters of the
    /// pre-roll, the K-weighting having settled), so the new section comes
    /// in with the correction that matches it to the track, as the
    /// auto-gain's own estimate would in its steady state. `cal`: the
    /// calibration (dBFS → volts) the track is weighed in.
    pub(super) fn weigh_handover(&mut self, i: usize, at: PreRollChunk, cal: f64, comp: f64) {
        // The track against this section's output at the present
        // correction, which the hand-over scales.
        let unit = cal / self.auto_gain.gain().max(1e-300);
        let track = ring_read(&self.di_history, at.from);
        let [mut sa, mut sb] = self.handover;
        for (k, (x, y)) in track.zip(&self.section[i][..at.n]).enumerate() {
            let (ka, kb) = self.handover_meter.weigh_finite(x * unit, y * comp);
            if 4 * (at.done + k) >= at.len {
                sa += ka * ka;
                sb += kb * kb;
            }
        }
        self.handover = [sa, sb];
    }

    /// Run the auto-gain (just reset) over one chunk `at` of section
    /// instance `i`'s pre-roll: its output compensated (`comp`) against
    /// the track in volts (`cal`), so it learns the loudness of the recent
    /// input before it acts.
    pub(super) fn warm_auto_gain(&mut self, i: usize, at: PreRollChunk, cal: f64, comp: f64) {
        let n = at.n;
        let track = ring_read(&self.di_history, at.from);
        for (r, x) in self.reference[..n].iter_mut().zip(track) {
            *r = x * cal;
        }
        for (p, y) in self.compensated[..n].iter_mut().zip(&self.section[i][..n]) {
            *p = y * comp;
        }
        self.auto_gain
            .process(&self.reference[..n], &mut self.compensated[..n]);
    }
}

impl Chain {
    /// A section fade is over: the auto-gain's correction moves to the new
    /// section by the loudness ratio the two had on the same samples.
    pub(super) fn hand_over(&mut self) {
        for ch in &mut self.channels {
            ch.auto_gain.hand_over(handover_ratio(ch.handover));
            ch.handover = [0.0; 2];
        }
    }
}
