//! The DI box stage (`DiBox`): the source network, the pad, the
//! transformer's linear model and its load as one filter cascade, the
//! Jiles-Atherton core (`transformer/ja.rs`) coupled to the circuit, and
//! ground-loop hum. The circuit becomes a `Ladder` here
//! (`DiBox::components`); the cascade, the core and the per-sample update
//! are the shared `TransformerModel` (`transformer/model.rs`, which
//! derives the coupling), with the maths in `transformer/linear.rs`.
//!
//! The chain runs this stage at the host rate, not oversampled: its only
//! non-linearity is the core, which is driven by the flux (low-passed by
//! nature) and already runs decimated (at fs / floor(fs / 8 kHz)), so
//! oversampling would cost CPU and buy nothing. Tests check gain, pads and
//! flatness at 44.1 and 48 kHz.
//!
//! A stereo pair with the same settings runs in the lanes of one loop
//! ([`DiBox::process_pair`], as the chain runs it): the two cascades in
//! one register, the two cores' steps side by side (each step is a chain
//! of dependent operations, and at 8 kHz they are most of this stage's
//! time), each channel bit for bit its own `process`. Measured
//! (`benches/stages.rs`, stereo at 48 kHz, 3 runs): 2.31–2.41 ms per
//! second of stereo channel by channel (`di`), 1.22–1.26 ms as a pair
//! (`di_pair`); the chain with the DI in 2.64–2.77 → 1.65–1.68 ms.
//!
//! # Hum
//!
//! With the ground lift off, a ground loop adds hum at the output (the cable
//! shield between DI and preamp): the mains fundamental plus odd and even
//! harmonics to the 15th with a rectifier-buzz-like spectrum, -65 dBu rms in
//! total (a typical audible-but-low ground-loop level). The phase comes from a
//! sample counter that `reset()` zeroes. With the lift on, no hum at all.

use super::model::{Ladder, TransformerModel};
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
    /// The transformer: linear cascade and coupled core.
    model: TransformerModel,

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

/// The DI's tests reach into the core's state (flux, field) through the
/// model.
#[cfg(test)]
impl std::ops::Deref for DiBox {
    type Target = TransformerModel;

    fn deref(&self) -> &TransformerModel {
        &self.model
    }
}

#[cfg(test)]
impl std::ops::DerefMut for DiBox {
    fn deref_mut(&mut self) -> &mut TransformerModel {
        &mut self.model
    }
}

impl DiBox {
    /// A DI box with default settings at 48 kHz (call `prepare` before use).
    pub fn new() -> Self {
        let mut s = Self {
            settings: DiSettings::default(),
            fs: 48_000.0,
            model: TransformerModel::new(DI_CORE, CORE_RATE_HZ, LM_HENRY_12, LAMBDA_SAT_12),
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
        self.model.set_isa(spec.isa);
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
        self.model.reset();
        self.hum_phase = 0.0;
        self.lifted_samples = 0;
    }

    /// Small-signal transfer function of the digital filter as implemented
    /// (volts out per volt of source), at the current rate.
    pub fn response(&self, freq_hz: f64) -> Complex<f64> {
        self.model.response(self.fs, freq_hz)
    }

    /// Peak |B|/B_sat of the core since the last call (or reset), and
    /// restart the peak. B is proportional to the flux linkage λ and
    /// λ_s = λ(M = Ms) with h = 0, so the ratio is |λ|/λ_s: about 1 in
    /// full saturation, above 1 by the (small) ε·h term beyond it.
    pub fn take_peak_saturation(&mut self) -> f64 {
        self.model.take_peak_saturation()
    }

    /// The equivalent circuit for the current settings, referred to the
    /// primary: trimmed turns, copper, load, leakage, capacitance, Lm, pad
    /// and source.
    fn components(&self) -> Ladder {
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
        let (rs, ls, cs) = s.source_parts();
        Ladder {
            nt,
            rp,
            r2,
            rl,
            ll: nt2 * LL_SEC_HENRY,
            cl: C_SEC_FARAD / nt2,
            lm: LM_HENRY_12 * scale * scale,
            rc: None,
            pad,
            rs,
            ls,
            cs,
            lambda_sat: LAMBDA_SAT_12 * n / 12.0,
        }
    }

    /// Recompute the analog model (poles, gains, core constants).
    fn update_analog(&mut self) {
        let c = self.components();
        self.model.design(&c);
    }

    /// Recompute the digital coefficients for the current rate.
    fn update_digital(&mut self) {
        self.model.update_digital(self.fs);
        self.catch_up_mains();
        self.hum_inc = self.settings.mains_hz.hz() / self.fs;
    }

    /// Process one block in place (volts in, volts out).
    pub fn process(&mut self, block: &mut [f64]) {
        self.model.process(block);
        self.finish(block);
    }

    /// Process a stereo pair in place: both channels' transformers in the
    /// lanes of one loop, their cores stepped side by side
    /// (`TransformerModel::process_pair_scaled`, when the two run alike,
    /// as two boxes with the same settings do), each channel bit for bit
    /// its own [`Self::process`].
    pub fn process_pair(a: &mut Self, b: &mut Self, left: &mut [f64], right: &mut [f64]) {
        TransformerModel::process_pair_scaled(&mut a.model, &mut b.model, left, right, (1.0, 1.0));
        a.finish(left);
        b.finish(right);
    }

    /// After the transformer: the hum, and the reset of a stage whose
    /// filters went non-finite.
    fn finish(&mut self, block: &mut [f64]) {
        if !self.settings.ground_lift {
            self.add_hum(block);
        } else {
            // The mains runs on whether it hums here or not: counted here,
            // brought up to date when the hum starts (`catch_up_mains`), so
            // the phase at a lift switch does not depend on the block size.
            self.lifted_samples += block.len() as u64;
        }
        // Belt and braces: a non-finite filter state resets the stage.
        if !self.model.is_finite() {
            self.reset();
        }
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
