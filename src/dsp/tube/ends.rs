//! The preamp's linear ends ([`PreampPart`]): in front of stage 1 the input
//! guard, the smoothed input gain and the input high-pass (2nd-order
//! Butterworth, TPT state-variable filter, Zavalishin / Simper); behind
//! stage 2 the output coupling capacitor into its load (one-pole TPT
//! high-pass) and the smoothed output gain with the load divider
//! `Rload/(Rload + Ra‖rp)`. The filters hold their coefficients; their
//! states live per lane in the caller (`ChannelState`), so one set serves
//! every channel of a preamp.
//!
//! The ends can run at another rate than the stages: the chain runs them at
//! the host rate, around its oversampler (a quarter of the work; live chain
//! −3 %).

use super::kernel::{chunk_len, CHUNK};
use crate::dsp::fma::MulAdd;
use crate::dsp::simd::{mad, Lane};
use num_complex::Complex;
use std::f64::consts::PI;

/// Input voltages are clamped to ±this (far beyond any real mic input).
const INPUT_LIMIT_VOLTS: f64 = 1e4;

/// One-pole smoothing step that lands exactly on the target once within
/// 1e-9 of it (so the per-block "still smoothing" test turns false).
#[inline(always)]
pub(crate) fn smooth(g: f64, target: f64, a: f64) -> f64 {
    let next = g + a * (target - g);
    if (target - next).abs() <= 1e-9 * target.abs() {
        target
    } else {
        next
    }
}

/// `xs[j] = f(xs[j], g_j)`, with the gain `g` moving towards `target` by
/// one-pole smoothing per sample (`a`); a gain that has reached its target
/// stays there, and then the smoothing is skipped.
#[inline(always)]
fn with_smoothed_gain<L: Copy>(
    g: &mut f64,
    target: f64,
    a: f64,
    xs: &mut [L],
    mut f: impl FnMut(L, f64) -> L,
) {
    let mut v = *g;
    if v != target {
        for x in xs.iter_mut() {
            v = smooth(v, target, a);
            *x = f(*x, v);
        }
        *g = v;
    } else {
        for x in xs.iter_mut() {
            *x = f(*x, v);
        }
    }
}

/// Which part of the preamp a call runs.
///
/// The preamp's two ends are linear: in front of stage 1 the input guard,
/// the smoothed input gain and the high-pass; behind stage 2 the output
/// coupling capacitor and the smoothed output gain. Nothing between them and
/// the resamplers is non-linear, so the chain runs them at the host rate,
/// around the oversampler ([`Preamp::set_rates`](super::Preamp::set_rates)): the same filters designed
/// for that rate, a quarter of the work at 4x. Alone, a preamp runs every
/// part at one rate ([`PreampPart::Whole`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreampPart {
    /// Everything, at one rate.
    Whole,
    /// The input end (guard, gain, high-pass), at the ends' rate.
    Front,
    /// The two triode stages and Level, at the stages' (oversampled) rate.
    Stages,
    /// The output end (coupling capacitor into the load, output gain), at
    /// the ends' rate.
    Back,
}

/// The preamp's linear ends (see [`PreampPart`]): coefficients, gains and
/// the sample counts that place their denormal flushes.
#[derive(Clone, Copy, Debug)]
pub(super) struct Ends {
    /// Rate the ends run at, in Hz.
    pub(super) fs: f64,
    /// Input high-pass.
    pub(super) hpf: SvfHighPass,
    /// Whether the input high-pass runs.
    pub(super) hpf_on: bool,
    /// Set when the high-pass was just switched on (its state must start at 0).
    pub(super) hpf_restart: bool,
    /// Output coupling capacitor into the load.
    pub(super) out_hp: OnePoleHighPass,
    /// Target linear input gain.
    pub(super) in_gain_target: f64,
    /// Target output gain including the load divider.
    pub(super) out_gain_target: f64,
    /// Smoothed input gain.
    pub(super) in_gain: f64,
    /// Smoothed output gain.
    pub(super) out_gain: f64,
    /// One-pole smoothing coefficient for the gains at `fs`.
    pub(super) smooth_a: f64,
    /// Samples through the front since reset (flush positions).
    pub(super) front_counter: u64,
    /// Samples through the back since reset.
    pub(super) back_counter: u64,
}

impl Ends {
    pub(super) fn new() -> Self {
        Self {
            fs: 48_000.0,
            hpf: SvfHighPass::default(),
            hpf_on: false,
            hpf_restart: false,
            out_hp: OnePoleHighPass::default(),
            in_gain_target: 1.0,
            out_gain_target: 1.0,
            in_gain: 1.0,
            out_gain: 1.0,
            smooth_a: 1.0,
            front_counter: 0,
            back_counter: 0,
        }
    }

    /// The input end over `xs` in place (at most up to the next multiple of
    /// `CHUNK` of the front's count, where its state is flushed).
    #[inline(always)]
    pub(super) fn front<L: Lane, M: MulAdd>(&mut self, hpf: &mut [L; 2], xs: &mut [L]) {
        if self.hpf_restart {
            *hpf = [L::default(); 2];
            self.hpf_restart = false;
        }
        let (a, t) = (self.smooth_a, self.in_gain_target);
        with_smoothed_gain(&mut self.in_gain, t, a, xs, |v, g| {
            v.sanitize(INPUT_LIMIT_VOLTS) * L::splat(g)
        });
        if self.hpf_on {
            let f = self.hpf;
            for v in xs.iter_mut() {
                *v = f.tick::<M, _>(hpf, *v);
            }
        }
        self.front_counter += xs.len() as u64;
        if self.front_counter.is_multiple_of(CHUNK as u64) {
            *hpf = [hpf[0].flush(), hpf[1].flush()];
        }
    }

