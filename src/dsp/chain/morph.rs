//! The crossfades: every switch and every retuning moves by the same
//! mechanism, a 0 … 1 amount ramped over 20 ms, shaped as a smoothstep
//! ([`fill_fade`]), by which the chain crossfades two signals per sample.
//!
//! - A [`Switch`] crossfades a stage's input (or the pure delay standing in
//!   for it) with its output: a stage in or out.
//! - A [`Morph`] crossfades the outputs of a stage's two instances: a
//!   change of settings that retunes the stage goes to the standby
//!   instance, which comes in settled (see `preroll.rs`), and the output
//!   fades from the old processing to the new.

use super::plan::Curve;
use super::LinearSmoother;

/// An in/out switch with a crossfade: a 0 … 1 amount ramped per sample,
/// and the knowledge of whether what it switches was fully out (and so must
/// be reset before it runs again, to start from its settled state).
pub(super) struct Switch {
    /// 0 = out, 1 = in, ramping between.
    pub(super) amount: LinearSmoother,
    /// What it switches was fully out.
    pub(super) stale: bool,
}

/// What a switch asks of one chunk.
#[derive(Clone, Copy)]
pub(super) struct SwitchPlan {
    /// The switched thing must run (it is in, or fading).
    pub(super) run: bool,
    /// …after a reset, because it was fully out.
    pub(super) reset: bool,
    /// The amount is constant over the chunk (so fully in when `run`).
    pub(super) settled: bool,
}

impl Switch {
    pub(super) fn new(on: bool) -> Self {
        Self {
            amount: LinearSmoother::new(f64::from(u8::from(on))),
            stale: !on,
        }
    }

    pub(super) fn set(&mut self, on: bool) {
        self.amount.set_target(f64::from(u8::from(on)));
    }

    pub(super) fn jump(&mut self, on: bool) {
        self.amount.reset(f64::from(u8::from(on)));
        self.stale = !on;
    }

    /// Fill a chunk's [`Curve`] of `n` samples with the amounts and say
    /// what must happen.
    pub(super) fn plan_curve(&mut self, curve: &mut Curve, n: usize) -> SwitchPlan {
        let settled = self.amount.is_settled();
        fill_fade(curve, &mut self.amount, n);
        self.plan_settled(settled)
    }

    /// What must happen, the amounts having been produced.
    pub(super) fn plan_settled(&mut self, settled: bool) -> SwitchPlan {
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
pub(super) fn fill_fade(curve: &mut Curve, ramp: &mut LinearSmoother, n: usize) {
    let settled = ramp.is_settled();
    curve.fill(ramp, n);
    if !settled {
        for v in &mut curve.values[..n] {
            *v = *v * *v * (3.0 - 2.0 * *v);
        }
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
pub(super) struct Morph<T> {
    /// 0 → 1 from the playing instance to the standby while a change fades.
    pub(super) amount: LinearSmoother,
    /// The playing instance (0 or 1).
    pub(super) active: usize,
    /// A change is fading in on the standby instance.
    pub(super) fading: bool,
    /// Settings of the instance that plays once the running fade (if any)
    /// ends.
    pub(super) current: T,
    /// The settings asked for last.
    pub(super) wanted: T,
}

/// What a [`Morph`] asks of the chain at the start of a chunk.
pub(super) enum MorphStep<T> {
    /// Nothing.
    Keep,
    /// Give instance `.0` the settings at once (the stage is not running).
    Apply(usize, T),
    /// Give instance `.to` the settings, bring it up to date, and fade to
    /// it.
    Fade { to: usize, settings: T },
}

impl<T: Copy + PartialEq> Morph<T> {
    pub(super) fn new(s: T) -> Self {
        Self {
            amount: LinearSmoother::new(0.0),
            active: 0,
            fading: false,
            current: s,
            wanted: s,
        }
    }

    /// The standby instance.
    pub(super) fn standby(&self) -> usize {
        1 - self.active
    }

    /// The instance that plays once the running fade (if any) ends.
    pub(super) fn wanted_instance(&self) -> usize {
        if self.fading {
            self.standby()
        } else {
            self.active
        }
    }

    /// Host samples until the running fade ends (a chunk must end there,
    /// so the next change starts at the same sample whatever the blocks).
    pub(super) fn remaining(&self) -> usize {
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
    pub(super) fn step(&mut self, running: bool, hold: bool, force: bool) -> MorphStep<T> {
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
    pub(super) fn finish(&mut self) {
        if self.fading && self.amount.is_settled() {
            self.active = self.standby();
            self.fading = false;
            self.amount.reset(0.0);
        }
    }

    /// Forget any fade: both instances take the wanted settings (the
    /// caller's part).
    pub(super) fn settle(&mut self) {
        self.fading = false;
        self.amount.reset(0.0);
        self.current = self.wanted;
    }
}

/// Crossfade `out` (a stage's input) towards `processed` (its output) by
/// `amount` per sample; when the switch has settled (fully in), take the
/// output exactly.
#[inline]
pub(super) fn blend(out: &mut [f64], processed: &[f64], amount: &[f64], settled: bool) {
    if settled {
        out.copy_from_slice(processed);
    } else {
        for ((w, y), k) in out.iter_mut().zip(processed).zip(amount) {
            *w += k * (y - *w);
        }
    }
}
