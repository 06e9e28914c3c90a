//! The DI box stage (`DiBox`): the source network, the pad, the
//! transformer's linear model and its load as one filter cascade
//! (`update_analog`: the ladder to analog factors; `update_digital`: the
//! factors to digital sections, with the maths in `transformer/linear.rs`),
//! the Jiles-Atherton core (`transformer/ja.rs`) coupled to the circuit,
//! and ground-loop hum. The per-sample update is `DiBox::run`.
//!
//! The chain runs this stage at the host rate, not oversampled: its only
//! non-linearity is the core, which is driven by the flux (low-passed by
//! nature) and already runs decimated (below), so oversampling would cost CPU
//! and buy nothing. Tests check gain, pads and flatness at 44.1 and 48 kHz.
//!
//! # The core in the circuit
//!
//! The magnetising branch `Lm` is non-linear. With the resistive parts of the
//! source, pad and primary lumped into a Thevenin equivalent (Vth, Rth) seen
//! by the magnetising node (valid below a few kHz, where the flux lives):
//! `d(lambda)/dt = Vth - Rth * i_m(lambda, history)` with lambda the flux
//! linkage (volt-seconds). The small-signal part `i = lambda/Lm` is already in
//! the linear filter above; the core adds only the excess current
//! `i_nl = i_m - lambda/Lm`, which flows through Rth and is added at the
//! output as a correction voltage `g * (-Rth i_nl - wc nu)` (nu the correction
//! flux, wc = Rth/Lm). At small signals i_nl vanishes, so `response()` is the
//! small-signal response of the whole stage. The core's flux is
//! `lambda = lambda_s (eps h + m)` and its current `i_m = I_a h`, with
//! I_a = a l/N following from Lm (the small-signal slopes must agree).
//!
//! The core runs decimated at fs/K with K = floor(fs / 8 kHz) (the flux is
//! the integral of the voltage, so its high-frequency content is tiny, and
//! the distortion it makes lives below a few hundred Hz): the
//! input voltage is integrated-and-dumped over the K samples (an exact
//! integral, so no aliasing into the flux beyond the 1/f weighting), one
//! implicit trapezoidal step couples the core to the circuit, and the
//! correction is linearly interpolated back (one core step of delay on the
//! distortion products only). Per step the J-A equation is integrated in h
//! with Heun's method (two slope evaluations); with the slope fixed, the
//! circuit equation is linear in h, so there is no Newton loop at all. State
//! that becomes non-finite resets the core.
//!
//! # Hum
//!
//! With the ground lift off, a ground loop adds hum at the output (the cable
//! shield between DI and preamp): the mains fundamental plus odd and even
//! harmonics to the 15th with a rectifier-buzz-like spectrum, -65 dBu rms in
//! total (a typical audible-but-low ground-loop level). The phase comes from a
//! sample counter that `reset()` zeroes. With the lift on, no hum at all.

use super::ja::JaState;
use super::linear::{
    matched_factor, padd, pdeg, peval, pmul_lin, roots, AnalogSection, Biquad, Poly, MAX_FACTORS,
    MAX_SEC, NP, W_REF,
};
use super::*;
use crate::dsp::ProcessSpec;
use num_complex::Complex;

/// Per-channel passive DI box.
#[derive(Clone, Debug)]
pub struct DiBox {
    /// Current settings.
    settings: DiSettings,
    /// Sample rate the stage runs at (the host rate inside the chain).
    fs: f64,

    /// Analog first/second-order factors of the linear circuit (recomputed
    /// when settings change).
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
    /// Small-signal magnetising inductance for the current ratio, henry.
    lm_henry: f64,
    /// Saturation flux linkage for the current ratio, volt-seconds.
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

    /// One period of the normalised hum waveform (unit rms), plus a guard point.
    hum_table: Vec<f64>,
    /// Hum phase in periods, [0, 1).
    hum_phase: f64,
    /// Hum phase increment per sample, periods.
    hum_inc: f64,
    /// Samples run with the lift on since `hum_phase` was last brought up
    /// to date (the mains runs on while it does not hum here).
    lifted_samples: u64,
}

impl Default for DiBox {
    fn default() -> Self {
        Self::new()
    }
}

impl DiBox {
    /// A DI box with default settings at 48 kHz (call `prepare` before use).
    pub fn new() -> Self {
        let mut s = Self {
            settings: DiSettings::default(),
            fs: 48_000.0,
            analog: [AnalogSection::default(); MAX_FACTORS],
            n_fac: 0,
            n_sec: 0,
            analog_gain: 1.0,
            sec: [Biquad::default(); MAX_SEC],
            vth_gain: 1.0,
            rth_ohms: 1.0,
            lm_henry: LM_HENRY_12,
            lambda_sat: LAMBDA_SAT_12,
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
            hum_table: build_hum_table(),
            hum_phase: 0.0,
            hum_inc: 0.0,
            lifted_samples: 0,
        };
        s.update_analog();
        s.update_digital();
        s
    }

