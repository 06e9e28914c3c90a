//! The mic input transformer (`MicTransformer`): a 1:10 step-up in front of
//! the tube stages (Jensen JT-115K-E class, 150 Ω : 15 kΩ), whose secondary
//! termination sets the impedance the microphone sees (`in_z`). Mono; volts
//! in (the source's open-circuit voltage, primary side), volts out (across
//! the secondary, ≈ ×10). Runs at the host rate like the DI. Latency: 0
//! samples.
//!
//! # Equivalent circuit
//!
//! ```text
//!          source   primary                     secondary (real values)
//!   Vs ---/\/\/----/\/\/--+--------+    1:N    --UUUU----/\/\/---+-------+---> Vout
//!          Rs       Rp    |        |  ||    ||   Ll       Rsec   |       |
//!                        Lm(J-A)   Rc ||    ||                   C    R_term = in_z N^2
//!   ----------------------+--------+  ||    || -------------------+-------+
//! ```
//!
//! * `Rs` (`source_ohms`): the microphone's output resistance (0 = ideal).
//! * `Rp` = 19.7 Ω, `Rsec` = 2465 Ω: the JT-115K-E's DC resistances (data
//!   sheet, p. 2: RED–BRN and YEL–ORG).
//! * `Lm` = 4.84 H, the primary's small-signal magnetising inductance, and
//!   `Rc` = 14.8 kΩ, the core's eddy-current loss across it: fitted so that
//!   the data sheet's test circuit 1 (150 Ω generator, 150 kΩ load) gives
//!   its published input impedance, 1.40 kΩ at 1 kHz (150 kΩ through 1:10
//!   alone would be 1.5 kΩ: the difference is a ~15 kΩ shunt, core loss),
//!   and its published response at 20 Hz, −0.26 dB re 1 kHz (at −20 dBu).
//!   `Lm` is the demagnetised core's; the J-A core's incremental
//!   inductance rises with level (the data sheet's "−3 dB at 2.5 Hz" needs
//!   about twice this `Lm`; see Core material).
//! * `Ll` = 0.392 H (secondary side) and `C` = 5.68 pF (across the
//!   secondary): fitted to the published high end in test circuit 1,
//!   −0.13 dB at 20 kHz and −3 dB at 90 kHz (p. 1). They are effective
//!   values: a fit of the same circuit finds no other pair (a larger `C`
//!   peaks at 20 kHz; the 17 kΩ the secondary sees would put any 100 pF
//!   or more below 90 kHz), so Jensen's 205 pF "secondary to shield" is not
//!   lumped across the secondary here. They resonate at 1/(2π√(Ll C)) =
//!   107 kHz, `Z0` = √(Ll/C) = 263 kΩ: the top-end resonance. The
//!   termination damps it: with an ideal source, Q = 3.8 into 1.06 MΩ
//!   (in_z 10 kΩ: +11.6 dB at 105 kHz, +0.30 dB at 20 kHz), ≈ 1 into
//!   255 kΩ (in_z 2400: +1.0 dB at 73 kHz), and below 0.5 (two real
//!   poles, no peak) at in_z 1200 and below; into 32 kΩ (in_z 300) the
//!   leakage alone is a pole near 15 kHz, −4.4 dB at 20 kHz.
//! * `R_term` = in_z · N²: the preamp's input-impedance switch terminates
//!   the secondary so that the termination, reflected, is `in_z`. The mic
//!   sees that plus `Rp`, `Rsec`/N² and the leakage, in parallel with the
//!   core (`Lm`, `Rc`): at 1 kHz 337, 618, 1148, 2097 and 5905 Ω for in_z
//!   300 … 10 k (the core loss pulls the highest settings down).
//! * N: the turns are trimmed, as the DI's are (a manufacturer trims
//!   turns to the rated gain): the voltage ratio from an ideal source into
//!   the rated termination is exactly 10 (+20.00 dB) at mid-band. The
//!   rated termination is the data sheet's test load, 150 kΩ on 1:10,
//!   i.e. in_z = 1500 Ω. N solves `N · Z/(Rp + Z) · R_T/(Rsec + R_T) = 10`
//!   with `R_T = 1500 N²`, `Z = Rc || (Rsec/N² + 1500)`: N = 10.30. (The
//!   real JT-115K-E is 1:10.00 and gives 19.75 dB from its primary
//!   terminals into 150 kΩ; the issue asks for +20.00 dB.)
//!
//! # Equations and discretisation
//!
//! Referred to the primary (`nt` = 1/N), this is the DI's ladder with the
//! core loss `Rc` added and no pad: `transformer/model.rs` turns it into
//! `H(s) = k s / D(s)`, D of degree 3 (Lm; Ll with C), one digital section
//! per root: the magnetising pole with its zero at DC by the bilinear
//! transform, the leakage pair (or its two real poles) by the
//! magnitude-matched design of `transformer/linear.rs` (above 3/8 fs, as
//! the 107 kHz pair is at every host rate, a 3-tap FIR matched at DC,
//! 10 kHz and 20 kHz). The J-A core is coupled through the low-frequency
//! Thevenin equivalent seen by `Lm`, `(Rs + Rp) || (Rsec/N² + in_z) || Rc`,
//! decimated with integrate-and-dump (the DI's scheme, derived in
//! `model.rs`) to fs / floor(fs / 1 kHz), not the DI's 8 kHz: the flux
//! falls as 1/f, so the distortion lives below a few hundred Hz (at
//! −2.5 dBu THD is 1.03 % at 20 Hz, 0.009 % at 100 Hz), and the
//! interpolated correction reaches the harmonics of 20 Hz (to 180 Hz)
//! within 1 dB. That keeps the core's cost small beside the sections. `response()` is the cascade as implemented: the
//! small-signal response around the demagnetised core (the correction is
//! zero there), so it equals the rendered impulse response.
//!
//! # Core material (80 % nickel, JT-115K-E)
//!
//! J-A constants (normalised as in `ja.rs`): Ms = 6.0e5 A/m (µ0 Ms =
//! 0.75 T: 80 % NiFe saturates at 0.73 … 0.80 T), a = 3 A/m, k = 1 A/m
//! (the coercive field of annealed 80 % NiFe is 0.6 … 1.6 A/m), alpha' =
//! 0.05 and c = 0.95. The DI's core is the same alloy family with c = 0.9;
//! the mic core is more reversible, as a mic transformer's core is annealed
//! for low-level linearity: with c = 0.9 the hysteresis floor at −20 dBu,
//! 20 Hz is 0.08 … 0.18 % (k' = 1/3 … 0.05, each with `lambda_s`
//! recalibrated; a numpy prototype of the same coupled step), above
//! Jensen's curve; with c = 0.95 it is 0.04 %, inside the curve's
//! 0.015 … 0.07 % floor (hysteresis and noise). (c ≈ 0.5 would give the
//! level-dependent `Lm` the two LF figures suggest, but a 0.5 … 0.9 %
//! floor: the J-A model's minor loops are too fat for that.)
//!
//! `lambda_s` = 14.4 mV s (the primary's saturation flux linkage) is
//! calibrated so that THD at 20 Hz reaches 1 % at −2.5 dBu at the primary
//! in test circuit 1 (150 Ω source, in_z 1500 Ω): the data sheet's
//! "maximum 20 Hz input level, 1 % THD: −2.5 dBu typ". Measured there (48
//! kHz, `mic_input/tests.rs`), THD at 20 Hz: 0.038 % at −20 dBu, 0.19 % at
//! −10 dBu, 0.55 % at −5 dBu (Jensen's THD+N curve: about 0.4 %), 1.03 %
//! at −2.5 dBu; at 1 kHz and −10 dBu 0.00006 % (70 dB below 20 Hz: the
//! flux is 50 times smaller, and the core's current is 50 times smaller
//! against the source). A 10 Hz sine at 0 dBu traces a loop with h =
//! ±0.029 at zero flux (the coercive field, 0.09 A/m), enclosing 1.2 % of
//! its bounding box. From an ideal source the core sees only `Rp` and
//! the reflected termination, so it distorts about 8 times less.
//!
//! # Accuracy of the discretisation (against the circuit, 20 Hz … 20 kHz)
//!
//! Magnitude: < 0.035 dB at 44.1 and 48 kHz for in_z ≥ 1200, < 0.002 dB
//! at 96 and 192 kHz; at 44.1 kHz the in-band leakage pole of in_z 300
//! costs 0.19 dB near 17 kHz (0.11 dB at 48 kHz), where the circuit itself
//! is −3 dB. Phase: the matched sections are minimum phase, so the lag of
//! the poles above the band is missing; it amounts to a delay of at most
//! 6.9 µs (0.3 samples at 44.1 kHz; 11° at 20 kHz into 2400 Ω; below
//! 5 kHz 3.5° for in_z ≥ 1200, 8.6° into 300 Ω). A correction filter
//! could restore it only with latency.
//!
//! # Cost
//!
//! Measured (criterion, `benches/stages.rs`, `mic_xfmr`: stereo, 48 kHz,
//! 150 Ω into 2400 Ω, release build): 0.57 ms per second of stereo audio,
//! 5.9 ns per sample per channel; with the core switched off 0.44 ms, at
//! an 8 kHz core 1.65 ms. The cascade now runs a stereo pair in the two
//! lanes of one loop ([`MicTransformer::process_pair`], as the chain's
//! section runs it) through the build dispatch (the sections' loop-carried
//! multiply-add fused in the AVX2 + FMA build): 0.53 / 0.57 → 0.46 / 0.48
//! ms (min / median of 9 runs, alternated with the per-channel build).
//! The chain's drive gains around the transformer are applied in the
//! cascade's loop ([`MicTransformer::process_pair_scaled`]; the two
//! passes they were took 4 % of the chain in a profile). The issue's
//! budget for the mic and the transformer together, 15 % of the tube
//! chain (≈ 0.55 ms), is not met: in the chain, the dynamic mic and the
//! transformer add 1.49 ms to the tube chain's 3.53 (1.42×, minima of 7
//! runs; 1.80 ms, 1.51×, before the second pass, alternated in the same
//! run). Third pass: a profile of `mic_xfmr` showed the pair's cascade,
//! written in the `F2` array type, compiled to scalar instructions with
//! its states spilled to the stack; it now runs in the build's register
//! type (`transformer/model.rs`, bit for bit): 0.48 / 0.52 → 0.37 / 0.40
//! ms (4 runs alternated with the build before). The core's steps are
//! about a quarter of what is left (21 % of that benchmark's samples, at
//! 1 kHz). Fourth pass: each slope of the core's step with one division
//! instead of four (`ja.rs`; the step is a chain of dependent operations):
//! 315 → 310 µs (3 runs alternated with the build before, another
//! machine: the two figures above were taken on a slower one). Fifth: the
//! leakage's FIR section (the 107 kHz pair, or its 875 kHz pole into
//! in_z 300) multiplied into the magnetising section's numerator
//! (`linear.rs`), one section per sample less: 310 → 285 µs (2 runs
//! alternated); in the chain (dynamic mic on 300 Ω, three sections then
//! two) the time the mic and the transformer add to the tube chain fell
//! from 0.69–0.75 to 0.63–0.67 ms (`cargo bench --bench ratios`, 6 runs
//! alternated). Sixth: every multiply-add of a section fused in the FMA
//! build (only the loop-carried one was; `linear.rs`): 299 → 288 µs
//! (2 runs alternated). Seventh: a stereo pair's two core steps side by
//! side, phase by phase (`JaMaterial::steps`: each step is one chain of
//! dependent operations, two `exp` and six divisions, so the two
//! channels' chains overlap): 284–296 → 268–277 µs (7 runs alternated;
//! three, one of the build before and two of this one, read 317–338 µs
//! while the machine was busy).
//! Tried and
//! dropped: the sections' numerators multiplied out into one FIR run
//! across the pass, then only the denominators per sample (half the
//! operations per sample on paper): 315 → 350 µs, and the DI 1.82 →
//! 1.93 ms; the passes through memory cost more than the multiplies by
//! zero they save.
//!
//! Sources: Jensen Transformers, "JT-115K-E Microphone Input Transformer
//! 1:10", data sheet (jensen-transformers.com/wp-content/uploads/2014/08/
//! jt-115K-e1.pdf): DC resistances, turns, test circuit 1, input
//! impedance, output impedance (17.0 kΩ), gain (19.75 dB typ.), frequency
//! response, maximum input level at 20 Hz, THD+N vs level graph (about
//! 0.4 % at −5 dBu, 20 Hz). These figures were taken as an open LTspice
//! audio-transformer model project tabulates them, with the data sheet's
//! page references (its preset table and bench); the PDF itself was not
//! read here. 80 % NiFe properties (Bs, Hc): the mu-metal tables quoted
//! with the JT-115K-E in open transformer-model projects. Lundahl's LL1538 (1:5, 1 % at +10 dBu, 50 Hz) and Sowter's
//! 1:10 mic inputs have the same structure; their numbers are not used.

