//! The mic source: a microphone's output impedance Z_mic(f) loaded by the
//! preamp's input impedance Z_in (a resistance, the positions of a real
//! impedance switch). The preamp input gets
//!
//! ```text
//!   V_in = V_mic · Z_in / (Z_in + Z_mic(jw))
//! ```
//!
//! Units: volts in (the mic's open-circuit voltage), volts out (at the
//! preamp's input terminals). Latency: `LATENCY` = 8 samples at every
//! rate, for every model, `None` included (there the stage is an exact
//! 8-sample delay), so switching the mic never changes the chain's
//! latency.
//!
//! # The networks (values in `mic/networks.rs`, referred to the pins)
//!
//! * `Dynamic` (Shure SM57/SM58 class): Z = R_dc + (L_e || R_e) + Z_m,
//!   Z_m the diaphragm's motional impedance, a parallel R-L-C
//!   (Thiele/Small electrical analogue, as the headphone loads),
//!   L_m = R_m / (w0 Q), C_m = Q / (w0 R_m). R_dc 140 Ω, L_e 40 mH with
//!   an eddy-loss R_e 450 Ω across it, R_m 180 Ω at f0 150 Hz, Q 1.4.
//!   |Z|: 143 Ω at 20 Hz, a bump to 325 Ω at 150 Hz, a dip to 186 Ω at
//!   300 Hz, 303 Ω at 1 kHz, 557 Ω at 5 kHz, 588 Ω at 20 kHz.
//!   Sources: Shure's SM57/SM58 specification, "rated impedance 150 Ω
//!   (300 Ω actual)" (the 1 kHz value); Bill Whitlock's measurements of an
//!   SM57 (ProAudio list, 2021-06-12, from the research for Jensen
//!   AN-005): "under 150 Ω at very low frequencies to over 300 Ω at
//!   resonance — and continued to rise at higher frequencies"; an SM57
//!   clone's sweep (EEVblog forum, "What is inductance of typical dynamic
//!   microphone?", 2023) "a lot flatter and more resistive than I
//!   expected", hence the lossy inductance (L_e || R_e) that levels off
//!   instead of a pure L rising 6 dB/octave. The coil sits behind its own
//!   transformer; its values are given referred through it, the windings'
//!   resistance lumped into R_dc.
//! * `Ribbon` (passive, Royer R-121 / Coles 4038 class, rated 300 Ω):
//!   Z = R_w + n² (R_r + Z_r) + s L_k. A ribbon of R_r 0.19 Ω and its
//!   resonance Z_r (parallel R-L-C: 0.612 Ω peak at 30 Hz, Q 2; a ribbon
//!   is tuned to the bottom of the band and mass-controlled above it)
//!   stepped up by a 1:35 transformer (n² = 1225), plus the secondary's
//!   winding resistance R_w 60 Ω and leakage inductance L_k 2.5 mH.
//!   |Z|: 1043 Ω at the 30 Hz peak, 334 Ω at 100 Hz, 293 Ω at 1 kHz,
//!   332 Ω at 10 kHz, 429 Ω at 20 kHz. Sources: Royer Labs, "Preamplifier
//!   input impedance" (FAQ): a 300 Ω ribbon needs 1200–1500 Ω or more, a
//!   low input impedance gives "rolled off bass and slightly diminished
//!   highs" (the peak and the rise here); D. Self, *Small Signal Audio
//!   Design*, 3rd ed., ch. 17: the step-up transformer's output is
//!   "usually around 200–300 Ω"; AEA, "How impedance affects ribbon
//!   microphones": too low an input impedance limits the low end; the
//!   leakage inductances in series with each winding reduce the highs into
//!   a low load (itecnotes.com, "Impedance and frequency response"). The
//!   ribbon's resistance, the ratio, the resonance's height and Q and the
//!   leakage are chosen within those descriptions (no published curve
//!   was found), so the numbers are typical, not one microphone's.
//! * `Condenser` (transformerless FET output): Z = R_out = 100 Ω, flat.
//!   Sources: Rode NT1-A, output impedance 100 Ω (mynewmicrophone.com,
//!   "Microphone impedance"); transformerless outputs are typically
//!   50–200 Ω. The output's coupling capacitors (hundreds of µF) are left
//!   out: they put a corner below 0.1 Hz, under 0.04 dB at 20 Hz into
//!   300 Ω, and would give the stage a pole with a seconds-long tail.
//! * `None`: the ideal source of the chain without this stage.
//!
//! # Discretisation (`mic/design.rs`, on `crate::dsp::divider`)
//!
//! H(s) = Z_in D / (Z_in D + N) for Z_mic = N / D goes through the
//! bilinear transform (at most 2 biquads; stable because Z_in + Z_mic is
//! positive real), then the correction N_c(z) / (1 + 0.85 z^-1)^2 with a
//! 20-tap FIR N_c fitted so that the whole is z^-8 H(jw) on 20 Hz .. 20
//! kHz (the headphone amp's fit, with more taps and latency). Why more:
//! the ribbon's leakage inductance gives H a real pole near 38 kHz into
//! 300 Ω and takes H to 0 at infinity, which the bilinear transform puts
//! at Nyquist, so at 44.1 kHz the correction must rise steeply over the
//! last octave. The headphone's 12 taps at 4 samples leave 0.07 dB there,
//! 16 at 6 leave 0.04 dB (into 1200 Ω, fitted to 20 kHz), 20 at 8 leave
//! 0.03 dB (a numpy prototype of the same fit, confirmed by the tests).
//! Every model × every `IN_Z_OHMS` is designed in `prepare` (15 designs, a few
//! ms), so `set_settings` only copies one: the switch is abrupt (filter states
//! carry over; all designs are stable, so any transient is bounded) and the
//! chain crossfades around it. Measured against Z_in/(Z_in + Z_mic)
//! (`mic/tests.rs`, every mic × every Z_in, rendered and `response()`,
//! 241 points 20 Hz .. 20 kHz): worst 0.025 dB / 0.15° at 44.1 kHz,
//! 0.0012 dB / 0.014° at 48 kHz, 0.0006 dB / 0.004° at 96 kHz (target
//! ±0.05 dB, ±2°; docs/DESIGN.md, § Mic source).
//!
//! Run time: per sample, the biquads (transposed direct form II), the
//! 20-tap FIR and the double pole; non-finite input is taken as 0 V, and
//! the feedback states are flushed of values below 1e-30 every 256
//! samples (counted in samples, so the output does not depend on the
//! block size).