    /// Prepare for a stream (the host rate inside the chain).
    pub fn prepare(&mut self, spec: &ProcessSpec) {
        self.set_sample_rate(spec.sample_rate);
        self.reset();
    }

    /// Change the sample rate.
    /// Recomputes the coefficients; never allocates. State is kept.
    pub fn set_sample_rate(&mut self, fs: f64) {
        let fs = if fs.is_finite() && fs > 1000.0 {
            fs
        } else {
            48_000.0
        };
        if fs != self.fs {
            self.fs = fs;
            self.update_digital();
        }
    }

    /// The sample rate the stage runs at.
    pub fn sample_rate(&self) -> f64 {
        self.fs
    }

    /// Current settings.
    pub fn settings(&self) -> DiSettings {
        self.settings
    }

    /// Apply settings; recomputes coefficients only when something changed.
    pub fn set_settings(&mut self, s: DiSettings) {
        if s == self.settings {
            return;
        }
        let old = self.settings;
        self.settings = s;
        if s.ratio != old.ratio
            || s.pad != old.pad
            || s.source != old.source
            || s.load_ohms != old.load_ohms
            || s.cable_m.to_bits() != old.cable_m.to_bits()
        {
            self.update_analog();
        }
        self.update_digital();
    }

    /// Latency in samples (none).
    pub fn latency_samples(&self) -> usize {
        0
    }

    /// Clear all state (demagnetised core, silent filters, hum phase zero).
    pub fn reset(&mut self) {
        for s in self.sec.iter_mut() {
            s.clear();
        }
        self.reset_core();
        self.k_count = 0;
        self.hum_phase = 0.0;
        self.lifted_samples = 0;
    }

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
    /// (volts out per volt of source), at the current rate.
    pub fn response(&self, freq_hz: f64) -> Complex<f64> {
        let w = 2.0 * std::f64::consts::PI * freq_hz / self.fs;
        let zi = Complex::from_polar(1.0, -w);
        let mut h = Complex::new(1.0, 0.0);
        for s in &self.sec[..self.n_sec] {
            h *= s.response(zi);
        }
        h
    }

    /// Peak |B|/B_sat of the core since the last call (or reset), and
    /// restart the peak. B is proportional to the flux linkage λ and
    /// λ_s = λ(M = Ms) with h = 0, so the ratio is |λ|/λ_s: about 1 in
    /// full saturation, above 1 by the (small) ε·h term beyond it.
    pub fn take_peak_saturation(&mut self) -> f64 {
        let r = self.flux_peak / self.lambda_sat;
        self.flux_peak = 0.0;
        if r.is_finite() {
            r
        } else {
            0.0
        }
    }

    /// Effective component values for the current settings:
    /// (n_t, Rp, R2, R', Ll', C', Lm, pad (Ra, Rb) or None).
    fn components(&self) -> Components {
        let s = self.settings;
        let n = s.ratio.ratio();
        let scale = n / 12.0;
        let rp = RP_OHMS_12 * scale;
        // Trim: loaded ratio into the rated load from 0 ohm is exactly n.
        let mut nt = n;
        for _ in 0..50 {
            nt = n * RATED_LOAD_OHMS / (rp / (nt * nt) + RSEC_OHMS + RATED_LOAD_OHMS);
        }
        let nt2 = nt * nt;
        let load = if s.load_ohms.is_finite() {
            s.load_ohms.clamp(50.0, 1e6)
        } else {
            RATED_LOAD_OHMS
        };
        let r2 = nt2 * RSEC_OHMS;
        let rl = nt2 * load;
        let pad = match s.pad {
            DiPad::Off => None,
            DiPad::Db15 | DiPad::Db30 => {
                let rb = if s.pad == DiPad::Db15 {
                    PAD15_RB_OHMS
                } else {
                    PAD30_RB_OHMS
                };
                let g = 10f64.powf(s.pad.nominal_db() / 20.0);
                // Exact at the reference: 100 ohm source, rated load, midband.
                let zin = rp + nt2 * (RSEC_OHMS + RATED_LOAD_OHMS);
                let x = rb * zin / (rb + zin);
                let u = zin / (REF_SOURCE_OHMS + zin);
                let ra = x / (g * u) - REF_SOURCE_OHMS - x;
                Some((ra, rb))
            }
        };
        Components {
            nt,
            rp,
            r2,
            rl,
            ll: nt2 * LL_SEC_HENRY,
            cl: C_SEC_FARAD / nt2,
            lm: LM_HENRY_12 * scale * scale,
            pad,
        }
    }

