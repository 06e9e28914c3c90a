//! One chunk's plan: the per-sample gain curves every channel shares, and
//! what each switch and crossfade asks of the chunk.
//!
//! A settled value fills its curve once and is reused while it stays
//! settled; a settled chunk reuses its front gains, drive scales and
//! compensations the same way (bit for bit the per-sample values, so the
//! output does not depend on which chunks are settled).

use super::morph::{fill_fade, Fade, SwitchPlan};
use super::{Chain, Ramp, MAX_BLOCK};

/// One chunk's per-sample values of a smoothed quantity. A settled value
/// fills the whole curve once and is then reused while it stays settled
/// (most chunks write nothing).
pub(super) struct Curve {
    /// The values; the first `n` of a chunk of `n` samples are valid.
    pub(super) values: [f64; MAX_BLOCK],
    /// Bits of the value the whole curve holds, if it is constant.
    pub(super) constant: Option<u64>,
}

impl Curve {
    pub(super) fn new() -> Self {
        Self {
            values: [0.0; MAX_BLOCK],
            constant: None,
        }
    }

    /// Hold `v` over the whole curve.
    #[inline]
    pub(super) fn hold(&mut self, v: f64) {
        if self.constant != Some(v.to_bits()) {
            self.values.fill(v);
            self.constant = Some(v.to_bits());
        }
    }

    /// Fill the first `n` values from `ramp` (at most `MAX_BLOCK`).
    #[inline]
    pub(super) fn fill(&mut self, ramp: &mut impl Ramp, n: usize) {
        if ramp.is_settled() {
            self.hold(ramp.value());
        } else {
            ramp.fill(&mut self.values[..n]);
            self.constant = None;
        }
    }

    /// The first `n` values of `a` times those of `b`.
    #[inline]
    pub(super) fn product(&mut self, a: &Curve, b: &Curve, n: usize) {
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
pub(super) struct GainCurves {
    /// The calibration's dBFS → volts.
    pub(super) cal: Curve,
    /// Source level and input trim.
    pub(super) source_trim: Curve,
    /// `cal × source_trim`: the input conversion.
    pub(super) input: Curve,
    /// The calibration's volts → dBFS.
    pub(super) uncal: Curve,
    /// Output trim.
    pub(super) out_trim: Curve,
    /// `uncal × out_trim`: the output conversion.
    pub(super) output: Curve,
    /// The preamp's pad (−20 dB or 1).
    pub(super) pad: Curve,
    /// Polarity of the stand-in path (±1, through zero on a flip).
    pub(super) polarity: Curve,
    /// The wet fraction.
    pub(super) mix: Curve,
    /// The bypass's amount (a linear ramp).
    pub(super) bypass: Curve,
    /// The compare's amount (a linear ramp).
    pub(super) compare: Curve,
    /// The DI switch.
    pub(super) di: Curve,
    /// The crossfade between the DI's two instances.
    pub(super) di_morph: Curve,
    /// The preamp switch (section against its stand-in delay).
    pub(super) oversampled: Curve,
    /// The crossfade between the two sections.
    pub(super) section_morph: Curve,
    /// The auto-gain switch.
    pub(super) auto_gain: Curve,
    /// The preamp's output level.
    pub(super) preamp_output: Curve,
    /// The headphone amp switch.
    pub(super) headphone: Curve,
    /// The reciprocal of the gain from the track to the section's input at
    /// 1 kHz (calibration, source and trim, the DI, the pad), per sample.
    pub(super) inv_front_gain: [f64; MAX_BLOCK],
    /// What each section instance scales its input by: its drive, signed
    /// by its polarity, over the front gain (times `inv_front_gain`).
    pub(super) drive_scale: [[f64; MAX_BLOCK]; 2],
    /// The auto-gain's static compensation of each section instance.
    pub(super) compensation: [[f64; MAX_BLOCK]; 2],
}

impl GainCurves {
    pub(super) fn new() -> Self {
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
            inv_front_gain: [0.0; MAX_BLOCK],
            drive_scale: [[0.0; MAX_BLOCK]; 2],
            compensation: [[0.0; MAX_BLOCK]; 2],
        }
    }
}

impl Chain {
    /// Fill the chunk's gain curves and the static compensation of each
    /// running section, and say what each switch and crossfade asks of
    /// the chunk.
    #[inline(always)]
    pub(super) fn plan_chunk(&mut self, n: usize) -> ChunkPlan {
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
        // A re-seat on a new DI (fully in): each section takes its own DI
        // instance's output, so its front gain has that DI's gain alone.
        let joint = self.joint && os.run && section_fading && di_fading && di.run && di.settled;
        let plan = ChunkPlan {
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
        };
        self.plan_front_gains(n, &plan);
        plan
    }