use super::ja::JaMaterial;
use super::model::{Ladder, TransformerModel};
use crate::dsp::ProcessSpec;
use num_complex::Complex;

#[cfg(test)]
mod tests;

/// Settings of the mic input transformer, in physical units.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MicTransformerSettings {
    /// What drives the primary: the mic's output resistance, ohms (0 for an
    /// ideal source; clamped to 0 … 100 k, non-finite as 0).
    pub source_ohms: f64,
    /// The impedance the mic sees, ohms: the preamp's switch, one of 300,
    /// 600, 1200, 2400, 10 000 (`mic::IN_Z_OHMS`); it sets the secondary
    /// termination in_z · N². Any value in 50 … 1 M works (1500 is the rated
    /// termination); non-finite is the default.
    pub in_z_ohms: f64,
}

impl Default for MicTransformerSettings {
    /// An ideal source into the mic stage's default input impedance.
    fn default() -> Self {
        Self {
            source_ohms: 0.0,
            in_z_ohms: DEFAULT_IN_Z_OHMS,
        }
    }
}

// --------------------------------------------------------------- constants --

/// Nominal turns ratio (secondary : primary) and voltage gain.
pub const NOMINAL_RATIO: f64 = 10.0;
/// The rated termination, as the impedance the mic sees (the data sheet's
/// 150 kΩ test load on 1:10).
pub const RATED_IN_Z_OHMS: f64 = 1500.0;
/// Default input impedance (the mic stage's default switch position).
const DEFAULT_IN_Z_OHMS: f64 = 2400.0;
/// Primary DC resistance (data sheet).
pub(super) const RP_OHMS: f64 = 19.7;
/// Secondary DC resistance (data sheet).
pub(super) const RSEC_OHMS: f64 = 2465.0;
/// Core-loss resistance across the primary (fit: Zi 1.40 kΩ at 1 kHz).
pub(super) const RC_OHMS: f64 = 14.8e3;
/// Small-signal magnetising inductance of the primary (fit: −0.26 dB at 20 Hz).
pub(super) const LM_HENRY: f64 = 4.84;
/// Leakage inductance, secondary side (fit: −0.13 dB at 20 kHz, −3 dB at 90 kHz).
pub(super) const LL_SEC_HENRY: f64 = 0.392;
/// Capacitance across the secondary (fit, with the leakage).
pub(super) const C_SEC_FARAD: f64 = 5.68e-12;
/// Saturation flux linkage of the primary, volt-seconds (1 % THD at
/// −2.5 dBu, 20 Hz, in test circuit 1).
pub(super) const LAMBDA_SAT: f64 = 0.0144;
/// Core rate target: the core runs at fs / floor(fs / CORE_RATE_HZ)
/// (1 kHz: the distortion lives below a few hundred Hz; see the header).
const CORE_RATE_HZ: f64 = 1_000.0;
/// Largest source resistance, ohms.
const MAX_SOURCE_OHMS: f64 = 100e3;