    /// Recompute the analog model (poles, gains, core constants).
    fn update_analog(&mut self) {
        let c = self.components();
        let (rs, ls, cs) = self.settings.source_parts();
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
        // shunt 1/(s Lm): multiply all by s Lm, I += V
        let vq = pmul_lin(&v, 0.0, c.lm * w);
        i = padd(&pmul_lin(&i, 0.0, c.lm * w), &v);
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
        self.lm_henry = c.lm;
        self.lambda_sat = LAMBDA_SAT_12 * self.settings.ratio.ratio() / 12.0;
        // I_a from the small-signal J-A flux slope at the demagnetised state,
        // so the core's small-signal inductance lambda / i_m is exactly Lm.
        let s0 = DI_CORE.small_signal_flux_slope();
        self.i_a = self.lambda_sat * s0 / self.lm_henry;
        self.g_vm_out = c.rl / (c.r2 + c.rl) / c.nt;
        self.wc = self.rth_ohms / self.lm_henry;
    }

    /// Recompute the digital coefficients for the current rate.
    fn update_digital(&mut self) {
        let fs = self.fs;
        let t = 1.0 / fs;
        let w_cap = 2.0 * std::f64::consts::PI * (16_000.0f64).min(0.3 * fs);
        // Discretise every factor on its own: the DC-zero factor with the
        // bilinear transform, the all-pole factors with the matched design.
        let pi = std::f64::consts::PI;
        let w1 = (2.0 * pi * 10_000.0 * t).min(0.45 * pi);
        let w2 = (2.0 * pi * 20_000.0 * t).min(0.9 * pi);
        let mut ns = 0;
        for k in 0..self.n_fac {
            let s = self.analog[k];
            if k == 0 {
                let ww = s.w0.clamp(1e-3, w_cap);
                let cc = ww / (ww * t * 0.5).tan() / W_REF; // p = cc (1 - z^-1)/(1 + z^-1)
                let g = self.analog_gain;
                let b = [g * (s.b[0] + s.b[1] * cc), g * (s.b[0] - s.b[1] * cc), 0.0];
                let a = [s.a[0] + s.a[1] * cc, s.a[0] - s.a[1] * cc, 0.0];
                self.sec[ns].set(b, a);
            } else {
                let q = if s.order == 2 {
                    s.a[0].sqrt() / s.a[1]
                } else {
                    0.0
                };
                let (b, a) = matched_factor(s.order, s.w0 * t, q, w1, w2);
                self.sec[ns].set(b, a);
            }
            ns += 1;
        }
        for q in self.sec[ns..].iter_mut() {
            *q = Biquad::default();
        }
        self.n_sec = ns;
        // Core.
        let kd = ((fs / CORE_RATE_HZ).floor() as u32).max(1);
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
        self.catch_up_mains();
        self.hum_inc = self.settings.mains_hz.hz() / fs;
    }

