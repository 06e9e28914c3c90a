//! What every transformer stage here shares (`TransformerModel`): the
//! equivalent circuit's linear model as a cascade of digital sections, and
//! the Jiles-Atherton core coupled to it, decimated. The DI box
//! (`transformer/di.rs`) and the mic input transformer
//! (`transformer/mic_input.rs`) each describe their circuit as a `Ladder`
//! and their core as a `JaMaterial`; everything from there on is here,
//! once.
//!
//! # The ladder
//!
//! Everything is referred to the primary (`nt` = primary : secondary turns,
//! 12 for the DI's step-down, 0.1 for the mic's 1:10 step-up):
//!
//! ```text
//!  Rs   Ls           Ra             Rp                 Ll'      R2
//! -/\/\-UUUU-+------/\/\--+--------/\/\--+-----+------UUUU-----/\/\----+----+--> V' / nt
//!            |            |              |     |                       |    |
//! (Vs)      Cs           Rb          Lm(J-A)  Rc                      C'    R'
//! ```
//!
//! `Cs` (source capacitance), the pad (`Ra`, `Rb`) and the core-loss
//! resistance `Rc` are optional. The ladder is evaluated from the load back
//! to the source with polynomial ABCD arithmetic in s (`transformer/
//! linear.rs` has the maths): `H(s) = k s / D(s)`, the zero at DC from `Lm`.
//! Each root of D becomes one section (`update_digital` says how).
//!
//! # The core in the circuit
//!
//! The magnetising branch `Lm` is non-linear. With the resistive parts of the
//! source, pad, primary, secondary, load and `Rc` lumped into a Thevenin
//! equivalent (Vth, Rth) seen by the magnetising node (valid below a few
//! kHz, where the flux lives): `d(lambda)/dt = Vth - Rth * i_m(lambda,
//! history)` with lambda the flux linkage (volt-seconds). The small-signal
//! part `i = lambda/Lm` is already in the linear filter; the core adds only
//! the excess current `i_nl = i_m - lambda/Lm`, which flows through Rth and
//! is added at the output as a correction voltage `g * (-Rth i_nl - wc nu)`
//! (nu the correction flux, wc = Rth/Lm, g the node-to-output gain). At
//! small signals i_nl vanishes, so `response()` is the small-signal response
//! of the whole stage. The core's flux is `lambda = lambda_s (eps h + m)`
//! and its current `i_m = I_a h`, with I_a following from Lm (the
//! small-signal slopes must agree).
//!
//! The core runs decimated at fs/K with K = floor(fs / 8 kHz) (the flux is
//! the integral of the voltage, so its high-frequency content is tiny, and
//! the distortion it makes lives below a few hundred Hz): the input voltage
//! is integrated-and-dumped over the K samples (an exact integral, so no
//! aliasing into the flux beyond the 1/f weighting), one implicit
//! trapezoidal step couples the core to the circuit, and the correction is
//! linearly interpolated back (one core step of delay on the distortion
//! products only). Per step the J-A equation is integrated in h with Heun's
//! method (`JaMaterial::step`: two slope evaluations, no Newton loop). State
//! that becomes non-finite resets the core.
//!
//! # Run
//!
//! The cascade runs through the build dispatch (`Isa::run`), one channel
//! or a stereo pair in the two lanes of `F2` (`process_pair`, when both
//! channels have the same sections and core count: each lane bit for bit
//! its own channel); the cores step per channel. Each section's
//! loop-carried operation (`y = t − a1·y1`) is `mad`: bit for bit the
//! unfused code in the portable build, fused in the AVX2 + FMA build (one
//! rounding less: the golden DI renders agree to 0 f32 ulp; through the
//! chain, noise into the DI, the two builds' f32 outputs differ by one
//! f32 ulp of a small sample at most, 2.9e-11 V, 1.9e-9 of the peak; the
//! mic transformer's by nothing at f32).
//!
//! Cost of the DI (`benches/stages.rs`, `di`: stereo, 48 kHz, line source,
//! defaults; alternated, 4 runs, min / median ms per second of stereo):
//! the build before the transformer model (bench-base) 1.58 / 1.63; the
//! build before the dispatch (86b92bd) 2.08 / 2.16 (+32 %); with it
//! 1.71 / 1.75 (+8 %); the same with no cable (`di_cable_0m`) 1.59 /
//! 1.70. The DI cable's capacitance (e91ca83: 300 pF at the default 3 m)
//! puts a real pole at 1/(2π·100 Ω·300 pF) = 5.3 MHz on a line source:
//! a third section (its feedback coefficient −5e−302, in effect a 3-tap
//! FIR) for a response of −0.00006 dB at 20 kHz; that section is what the
//! remaining 8 % is. Since an FIR section is folded into the first
//! (`linear.rs`), the cable's pole costs one tap more in the first
//! section and the leakage pair, an FIR above 3/8 fs, stays a section of
//! its own (2 runs alternated with the build before, another machine):
//! `di` 1.77–1.80 → 1.82–1.83 ms (no gain: the core's steps at 8 kHz are
//! most of the DI's time), `di_cable_0m` 1.59 → 1.43 ms (its one FIR
//! section folded: one section left).