    /// The gain from the track to the section's input at 1 kHz, from the
    /// very curves that apply it: the calibration, source and trim, the DI
    /// (in, out or fading; one instance or the crossfade of two), the pad.
    /// Each running section scales its input by its own drive over this,
    /// so it runs at its drive whatever ramps in front of it, and its
    /// static compensation is exact: the calibration (which the output
    /// conversion takes back) over its drive and its preamp's small-signal
    /// gain.
    ///
    /// Settled (the common case): the same numbers, worked out once and
    /// reused while nothing moves (bit for bit what the per-sample loops of
    /// `plan_moving` give, so the output does not depend on which chunks
    /// are settled).
    #[inline(always)]
    fn plan_front_gains(&mut self, n: usize, plan: &ChunkPlan) {
        let c = &mut *self.curves;
        let (di, di_fading, section_fading) = (plan.di, plan.di_fading, plan.section_fading);
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
                c.inv_front_gain.fill(f);
                c.drive_scale[i].fill(signed * f);
                c.compensation[i].fill(c.cal[0] * k);
                self.steady_key = Some(key);
            }
        } else {
            self.steady_key = None;
            self.plan_moving(n, plan);
        }
    }

    /// The per-sample front gains, drive scales and compensations of a
    /// chunk in which something moves (see `plan_front_gains`).
    fn plan_moving(&mut self, n: usize, plan: &ChunkPlan) {
        let c = &mut *self.curves;
        let front = &mut c.inv_front_gain[..n];
        let gains = c.cal.iter().zip(&*c.source_trim).zip(&*c.pad);
        for (f, ((cal, st), pad)) in front.iter_mut().zip(gains) {
            *f = cal * st * pad;
        }
        if plan.di.run {
            let [a, b] = self.di_morph.instances();
            let (ga, gb) = (self.di_gain[a], self.di_gain[b]);
            let amounts = c.di.iter().zip(&*c.di_morph);
            for (f, (on, morph)) in front.iter_mut().zip(amounts) {
                let g = if plan.di_fading {
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
        let front = &c.inv_front_gain[..n];
        // Each section instance that runs (were the section in), at its own
        // drive; in a re-seat on a new DI, on its own DI instance.
        let sections = self.section_morph.running(true);
        for (&i, d) in sections.iter().zip(self.di_morph.instances()) {
            let section = &self.sections[i];
            let drive = section.settings.drive;
            let signed = drive * section.settings.polarity;
            if plan.joint {
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
            if plan.ag_run {
                let k = 1.0 / (drive * section.gain).max(1e-300);
                for (v, cal) in c.compensation[i][..n].iter_mut().zip(&c.cal[..n]) {
                    *v = cal * k;
                }
            }
        }
    }
}

/// What one chunk does (see [`Chain::plan_chunk`]).
#[derive(Clone, Copy)]
pub(super) struct ChunkPlan {
    /// Compare is fully off.
    pub(super) compare_off: bool,
    /// The DI switch.
    pub(super) di: SwitchPlan,
    /// The DI's two instances crossfade.
    pub(super) di_fading: bool,
    /// …and each section takes its own DI's output (a re-seat on a new
    /// DI, see `Chain::start_changes`).
    pub(super) joint: bool,
    /// The preamp switch (the section against its stand-in).
    pub(super) os: SwitchPlan,
    /// The two sections crossfade.
    pub(super) section_fading: bool,
    /// The auto-gain switch.
    pub(super) ag: SwitchPlan,
    /// The auto-gain runs (its switch, and the section, are in).
    pub(super) ag_run: bool,
    /// …after a restart.
    pub(super) ag_reset: bool,
    /// The headphone switch.
    pub(super) hp: SwitchPlan,
}

impl ChunkPlan {
    /// Where each of the chunk's crossfades stands (`c`: the chunk's
    /// curves, `n` samples).
    pub(super) fn fades<'a>(&self, c: &'a GainCurves, n: usize) -> Fades<'a> {
        Fades {
            di: self.di.fade(&c.di[..n]),
            di_morph: Fade::of_morph(self.di_fading, &c.di_morph[..n]),
            section: self.os.fade(&c.oversampled[..n]),
            section_morph: Fade::of_morph(self.section_fading, &c.section_morph[..n]),
            auto_gain: if self.ag_run {
                self.ag.fade(&c.auto_gain[..n])
            } else {
                Fade::From
            },
            headphone: self.hp.fade(&c.headphone[..n]),
            // (Fully on it keeps the fade's arithmetic, `out + 1·(dry − out)`.)
            compare: if self.compare_off {
                Fade::From
            } else {
                Fade::Moving(&c.compare[..n])
            },
        }
    }
}

/// Where each of a chunk's crossfades stands (see `morph.rs`).
#[derive(Clone, Copy)]
pub(super) struct Fades<'a> {
    /// The DI switch: its input to its output.
    pub(super) di: Fade<'a>,
    /// The DI's playing instance to its standby one.
    pub(super) di_morph: Fade<'a>,
    /// The preamp switch: the stand-in delay to the oversampled section.
    pub(super) section: Fade<'a>,
    /// The playing section to the standby one.
    pub(super) section_morph: Fade<'a>,
    /// The auto-gain switch: the section's output as it is, to auto-gained.
    pub(super) auto_gain: Fade<'a>,
    /// The headphone switch: its stand-in delay to the amp.
    pub(super) headphone: Fade<'a>,
    /// Compare: the output to the dry signal at the output's loudness.
    pub(super) compare: Fade<'a>,
}