/// The mic transformer's core, 80 % nickel (see the header): Ms = 6.0e5
/// A/m, a = 3 A/m, k = 1 A/m, c = 0.95, alpha' = 0.05.
pub(super) const MIC_CORE: JaMaterial = JaMaterial {
    // a / Ms.
    eps: 3.0 / 6.0e5,
    // k / a.
    k: 1.0 / 3.0,
    // Reversible fraction.
    c: 0.95,
    // alpha Ms / a.
    alpha: 0.05,
};

/// The trimmed turns ratio N (secondary : primary): the ratio from an ideal
/// source into the rated termination is exactly `NOMINAL_RATIO` at
/// mid-band (resistive parts; the reactances change it by < 0.002 dB at
/// 1 kHz).
pub(super) fn trimmed_ratio() -> f64 {
    let mut n = NOMINAL_RATIO;
    for _ in 0..60 {
        let r_t = RATED_IN_Z_OHMS * n * n;
        let z = 1.0 / (1.0 / RC_OHMS + 1.0 / (RSEC_OHMS / (n * n) + RATED_IN_Z_OHMS));
        n = NOMINAL_RATIO / (z / (RP_OHMS + z) * (r_t / (RSEC_OHMS + r_t)));
    }
    n
}

/// Per-channel mic input transformer.
#[derive(Clone, Debug)]
pub struct MicTransformer {
    /// Current settings.
    settings: MicTransformerSettings,
    /// Sample rate the stage runs at (the host rate).
    fs: f64,
    /// Trimmed turns ratio N (secondary : primary).
    ratio: f64,
    /// The transformer: linear cascade and coupled core.
    model: TransformerModel,
}