use super::ja::{JaMaterial, JaState};
use super::linear::{
    matched_factor, padd, pdeg, peval, pmul_lin, roots, AnalogSection, Biquad, Poly, MAX_FACTORS,
    MAX_SEC, NP, W_REF,
};
use crate::dsp::fma::MulAdd;
use crate::dsp::simd::{Channels, Isa, Kernel, F2};
use num_complex::Complex;
use std::marker::PhantomData;

/// Input clamp: anything beyond +62 dBu is not a signal a transformer sees.
const INPUT_LIMIT_VOLTS: f64 = 1000.0;

/// A transformer's equivalent circuit, referred to the primary (see the
/// module header for the drawing).
#[derive(Clone, Copy, Debug)]
pub(super) struct Ladder {
    /// Effective turns ratio, primary : secondary (the output is V' / nt).
    pub nt: f64,
    /// Primary DC resistance, ohms.
    pub rp: f64,
    /// Secondary DC resistance referred to the primary, ohms.
    pub r2: f64,
    /// Load referred to the primary, ohms.
    pub rl: f64,
    /// Leakage inductance referred to the primary, henry.
    pub ll: f64,
    /// Secondary capacitance referred to the primary, farad.
    pub cl: f64,
    /// Small-signal magnetising inductance, henry.
    pub lm: f64,
    /// Core-loss resistance across the magnetising branch, ohms, if any.
    pub rc: Option<f64>,
    /// Pad resistors (series Ra, shunt Rb) when a pad is in.
    pub pad: Option<(f64, f64)>,
    /// Source series resistance, ohms.
    pub rs: f64,
    /// Source series inductance, henry.
    pub ls: f64,
    /// Capacitance across the input (source winding + cable), farad.
    pub cs: f64,
    /// Saturation flux linkage of the primary, volt-seconds.
    pub lambda_sat: f64,
}

/// The linear cascade and the coupled core of one transformer channel.
#[derive(Clone, Debug)]
pub struct TransformerModel {
    /// The core material.
    material: JaMaterial,
    /// Core rate target: the core runs at fs / floor(fs / core_rate_hz).
    core_rate_hz: f64,

    /// Analog first/second-order factors of the linear circuit (recomputed
    /// when the circuit changes).
    analog: [AnalogSection; MAX_FACTORS],
    /// Number of analog factors in use.
    n_fac: usize,
    /// Number of digital sections in use.
    n_sec: usize,
    /// Overall analog gain factor on top of the sections.
    analog_gain: f64,
    /// Digital sections with their state.
    sec: [Biquad; MAX_SEC],

    /// Thevenin gain from the source voltage to the magnetising node (LF).
    vth_gain: f64,
    /// Thevenin resistance seen by the magnetising branch, ohms.
    rth_ohms: f64,
    /// Small-signal magnetising inductance, henry.
    lm_henry: f64,
    /// Saturation flux linkage, volt-seconds.
    pub(super) lambda_sat: f64,
    /// Magnetising current per unit normalised field h, amperes.
    i_a: f64,
    /// Gain from the magnetising-node voltage to the output (midband).
    g_vm_out: f64,