use crate::dsp::divider::{double_pole, FitGrid};
use crate::dsp::stage::Stage;
use crate::dsp::ProcessSpec;
use design::{MicDesign, MAX_SECTIONS};
use num_complex::Complex;

mod design;
mod networks;
#[cfg(test)]
mod tests;

/// The microphone feeding the preamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MicModel {
    /// An ideal source (zero impedance): the stage is a pure delay.
    #[default]
    None,
    /// Moving coil behind its transformer (SM57/SM58 class).
    Dynamic,
    /// Passive ribbon through its step-up transformer (R-121/4038 class).
    Ribbon,
    /// Active transformerless output (FET condenser).
    Condenser,
}

/// The models with an impedance, in design order.
const MODELS: [MicModel; 3] = [MicModel::Dynamic, MicModel::Ribbon, MicModel::Condenser];

/// The preamp's input impedance switch positions, ohms.
pub const IN_Z_OHMS: [f64; 5] = [300.0, 600.0, 1200.0, 2400.0, 10_000.0];

/// Position of the default input impedance (2400 Ω) in `IN_Z_OHMS`.
const DEFAULT_IN_Z: usize = 3;

/// Settings of the mic source, in physical units.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MicSettings {
    /// The microphone.
    pub model: MicModel,
    /// The preamp's input impedance, ohms: one of `IN_Z_OHMS` (any other
    /// value takes the nearest position, in ratio; non-finite takes the
    /// default).
    pub in_z_ohms: f64,
}

impl Default for MicSettings {
    fn default() -> Self {
        MicSettings {
            model: MicModel::None,
            in_z_ohms: IN_Z_OHMS[DEFAULT_IN_Z],
        }
    }
}

/// Position in `IN_Z_OHMS` nearest `ohms` (in ratio).
pub fn in_z_index(ohms: f64) -> usize {
    if !(ohms > 0.0 && ohms.is_finite()) {
        return DEFAULT_IN_Z;
    }
    (0..IN_Z_OHMS.len())
        .min_by(|&a, &b| {
            let d = |i: usize| (ohms / IN_Z_OHMS[i]).ln().abs();
            d(a).total_cmp(&d(b))
        })
        .unwrap_or(DEFAULT_IN_Z)
}

/// Samples of delay the correction is fitted with: the stage's latency,
/// for every model (see the module header).
pub const LATENCY: usize = 8;
/// Taps of the correction FIR numerator.
const TAPS: usize = 20;
/// Top of the correction's fit, Hz: all of the audio band, at every
/// rate (at 44.1 kHz the last 155 Hz matter: the ribbon's response bends
/// there).
const FIT_TOP_HZ: f64 = 20_000.0;

/// Samples between denormal flushes of the feedback states.
const FLUSH_EVERY: u32 = 256;