impl Default for MicTransformer {
    fn default() -> Self {
        Self::new()
    }
}

impl MicTransformer {
    /// A mic transformer with default settings at 48 kHz (call `prepare`
    /// before use).
    pub fn new() -> Self {
        let mut s = Self {
            settings: MicTransformerSettings::default(),
            fs: 48_000.0,
            ratio: trimmed_ratio(),
            model: TransformerModel::new(MIC_CORE, CORE_RATE_HZ, LM_HENRY, LAMBDA_SAT),
        };
        s.model.design(&s.components());
        s.model.update_digital(s.fs);
        s
    }

    /// Prepare for a stream at the host rate.
    pub fn prepare(&mut self, spec: &ProcessSpec) {
        self.model.set_isa(spec.isa);
        let fs = spec.sample_rate;
        let fs = if fs.is_finite() && fs > 1000.0 {
            fs
        } else {
            48_000.0
        };
        if fs != self.fs {
            self.fs = fs;
            self.model.update_digital(fs);
        }
        self.reset();
    }

    /// Current settings.
    pub fn settings(&self) -> MicTransformerSettings {
        self.settings
    }

    /// Apply settings; recomputes coefficients only when something changed
    /// (the filter and core states carry over).
    pub fn set_settings(&mut self, s: MicTransformerSettings) {
        let same = |a: f64, b: f64| a.to_bits() == b.to_bits();
        if same(s.source_ohms, self.settings.source_ohms)
            && same(s.in_z_ohms, self.settings.in_z_ohms)
        {
            return;
        }
        self.settings = s;
        self.model.design(&self.components());
        self.model.update_digital(self.fs);
    }