    /// Core decimation factor K (core runs at fs / K).
    k_dec: u32,
    /// Samples since the last core step.
    k_count: u32,
    /// Sample period times vth_gain (integrate-and-dump weight).
    dump_weight: f64,
    /// Trapezoidal pole factor (1 - wc T/2)/(1 + wc T/2) at the core rate.
    core_a: f64,
    /// Trapezoidal input factor (T/2) Rth / (1 + wc T/2) at the core rate.
    core_b: f64,
    /// 1 - core_b / Lm (the coefficient of lambda in the implicit equation).
    core_beta: f64,
    /// wc = Rth / Lm, rad/s.
    wc: f64,
    /// Sum of input samples since the last core step (integrate-and-dump).
    acc: f64,
    /// Flux of the linear circuit alone, volt-seconds.
    lambda_lin: f64,
    /// Extra flux caused by the non-linear current, volt-seconds.
    pub(super) nu: f64,
    /// Non-linear excess magnetising current at the last core step, amperes.
    i_nl: f64,
    /// State of the J-A core (normalised field and magnetisation).
    pub(super) core: JaState,
    /// Largest |flux linkage| of the core since the last
    /// `take_peak_saturation` (or reset), volt-seconds (for the meters).
    flux_peak: f64,
    /// Current value of the interpolated output correction, volts.
    corr: f64,
    /// Per-sample increment of the correction (linear interpolation).
    corr_step: f64,
    /// Correction target reached at the end of the current core interval.
    corr_target: f64,
    /// The build the cascade runs in.
    isa: Isa,
}

impl TransformerModel {
    /// A model of `material` with no circuit yet (call `design`, then
    /// `update_digital`).
    pub(super) fn new(
        material: JaMaterial,
        core_rate_hz: f64,
        lm_henry: f64,
        lambda_sat: f64,
    ) -> Self {
        Self {
            material,
            core_rate_hz,
            analog: [AnalogSection::default(); MAX_FACTORS],
            n_fac: 0,
            n_sec: 0,
            analog_gain: 1.0,
            sec: [Biquad::default(); MAX_SEC],
            vth_gain: 1.0,
            rth_ohms: 1.0,
            lm_henry,
            lambda_sat,
            i_a: 1.0,
            g_vm_out: 1.0,
            k_dec: 1,
            k_count: 0,
            dump_weight: 0.0,
            core_a: 1.0,
            core_b: 0.0,
            core_beta: 1.0,
            wc: 0.0,
            acc: 0.0,
            lambda_lin: 0.0,
            nu: 0.0,
            i_nl: 0.0,
            core: JaState::default(),
            flux_peak: 0.0,
            corr: 0.0,
            corr_step: 0.0,
            corr_target: 0.0,
            isa: Isa::portable(),
        }
    }

    /// Clear all state (demagnetised core, silent filters, counters zero).
    pub(super) fn reset(&mut self) {
        for s in self.sec.iter_mut() {
            s.clear();
        }
        self.reset_core();
        self.k_count = 0;
    }

    /// Demagnetise the core and clear the coupling's state.
    fn reset_core(&mut self) {
        self.acc = 0.0;
        self.lambda_lin = 0.0;
        self.nu = 0.0;
        self.i_nl = 0.0;
        self.core = JaState::default();
        self.flux_peak = 0.0;
        self.corr = 0.0;
        self.corr_step = 0.0;
        self.corr_target = 0.0;
    }

    /// Small-signal transfer function of the digital filter as implemented
    /// (volts out per volt of source) at `fs`.
    pub(super) fn response(&self, fs: f64, freq_hz: f64) -> Complex<f64> {
        let w = 2.0 * std::f64::consts::PI * freq_hz / fs;
        let zi = Complex::from_polar(1.0, -w);
        let mut h = Complex::new(1.0, 0.0);
        for s in &self.sec[..self.n_sec] {
            h *= s.response(zi);
        }
        h
    }