    /// One implicit step of the core coupled to the circuit (at fs / K):
    /// the trapezoidal rule on d(lambda)/dt = Vth - Rth i_m, with the linear
    /// circuit's flux and the last step's correction folded into `p`.
    #[inline]
    fn core_step(&mut self) {
        let a = self.core_a;
        let b = self.core_b;
        let beta = self.core_beta;
        let ls = self.lambda_sat;
        let ia = self.i_a;
        self.lambda_lin = a * self.lambda_lin + self.acc * self.dump_weight;
        self.acc = 0.0;
        let p = self.lambda_lin + a * self.nu - b * self.i_nl;
        // beta lambda + b i_m = p, with lambda = ls (eps h + m), i_m = ia h.
        let next = DI_CORE.step(self.core, beta * ls, b * ia, p);
        let h = next.h;
        let lambda = ls * DI_CORE.flux(next);
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

    /// Process one block in place (volts in, volts out).
    pub fn process(&mut self, block: &mut [f64]) {
        match self.n_sec {
            1 => self.run::<1>(block),
            2 => self.run::<2>(block),
            3 => self.run::<3>(block),
            4 => self.run::<4>(block),
            5 => self.run::<5>(block),
            _ => self.run::<6>(block),
        }
        if !self.settings.ground_lift {
            self.add_hum(block);
        } else {
            // The mains runs on whether it hums here or not: counted here,
            // brought up to date when the hum starts (`catch_up_mains`), so
            // the phase at a lift switch does not depend on the block size.
            self.lifted_samples += block.len() as u64;
        }
        // Belt and braces: a non-finite filter state resets the stage.
        if !self.sec.iter().all(Biquad::is_finite) {
            self.reset();
        }
    }

    /// The linear cascade plus the interpolated core correction, with the
    /// core stepped every `k_dec` samples (counted across blocks).
    fn run<const N: usize>(&mut self, block: &mut [f64]) {
        let mut sec = [Biquad::default(); N];
        sec.copy_from_slice(&self.sec[..N]);
        let mut pos = 0;
        while pos < block.len() {
            let left = (self.k_dec - self.k_count) as usize;
            let run = left.min(block.len() - pos);
            let (mut acc, mut corr, step) = (self.acc, self.corr, self.corr_step);
            for x in block[pos..pos + run].iter_mut() {
                let xin = if x.is_nan() {
                    0.0
                } else {
                    x.clamp(-INPUT_LIMIT_VOLTS, INPUT_LIMIT_VOLTS)
                };
                let mut y = xin;
                for s in sec.iter_mut() {
                    y = s.tick(y);
                }
                acc += xin;
                corr += step;
                *x = y + corr;
            }
            self.acc = acc;
            self.corr = corr;
            self.k_count += run as u32;
            pos += run;
            if self.k_count >= self.k_dec {
                self.k_count = 0;
                self.core_step();
                for s in sec.iter_mut() {
                    s.flush();
                }
            }
        }
        self.sec[..N].copy_from_slice(&sec);
    }

    /// Set the phase of the mains (0 … 1 of a cycle), which the hum follows:
    /// the mains is a clock outside the box, so a box that starts anew
    /// mid-stream joins it where it is.
    pub fn set_mains_phase(&mut self, phase: f64) {
        self.lifted_samples = 0;
        self.hum_phase = if phase.is_finite() {
            phase - phase.floor()
        } else {
            0.0
        };
    }

    /// Advance the hum phase over the samples run with the lift on: one
    /// product, the same for any split of those samples into blocks.
    fn catch_up_mains(&mut self) {
        if self.lifted_samples > 0 {
            let ph = self.hum_phase + self.lifted_samples as f64 * self.hum_inc;
            self.hum_phase = ph - ph.floor();
            self.lifted_samples = 0;
        }
    }

    /// Add the ground-loop hum (lift off).
    fn add_hum(&mut self, block: &mut [f64]) {
        self.catch_up_mains();
        let table = &self.hum_table[..=HUM_TABLE];
        let mut ph = self.hum_phase;
        let inc = self.hum_inc;
        for y in block.iter_mut() {
            let pos = ph * HUM_TABLE as f64;
            let i = (pos as usize).min(HUM_TABLE - 1);
            let fr = pos - i as f64;
            let (t0, t1) = (table[i], table[i + 1]);
            *y += HUM_VOLTS_RMS * (t0 + fr * (t1 - t0));
            ph += inc;
            if ph >= 1.0 {
                ph -= 1.0;
            }
        }
        self.hum_phase = ph;
    }
}

/// Component values for the current settings (primary-referred).
#[derive(Clone, Copy, Debug)]
struct Components {
    /// Effective (trimmed) turns ratio.
    nt: f64,
    /// Primary DC resistance, ohms.
    rp: f64,
    /// Secondary DC resistance referred to the primary, ohms.
    r2: f64,
    /// Load referred to the primary, ohms.
    rl: f64,
    /// Leakage inductance referred to the primary, henry.
    ll: f64,
    /// Secondary capacitance referred to the primary, farad.
    cl: f64,
    /// Small-signal magnetising inductance, henry.
    lm: f64,
    /// Pad resistors (series Ra, shunt Rb) when the pad is in.
    pad: Option<(f64, f64)>,
}

/// One period of the hum waveform, unit rms: mains fundamental plus harmonics
/// with a rectifier-buzz-like spectrum (odd and even, falling with order).
fn build_hum_table() -> Vec<f64> {
    // (harmonic, relative amplitude)
    const H: [(f64, f64); 13] = [
        (1.0, 1.0),
        (2.0, 0.35),
        (3.0, 0.6),
        (4.0, 0.15),
        (5.0, 0.35),
        (6.0, 0.08),
        (7.0, 0.2),
        (8.0, 0.05),
        (9.0, 0.12),
        (10.0, 0.03),
        (11.0, 0.08),
        (13.0, 0.05),
        (15.0, 0.03),
    ];
    let rms = (H.iter().map(|(_, a)| a * a).sum::<f64>() * 0.5).sqrt();
    let mut t = Vec::with_capacity(HUM_TABLE + 1);
    for i in 0..=HUM_TABLE {
        let ph = 2.0 * std::f64::consts::PI * i as f64 / HUM_TABLE as f64;
        let v: f64 = H.iter().map(|&(k, a)| a * (k * ph + 0.7 * k).sin()).sum();
        t.push(v / rms);
    }
    t
}