/// The mic source stage, one per channel.
pub struct MicSource {
    /// Rate the designs were made for, Hz (0 before `prepare`).
    fs: f64,
    /// Settings last applied.
    settings: MicSettings,
    /// Every model × every `IN_Z_OHMS` designed at `fs`
    /// (`MODELS.len() * IN_Z_OHMS.len()`, model-major; made in `prepare`).
    designs: Vec<MicDesign>,
    /// The design running (a copy of one of `designs`).
    design: MicDesign,
    /// Transposed direct-form II states of the biquads.
    state: [[f64; 2]; MAX_SECTIONS],
    /// Input history of the correction FIR, twice over: the sample k
    /// back from the newest is at `hist[pos + k]` (each sample is written
    /// at `pos` and `pos + TAPS`, `pos` counting down), so the taps read
    /// one contiguous slice and nothing shifts. For `None`, the delay line.
    hist: [f64; 2 * TAPS],
    /// Where the newest sample is in `hist`, 0..TAPS.
    pos: usize,
    /// States of the fixed double pole (previous two outputs).
    post: [f64; 2],
    /// Samples since the last denormal flush.
    since_flush: u32,
}

impl Default for MicSource {
    fn default() -> Self {
        Self::new()
    }
}

impl MicSource {
    /// An unprepared stage (a pure delay until `prepare`).
    pub fn new() -> Self {
        MicSource {
            fs: 0.0,
            settings: MicSettings::default(),
            designs: Vec::new(),
            design: MicDesign::PASSTHROUGH,
            state: [[0.0; 2]; MAX_SECTIONS],
            hist: [0.0; 2 * TAPS],
            pos: 0,
            post: [0.0; 2],
            since_flush: 0,
        }
    }

    /// Picks the design of the current settings (no allocation).
    fn select(&mut self) {
        let s = self.settings;
        self.design = match MODELS.iter().position(|m| *m == s.model) {
            Some(m) if !self.designs.is_empty() => {
                self.designs[m * IN_Z_OHMS.len() + in_z_index(s.in_z_ohms)]
            }
            _ => MicDesign::PASSTHROUGH,
        };
    }

    /// Worst complex relative error of the running design's correction
    /// fit on its points (0 for the ideal source): a diagnostic.
    pub fn fit_error(&self) -> f64 {
        self.design.fit_error
    }

    /// One sample of the divider (biquads, FIR, double pole).
    #[inline(always)]
    fn tick(&mut self, x: f64) -> f64 {
        let x = if x.is_finite() { x } else { 0.0 };
        let d = &self.design;
        if d.passthrough {
            return self.push(x)[LATENCY];
        }
        let mut v = x;
        for (s, st) in d.sections.iter().zip(self.state.iter_mut()) {
            let y = s[0] * v + st[0];
            st[0] = s[1] * v - s[3] * y + st[1];
            st[1] = s[2] * v - s[4] * y;
            v = y;
        }
        let taps = d.taps;
        let acc: f64 = taps.iter().zip(self.push(v)).map(|(t, h)| t * h).sum();
        double_pole(acc, &mut self.post)
    }

    /// Writes `v` as the newest sample of the history and returns the
    /// history, newest first.
    #[inline(always)]
    fn push(&mut self, v: f64) -> &[f64; TAPS] {
        self.pos = if self.pos == 0 {
            TAPS - 1
        } else {
            self.pos - 1
        };
        self.hist[self.pos] = v;
        self.hist[self.pos + TAPS] = v;
        self.hist[self.pos..self.pos + TAPS]
            .try_into()
            .expect("TAPS long")
    }

    /// Sets feedback states far below audibility to exactly zero.
    fn flush(&mut self) {
        let tiny = |v: &mut f64| {
            if v.abs() < 1e-30 {
                *v = 0.0;
            }
        };
        self.state.iter_mut().flatten().for_each(tiny);
        self.post.iter_mut().for_each(tiny);
        self.hist.iter_mut().for_each(tiny);
    }
}

impl Stage for MicSource {
    type Settings = MicSettings;

    fn prepare(&mut self, spec: &ProcessSpec) {
        let fs = spec.sample_rate;
        if fs != self.fs || self.designs.is_empty() {
            let grid = FitGrid::<TAPS>::new(fs, LATENCY, FIT_TOP_HZ);
            self.designs = MODELS
                .iter()
                .flat_map(|&m| IN_Z_OHMS.iter().map(move |&r| (m, r)))
                .map(|(m, r)| MicDesign::new(m, r, &grid, fs))
                .collect();
            self.fs = fs;
        }
        self.select();
        self.reset();
    }

    fn reset(&mut self) {
        self.state = [[0.0; 2]; MAX_SECTIONS];
        self.hist = [0.0; 2 * TAPS];
        self.pos = 0;
        self.post = [0.0; 2];
        self.since_flush = 0;
    }

    fn set_settings(&mut self, settings: MicSettings) {
        if settings != self.settings {
            self.settings = settings;
            self.select();
        }
    }

    fn process(&mut self, block: &mut [f64]) {
        for x in block.iter_mut() {
            *x = self.tick(*x);
            self.since_flush += 1;
            if self.since_flush == FLUSH_EVERY {
                self.since_flush = 0;
                self.flush();
            }
        }
    }

    fn response(&self, freq_hz: f64) -> Complex<f64> {
        self.design.response(freq_hz, self.fs)
    }

    fn latency_samples(&self) -> usize {
        LATENCY
    }
}