    /// Peak |lambda|/lambda_s of the core since the last call (or reset),
    /// and restart the peak.
    pub(super) fn take_peak_saturation(&mut self) -> f64 {
        let r = self.flux_peak / self.lambda_sat;
        self.flux_peak = 0.0;
        if r.is_finite() {
            r
        } else {
            0.0
        }
    }

    /// The complex pole pair of the analog model, if any: (natural
    /// frequency Hz, Q).
    pub(super) fn resonance(&self) -> Option<(f64, f64)> {
        self.analog[..self.n_fac]
            .iter()
            .find(|s| s.order == 2)
            .map(|s| (s.w0 / (2.0 * std::f64::consts::PI), s.a[0].sqrt() / s.a[1]))
    }

    /// Recompute the analog model (poles, gains, core constants) of `c`.
    pub(super) fn design(&mut self, c: &Ladder) {
        let (rs, ls, cs) = (c.rs, c.ls, c.cs);
        let w = W_REF;
        // Backward ladder recurrence: V, I polynomials (in p = s/W_REF), N numerator.
        let mut v: Poly = [0.0; NP];
        v[0] = 1.0;
        let mut i: Poly = [0.0; NP];
        i[0] = 1.0 / c.rl;
        i[1] = c.cl * w;
        let mut num: Poly = [0.0; NP];
        num[0] = 1.0;
        // series R2 + s Ll'
        v = padd(&v, &pmul_lin(&i, c.r2, c.ll * w));
        // shunt 1/(s Lm) (|| Rc): multiply all by s Lm, I += V (1 + s Lm/Rc)
        let vq = pmul_lin(&v, 0.0, c.lm * w);
        i = match c.rc {
            None => padd(&pmul_lin(&i, 0.0, c.lm * w), &v),
            Some(rc) => padd(
                &pmul_lin(&i, 0.0, c.lm * w),
                &pmul_lin(&v, 1.0, c.lm * w / rc),
            ),
        };
        v = vq;
        num = pmul_lin(&num, 0.0, c.lm * w);
        // series Rp
        v = padd(&v, &pmul_lin(&i, c.rp, 0.0));
        if let Some((ra, rb)) = c.pad {
            i = padd(&i, &pmul_lin(&v, 1.0 / rb, 0.0));
            v = padd(&v, &pmul_lin(&i, ra, 0.0));
        }
        if cs > 0.0 {
            i = padd(&i, &pmul_lin(&v, 0.0, cs * w));
        }
        v = padd(&v, &pmul_lin(&i, rs, ls * w));
        // H(p) = num / v; num = k p.
        let deg = pdeg(&v);
        let mut r = [Complex::new(0.0, 0.0); NP];
        roots(&v, deg, &mut r);
        // Sort: real roots by magnitude, complex (upper half) afterwards.
        let mut reals = [0.0f64; NP];
        let mut nr = 0;
        let mut cplx = [Complex::new(0.0, 0.0); NP];
        let mut nc = 0;
        for z in r.iter().take(deg) {
            if z.im == 0.0 {
                reals[nr] = z.re;
                nr += 1;
            } else if z.im > 0.0 {
                cplx[nc] = *z;
                nc += 1;
            }
        }
        reals[..nr].sort_by(|a, b| {
            a.abs()
                .partial_cmp(&b.abs())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let mut secs = [AnalogSection::default(); MAX_FACTORS];
        let mut ns = 0;
        // The magnetising pole with the zero at DC: p / (p - r0).
        if nr > 0 {
            secs[0] = AnalogSection {
                b: [0.0, 1.0, 0.0],
                a: [-reals[0], 1.0, 0.0],
                order: 1,
                w0: reals[0].abs() * w,
            };
            ns = 1;
        }
        for &p1 in reals.iter().take(nr).skip(1) {
            if ns >= MAX_FACTORS {
                break;
            }
            secs[ns] = AnalogSection {
                b: [-p1, 0.0, 0.0],
                a: [-p1, 1.0, 0.0],
                order: 1,
                w0: p1.abs() * w,
            };
            ns += 1;
        }
        for z in cplx.iter().take(nc) {
            if ns >= MAX_FACTORS {
                break;
            }
            let a0 = z.norm_sqr();
            secs[ns] = AnalogSection {
                b: [a0, 0.0, 0.0],
                a: [a0, -2.0 * z.re, 1.0],
                order: 2,
                w0: a0.sqrt() * w,
            };
            ns += 1;
        }
        // Overall gain: H(j) / prod sections(j) at p = j (1 kHz).
        let pj = Complex::new(0.0, 1.0);
        let h = peval(&num, pdeg(&num), pj) / peval(&v, deg, pj);
        let mut prod = Complex::new(1.0, 0.0);
        for s in &secs[..ns] {
            let b = s.b[0] + pj * s.b[1] + pj * pj * s.b[2];
            let a = s.a[0] + pj * s.a[1] + pj * pj * s.a[2];
            prod *= b / a;
        }
        self.analog = secs;
        self.n_fac = ns;
        self.analog_gain = (h / prod).re / c.nt;

        // Core constants (LF Thevenin model of the magnetising node).
        let (mut v1, mut r1) = (1.0, rs);
        if let Some((ra, rb)) = c.pad {
            v1 = rb / (rs + ra + rb);
            r1 = (rs + ra) * rb / (rs + ra + rb);
        }
        r1 += c.rp;
        let rsec_side = c.r2 + c.rl;
        self.vth_gain = v1 * rsec_side / (r1 + rsec_side);
        self.rth_ohms = r1 * rsec_side / (r1 + rsec_side);
        if let Some(rc) = c.rc {
            // Rc is a linear part of the node's Thevenin equivalent too.
            self.vth_gain *= rc / (self.rth_ohms + rc);
            self.rth_ohms = self.rth_ohms * rc / (self.rth_ohms + rc);
        }
        self.lm_henry = c.lm;
        self.lambda_sat = c.lambda_sat;
        // I_a from the small-signal J-A flux slope at the demagnetised state,
        // so the core's small-signal inductance lambda / i_m is exactly Lm.
        let s0 = self.material.small_signal_flux_slope();
        self.i_a = self.lambda_sat * s0 / self.lm_henry;
        self.g_vm_out = c.rl / (c.r2 + c.rl) / c.nt;
        self.wc = self.rth_ohms / self.lm_henry;
    }

    /// Recompute the digital coefficients for the rate `fs`.
    pub(super) fn update_digital(&mut self, fs: f64) {
        let t = 1.0 / fs;
        let w_cap = 2.0 * std::f64::consts::PI * (16_000.0f64).min(0.3 * fs);
        // Discretise every factor on its own: the DC-zero factor with the
        // bilinear transform, the all-pole factors with the matched design.
        let pi = std::f64::consts::PI;
        let w1 = (2.0 * pi * 10_000.0 * t).min(0.45 * pi);
        let w2 = (2.0 * pi * 20_000.0 * t).min(0.9 * pi);
        let mut ns = 0;
        let mut sec = [Biquad::default(); MAX_SEC];
        for k in 0..self.n_fac {
            let s = self.analog[k];
            if k == 0 {
                let ww = s.w0.clamp(1e-3, w_cap);
                let cc = ww / (ww * t * 0.5).tan() / W_REF; // p = cc (1 - z^-1)/(1 + z^-1)
                let g = self.analog_gain;
                let b = [g * (s.b[0] + s.b[1] * cc), g * (s.b[0] - s.b[1] * cc), 0.0];
                let a = [s.a[0] + s.a[1] * cc, s.a[0] - s.a[1] * cc, 0.0];
                sec[ns].set(b, a);
            } else {
                let q = if s.order == 2 {
                    s.a[0].sqrt() / s.a[1]
                } else {
                    0.0
                };
                let (b, a) = matched_factor(s.order, s.w0 * t, q, w1, w2);
                sec[ns].set(b, a);
            }
            ns += 1;
        }
        // An FIR section (a pole pair above 3/8 fs, a real pole far above
        // the band) goes into the first section's numerator (the DC-zero
        // factor's, of degree 1): one section less per sample.
        if let Some(k) = (1..ns).find(|&k| sec[k].is_fir()) {
            let fir = sec[k];
            if sec[0].fold(&fir) {
                sec.copy_within(k + 1..ns, k);
                ns -= 1;
            }
        }
        // The coefficients only: each section's state stays in place.
        for (q, d) in self.sec.iter_mut().zip(&sec).take(ns) {
            q.set_coefficients(d);
        }
        for q in self.sec[ns..].iter_mut() {
            *q = Biquad::default();
        }
        self.n_sec = ns;
        // Core.
        let kd = ((fs / self.core_rate_hz).floor() as u32).max(1);
        if kd != self.k_dec {
            self.k_count = 0;
        }
        self.k_dec = kd;
        let tc = kd as f64 * t;
        let x = self.wc * tc * 0.5;
        self.core_a = (1.0 - x) / (1.0 + x);
        self.core_b = tc * 0.5 * self.rth_ohms / (1.0 + x);
        self.core_beta = 1.0 - self.core_b / self.lm_henry;
        self.dump_weight = t * self.vth_gain;
    }

    /// One implicit step of the core coupled to the circuit (at fs / K):
    /// the trapezoidal rule on d(lambda)/dt = Vth - Rth i_m, with the linear
    /// circuit's flux and the last step's correction folded into `p`.
    #[inline]
    fn core_step(&mut self) {
        let (kf, kh, p) = self.core_equation();
        let next = self.material.step(self.core, kf, kh, p);
        self.take_core_step(next);
    }

    /// [`Self::core_step`] of a stereo pair's two cores (of one material:
    /// the same transformer) side by side ([`JaMaterial::steps`]): each
    /// bit for bit its own `core_step`.
    fn core_steps(a: &mut Self, b: &mut Self) {
        if a.material != b.material {
            a.core_step();
            b.core_step();
            return;
        }
        let ((kfa, kha, pa), (kfb, khb, pb)) = (a.core_equation(), b.core_equation());
        let [na, nb] = a
            .material
            .steps([a.core, b.core], [kfa, kfb], [kha, khb], [pa, pb]);
        a.take_core_step(na);
        b.take_core_step(nb);
    }

    /// The first half of a core step: the linear circuit's flux taken up
    /// to now, and the circuit's equation for the step,
    /// `kf·(eps h + m) + kh·h = p` (the coefficients and `p`).
    #[inline]
    fn core_equation(&mut self) -> (f64, f64, f64) {
        let a = self.core_a;
        let b = self.core_b;
        self.lambda_lin = a * self.lambda_lin + self.acc * self.dump_weight;
        self.acc = 0.0;
        let p = self.lambda_lin + a * self.nu - b * self.i_nl;
        // beta lambda + b i_m = p, with lambda = ls (eps h + m), i_m = ia h.
        (self.core_beta * self.lambda_sat, b * self.i_a, p)
    }

    /// The second half: the core's new state `next` taken, and the
    /// correction it gives the output over the next steps.
    #[inline]
    fn take_core_step(&mut self, next: JaState) {
        let ls = self.lambda_sat;
        let ia = self.i_a;
        let h = next.h;
        let lambda = ls * self.material.flux(next);
        let i_nl = ia * h - lambda / self.lm_henry;
        let nu = lambda - self.lambda_lin;
        if !(h.is_finite() && nu.is_finite() && i_nl.is_finite()) {
            self.reset_core();
            return;
        }
        self.core = next;
        self.flux_peak = self.flux_peak.max(lambda.abs());
        self.i_nl = i_nl;
        self.nu = if nu.abs() < 1e-30 { 0.0 } else { nu };
        if self.lambda_lin.abs() < 1e-30 {
            self.lambda_lin = 0.0;
        }
        let target = self.g_vm_out * (-self.wc * self.nu - self.rth_ohms * i_nl);
        self.corr = self.corr_target;
        self.corr_target = target;
        self.corr_step = (target - self.corr) / self.k_dec as f64;
    }

    /// Process one block in place (volts in, volts out): the cascade with
    /// the core's correction. The caller checks `is_finite` afterwards.
    pub(super) fn process(&mut self, block: &mut [f64]) {
        self.process_scaled(block, (1.0, 1.0));
    }

    /// [`Self::process`] with the input times `gains.0` and the output
    /// times `gains.1`, in the same loop: bit for bit a pass of
    /// `x *= gains.0` before and of `y *= gains.1` after (the products
    /// are the same; a gain of 1 changes nothing).
    pub(super) fn process_scaled(&mut self, block: &mut [f64], gains: (f64, f64)) {
        let isa = self.isa;
        isa.run(Run::<f64> {
            models: (self, None),
            blocks: [block, &mut []],
            gains,
            _lanes: PhantomData,
        });
    }

    /// Process a stereo pair in place, the input times `gains.0` and the
    /// output times `gains.1` ([`Self::process_scaled`]), both channels' cascades in the
    /// lanes of one loop (each bit for bit its own `process`) when the two
    /// models run alike (the same sections, core rate and count); else
    /// each on its own. The caller checks `is_finite` afterwards.
    pub(super) fn process_pair_scaled(
        a: &mut Self,
        b: &mut Self,
        left: &mut [f64],
        right: &mut [f64],
        gains: (f64, f64),
    ) {
        let together = left.len() == right.len()
            && a.isa == b.isa
            && a.n_sec == b.n_sec
            && a.k_dec == b.k_dec
            && a.k_count == b.k_count
            && a.sec[..a.n_sec]
                .iter()
                .zip(&b.sec[..b.n_sec])
                .all(|(x, y)| x.same_coefficients(y));
        if !together {
            a.process_scaled(left, gains);
            b.process_scaled(right, gains);
            return;
        }
        let isa = a.isa;
        isa.run(Run::<F2> {
            models: (a, Some(b)),
            blocks: [left, right],
            gains,
            _lanes: PhantomData,
        });
    }

    /// The build the cascade runs in.
    pub(super) fn set_isa(&mut self, isa: Isa) {
        self.isa = isa;
    }

    /// True when every filter state is finite.
    pub(super) fn is_finite(&self) -> bool {
        self.sec.iter().all(Biquad::is_finite)
    }

    /// [`Self::cascade`] with the model's section count as a constant.
    #[inline(always)]
    fn cascade_sections<const SCALED: bool, M: MulAdd, L: Channels>(
        m: &mut (&mut Self, Option<&mut Self>),
        b: &mut [&mut [f64]; 2],
        g: (f64, f64),
    ) {
        match m.0.n_sec {
            1 => Self::cascade::<1, SCALED, M, L>(m, b, g),
            2 => Self::cascade::<2, SCALED, M, L>(m, b, g),
            3 => Self::cascade::<3, SCALED, M, L>(m, b, g),
            4 => Self::cascade::<4, SCALED, M, L>(m, b, g),
            5 => Self::cascade::<5, SCALED, M, L>(m, b, g),
            _ => Self::cascade::<6, SCALED, M, L>(m, b, g),
        }
    }

    /// The linear cascade of `N` sections plus the interpolated core
    /// correction over the channels' blocks in lanes `L`, with each core
    /// stepped every `k_dec` samples (counted across blocks); with
    /// `SCALED`, the input times `into` and the output times `out`.
    #[inline(always)]
    fn cascade<const N: usize, const SCALED: bool, M: MulAdd, L: Channels>(
        models: &mut (&mut Self, Option<&mut Self>),
        blocks: &mut [&mut [f64]; 2],
        (into, out): (f64, f64),
    ) {
        let (into, out) = (L::splat(into), L::splat(out));
        let lanes = |f: &dyn Fn(&Self) -> f64, m: &(&mut Self, Option<&mut Self>)| {
            let v = [f(&*m.0), m.1.as_deref().map_or(0.0, f)];
            L::load(&v)
        };
        let mut sec = [[L::default(); 5]; N];
        for (k, st) in sec.iter_mut().enumerate() {
            for (j, l) in st.iter_mut().enumerate() {
                *l = lanes(&|m| m.sec[k].state()[j], models);
            }
        }
        let coefs: [Biquad; N] = std::array::from_fn(|k| models.0.sec[k]);
        let (k_dec, len) = (models.0.k_dec, blocks[0].len());
        let reg = |v: L| v.to_reg::<M>();
        let out = reg(out);
        let mut pos = 0;
        while pos < len {
            let left = (k_dec - models.0.k_count) as usize;
            let run = left.min(len - pos);
            let mut acc = reg(lanes(&|m| m.acc, models));
            let mut corr = reg(lanes(&|m| m.corr, models));
            let step = reg(lanes(&|m| m.corr_step, models));
            let mut sec_r = sec.map(|st| st.map(reg));
            for i in pos..pos + run {
                let x = L::gather(blocks, i);
                let xin = reg(if SCALED { x * into } else { x }.sanitize(INPUT_LIMIT_VOLTS));
                let mut y = xin;
                // (The first section may carry b3, the others not.)
                let (first, rest) = sec_r.split_at_mut(1);
                y = coefs[0].tick_lanes::<M, L::Reg<M>, true>(&mut first[0], y);
                for (c, st) in coefs[1..].iter().zip(rest.iter_mut()) {
                    y = c.tick_lanes::<M, L::Reg<M>, false>(st, y);
                }
                acc = acc + xin;
                corr = corr + step;
                let y = y + corr;
                L::from_reg::<M>(if SCALED { y * out } else { y }).scatter(blocks, i);
            }
            sec = sec_r.map(|st| st.map(L::from_reg::<M>));
            let (acc, corr) = (L::from_reg::<M>(acc), L::from_reg::<M>(corr));
            pos += run;
            let (a, b) = models;
            for (c, m) in [Some(&mut **a), b.as_deref_mut()]
                .into_iter()
                .flatten()
                .enumerate()
            {
                m.acc = acc.lane(c);
                m.corr = corr.lane(c);
                m.k_count += run as u32;
            }
            // (A pair runs together only with equal counts: both step.)
            if a.k_count >= a.k_dec {
                a.k_count = 0;
                match b.as_deref_mut() {
                    Some(b) => {
                        b.k_count = 0;
                        Self::core_steps(a, b);
                    }
                    None => a.core_step(),
                }
            }
            if models.0.k_count == 0 {
                for st in sec.iter_mut() {
                    *st = st.map(|v| v.flush());
                }
            }
        }
        let (a, b) = models;
        for (c, m) in [Some(&mut **a), b.as_deref_mut()]
            .into_iter()
            .flatten()
            .enumerate()
        {
            for (q, st) in m.sec.iter_mut().zip(&sec) {
                q.set_state(st.map(|v| v.lane(c)));
            }
        }
    }
}

/// The cascade over one channel (`L = f64`, `models.1` `None`) or a stereo
/// pair (`F2`), in the build an `Isa` selects.
struct Run<'a, L> {
    models: (&'a mut TransformerModel, Option<&'a mut TransformerModel>),
    blocks: [&'a mut [f64]; 2],
    /// Gains on the input and on the output ([`TransformerModel::process_scaled`]).
    gains: (f64, f64),
    _lanes: PhantomData<L>,
}

impl<L: Channels> Kernel for Run<'_, L> {
    type Output = ();
    #[inline(always)]
    fn run<M: MulAdd>(self) {
        let Run {
            mut models,
            mut blocks,
            gains: g,
            ..
        } = self;
        let (m, b) = (&mut models, &mut blocks);
        // Unscaled (the DI, a transformer on its own): the loop without
        // the two multiplies.
        if g == (1.0, 1.0) {
            TransformerModel::cascade_sections::<false, M, L>(m, b, g);
        } else {
            TransformerModel::cascade_sections::<true, M, L>(m, b, g);
        }
    }
}