    /// The output end over `ys` in place (as `front`).
    #[inline(always)]
    pub(super) fn back<L: Lane, M: MulAdd>(&mut self, s: &mut L, ys: &mut [L]) {
        let (a, t, f) = (self.smooth_a, self.out_gain_target, self.out_hp);
        with_smoothed_gain(&mut self.out_gain, t, a, ys, |y, g| {
            f.tick::<M, _>(s, y) * L::splat(g)
        });
        self.back_counter += ys.len() as u64;
        if self.back_counter.is_multiple_of(CHUNK as u64) {
            *s = s.flush();
        }
    }

    /// The front (`front`, states `hpf`) or the back end (state `out`)
    /// alone over `len` samples, in chunks that end where its count reaches
    /// multiples of `CHUNK`.
    #[inline(always)]
    pub(super) fn run<L: Lane, M: MulAdd>(
        &mut self,
        front: bool,
        (hpf, out): (&mut [L; 2], &mut L),
        len: usize,
        load: &mut impl FnMut(usize, &mut [L]),
        store: &mut impl FnMut(usize, &[L]),
    ) {
        let mut buf = [L::default(); CHUNK];
        let mut i0 = 0;
        while i0 < len {
            let counter = if front {
                self.front_counter
            } else {
                self.back_counter
            };
            let n = chunk_len(len - i0, counter);
            load(i0, &mut buf[..n]);
            if front {
                self.front::<L, M>(hpf, &mut buf[..n]);
            } else {
                self.back::<L, M>(out, &mut buf[..n]);
            }
            store(i0, &buf[..n]);
            i0 += n;
        }
    }

    /// Stage 1's input for the chunk from sample `i` into `buf`: `load`ed,
    /// and through the front end when the whole preamp runs.
    #[inline(always)]
    pub(super) fn stage_input<L: Lane, M: MulAdd>(
        &mut self,
        whole: bool,
        hpf: &mut [L; 2],
        load: &mut impl FnMut(usize, &mut [L]),
        i: usize,
        buf: &mut [L],
    ) {
        load(i, buf);
        if whole {
            self.front::<L, M>(hpf, buf);
        }
    }
}

// ---------------------------------------------------------------------------
// The filters (coefficients here, state per lane in the caller)
// ---------------------------------------------------------------------------

/// 2nd-order Butterworth high-pass, TPT state-variable form (Zavalishin / Simper).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SvfHighPass {
    /// Pre-warped integrator gain tan(π fc/fs).
    g: f64,
    /// Damping 1/Q = √2.
    k: f64,
    /// Solver coefficients.
    a1: f64,
    /// Solver coefficients.
    a2: f64,
    /// Solver coefficients.
    a3: f64,
}

impl SvfHighPass {
    pub(crate) fn set(&mut self, fc: f64, fs: f64) {
        self.g = (PI * (fc / fs).min(0.49)).tan();
        self.k = std::f64::consts::SQRT_2;
        self.a1 = 1.0 / (1.0 + self.g * (self.g + self.k));
        self.a2 = self.g * self.a1;
        self.a3 = self.g * self.a2;
    }

    /// One sample; `ic` holds the two integrator states.
    #[inline(always)]
    pub(crate) fn tick<M: MulAdd, L: Lane>(&self, ic: &mut [L; 2], v0: L) -> L {
        let (s, m) = (L::splat, mad::<M, L>);
        let v3 = v0 - ic[1];
        let v1 = m(s(self.a1), ic[0], s(self.a2) * v3);
        let v2 = m(s(self.a3), v3, ic[1] + s(self.a2) * ic[0]);
        ic[0] = s(2.0) * v1 - ic[0];
        ic[1] = s(2.0) * v2 - ic[1];
        v0 - s(self.k) * v1 - v2
    }

    pub(crate) fn response(&self, freq_hz: f64, fs: f64) -> Complex<f64> {
        let s = Complex::new(0.0, (PI * (freq_hz / fs).min(0.4999)).tan() / self.g);
        s * s / (s * s + s * self.k + 1.0)
    }
}

/// One-pole TPT high-pass (output coupling capacitor).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct OnePoleHighPass {
    /// Pre-warped gain g/(1 + g).
    big_g: f64,
    /// tan(π fc/fs), for the response.
    g: f64,
}

impl OnePoleHighPass {
    pub(crate) fn set(&mut self, fc: f64, fs: f64) {
        self.g = (PI * (fc / fs).min(0.49)).tan();
        self.big_g = self.g / (1.0 + self.g);
    }

    /// One sample; `s` is the integrator state. The TPT update
    /// `v = G(x − s), lp = v + s, s' = lp + v` written as
    /// `lp = G·x + (1 − G)·s`, `s' = 2G·x + (1 − 2G)·s` (one multiply and
    /// one add on the loop-carried chain).
    #[inline(always)]
    pub(crate) fn tick<M: MulAdd, L: Lane>(&self, s: &mut L, x: L) -> L {
        let (g, m) = (self.big_g, mad::<M, L>);
        let lp = m(*s, L::splat(1.0 - g), x * L::splat(g));
        *s = m(*s, L::splat(1.0 - 2.0 * g), x * L::splat(2.0 * g));
        x - lp
    }

    pub(crate) fn response(&self, freq_hz: f64, fs: f64) -> Complex<f64> {
        let s = Complex::new(0.0, (PI * (freq_hz / fs).min(0.4999)).tan() / self.g);
        s / (s + 1.0)
    }
}