    /// Latency in samples (none).
    pub fn latency_samples(&self) -> usize {
        0
    }

    /// Clear all state (demagnetised core, silent filters).
    pub fn reset(&mut self) {
        self.model.reset();
    }

    /// Small-signal response of the stage as implemented (volts across the
    /// secondary per volt of source), around the demagnetised core.
    pub fn response(&self, freq_hz: f64) -> Complex<f64> {
        self.model.response(self.fs, freq_hz)
    }

    /// Peak |lambda|/lambda_s of the core since the last call (or reset),
    /// and restart the peak (for a saturation meter).
    pub fn take_peak_saturation(&mut self) -> f64 {
        self.model.take_peak_saturation()
    }

    /// The top-end resonance of the linear model, (natural frequency Hz,
    /// Q), when leakage and capacitance make a complex pole pair (a low
    /// termination splits it into two real poles: `None`).
    pub fn resonance(&self) -> Option<(f64, f64)> {
        self.model.resonance()
    }

    /// Process one block in place (volts in, volts out).
    pub fn process(&mut self, block: &mut [f64]) {
        // Belt and braces: a non-finite filter state resets the stage
        // (`process_scaled`).
        self.process_scaled(block, (1.0, 1.0));
    }

    /// Process a stereo pair in place (volts in, volts out), both
    /// channels' cascades in the lanes of one loop when their settings
    /// and rates agree (each bit for bit its own `process`); else each on
    /// its own.
    pub fn process_pair(a: &mut Self, b: &mut Self, left: &mut [f64], right: &mut [f64]) {
        Self::process_pair_scaled(a, b, left, right, (1.0, 1.0));
    }

    /// [`Self::process`] with the input times `into` and the output times
    /// `out` in the same loop (bit for bit the two scalings as passes of
    /// their own around `process`; the chain's drive gains).
    pub fn process_scaled(&mut self, block: &mut [f64], (into, out): (f64, f64)) {
        self.model.process_scaled(block, (into, out));
        if !self.model.is_finite() {
            self.reset();
        }
    }

    /// [`Self::process_pair`] with the gains of [`Self::process_scaled`].
    pub fn process_pair_scaled(
        a: &mut Self,
        b: &mut Self,
        left: &mut [f64],
        right: &mut [f64],
        gains: (f64, f64),
    ) {
        TransformerModel::process_pair_scaled(&mut a.model, &mut b.model, left, right, gains);
        for t in [a, b] {
            if !t.model.is_finite() {
                t.reset();
            }
        }
    }

    /// The equivalent circuit for the current settings, referred to the
    /// primary.
    fn components(&self) -> Ladder {
        let s = self.settings;
        let rs = if s.source_ohms.is_finite() {
            s.source_ohms.clamp(0.0, MAX_SOURCE_OHMS)
        } else {
            0.0
        };
        let in_z = if s.in_z_ohms.is_finite() {
            s.in_z_ohms.clamp(50.0, 1e6)
        } else {
            DEFAULT_IN_Z_OHMS
        };
        let n = self.ratio;
        let nt = 1.0 / n;
        let nt2 = nt * nt;
        Ladder {
            nt,
            rp: RP_OHMS,
            r2: RSEC_OHMS * nt2,
            // R_term = in_z N^2, referred to the primary: in_z.
            rl: in_z,
            ll: LL_SEC_HENRY * nt2,
            cl: C_SEC_FARAD / nt2,
            lm: LM_HENRY,
            rc: Some(RC_OHMS),
            pad: None,
            rs,
            ls: 0.0,
            cs: 0.0,
            lambda_sat: LAMBDA_SAT,
        }
    }
}
