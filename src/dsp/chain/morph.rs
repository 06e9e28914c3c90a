//! The crossfades. Every switch and every retuning moves by one mechanism:
//! a 0 … 1 amount, ramped over 20 ms and shaped as a smoothstep
//! ([`fill_fade`]), by which [`crossfade`] takes one signal to another per
//! sample. In a chunk a crossfade stands at its start, at its end, or
//! under way ([`Fade`]); at either end only one of the two signals is
//! needed, and at the start the one faded to need not even be made.
//!
//! - A [`Switch`] crossfades a stage's input (or the pure delay standing in
//!   for it) with its output: a stage in or out.
//! - A [`Morph`] crossfades the outputs of a stage's two instances: a
//!   change that retunes the stage goes to the standby instance, which
//!   comes in settled (see `preroll.rs`), and the output fades from the old
//!   processing to the new.

use super::plan::Curve;
use super::LinearSmoother;

/// Where a crossfade stands in one chunk.
#[derive(Clone, Copy)]
pub(super) enum Fade<'a> {
    /// At its start: the signal faded from plays alone, and the one faded
    /// to need not be made.
    From,
    /// At its end: the signal faded to plays alone.
    To,
    /// Under way: the amounts (0 … 1) of the signal faded to, per sample.
    Moving(&'a [f64]),
}

impl<'a> Fade<'a> {
    /// A [`Morph`]'s crossfade from the playing instance to the standby
    /// one: under way while `fading` (`amounts`: its curve), else at its
    /// start. It never ends inside a chunk: the chunks are cut where it
    /// does, and the instance faded to becomes the playing one.
    pub(super) fn of_morph(fading: bool, amounts: &'a [f64]) -> Self {
        if fading {
            Fade::Moving(amounts)
        } else {
            Fade::From
        }
    }

    /// The signal faded to is heard in this chunk (so it must be made).
    pub(super) fn runs(self) -> bool {
        !matches!(self, Fade::From)
    }
}

/// Take `out` (the signal faded from) towards `to` by `fade`, in place:
/// `out + k·(to − out)` per sample while under way; at the start `out`
/// stays, at the end it is `to` exactly.
#[inline(always)]
pub(super) fn crossfade(out: &mut [f64], to: &[f64], fade: Fade) {
    match fade {
        Fade::From => {}
        Fade::To => out.copy_from_slice(to),
        Fade::Moving(amount) => {
            for ((w, y), k) in out.iter_mut().zip(to).zip(amount) {
                *w += k * (y - *w);
            }
        }
    }
}

/// An in/out switch with a crossfade: a 0 … 1 amount ramped per sample,
/// and the knowledge of whether what it switches was fully out (and so must
/// be brought back to its settled state, reset or pre-rolled, before it
/// runs again).
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

impl SwitchPlan {
    /// Where the switch's crossfade, from the stage's input to its output,
    /// stands in the chunk (`amounts`: its curve).
    pub(super) fn fade(self, amounts: &[f64]) -> Fade<'_> {
        match (self.run, self.settled) {
            (false, _) => Fade::From,
            (true, true) => Fade::To,
            (true, false) => Fade::Moving(amounts),
        }
    }
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

    /// The switched stage runs: it is in, or fading in or out.
    pub(super) fn is_running(&self) -> bool {
        !(self.amount.is_settled() && self.amount.target() == 0.0)
    }

    /// The switched stage is fully in.
    pub(super) fn is_fully_in(&self) -> bool {
        self.amount.is_settled() && self.amount.target() == 1.0
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

    /// The playing instance and the standby one, in that order.
    pub(super) fn instances(&self) -> [usize; 2] {
        [self.active, self.standby()]
    }

    /// The instances that run while the stage does (`on`): the playing
    /// one, and while a change fades in, the one it fades to.
    pub(super) fn running(&self, on: bool) -> &'static [usize] {
        const ORDER: [[usize; 2]; 2] = [[0, 1], [1, 0]];
        let count = match (on, self.fading) {
            (false, _) => 0,
            (true, false) => 1,
            (true, true) => 2,
        };
        &ORDER[self.active][..count]
    }

    /// The running fade is complete (it ends at the next step).
    pub(super) fn is_over(&self) -> bool {
        self.fading && self.amount.is_settled()
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
        if self.is_over() {
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
