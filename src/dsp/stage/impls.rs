//! [`Stage`] for every stage, each delegating to the stage's own public
//! methods, plus the settings structs of the stages whose controls are not
//! already one.

use super::Stage;
use crate::dsp::delay::DelayLine;
use crate::dsp::headphone::{HeadphoneAmp, HeadphoneSettings};
use crate::dsp::oversampling::{Oversampler, Quality};
use crate::dsp::transformer::{DiBox, DiSettings, MicTransformer, MicTransformerSettings};
use crate::dsp::tube::{Preamp, PreampSettings, TriodeStage, TubeType};
use crate::dsp::ProcessSpec;
use num_complex::Complex;
use std::f64::consts::PI;

/// Controls of one [`TriodeStage`] (its circuit is fixed when it is made).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TriodeSettings {
    /// The triode fitted.
    pub tube: TubeType,
    /// Character, −1 … +1: the cathode resistor × 2^(−bias) (see
    /// `PreampSettings::bias`).
    pub bias: f64,
}

impl Default for TriodeSettings {
    /// What `TriodeStage::new` starts with.
    fn default() -> Self {
        Self {
            tube: TubeType::Tube12AX7,
            bias: 0.0,
        }
    }
}

impl Stage for TriodeStage {
    type Settings = TriodeSettings;

    fn prepare(&mut self, spec: &ProcessSpec) {
        TriodeStage::prepare(self, spec);
    }

    fn reset(&mut self) {
        TriodeStage::reset(self);
    }

    fn set_settings(&mut self, s: TriodeSettings) {
        self.set_tube_bias(s.tube, s.bias);
    }

    fn process(&mut self, block: &mut [f64]) {
        TriodeStage::process(self, block);
    }

    fn response(&self, freq_hz: f64) -> Complex<f64> {
        TriodeStage::response(self, freq_hz)
    }

    fn latency_samples(&self) -> usize {
        0
    }
}

impl Stage for Preamp {
    type Settings = PreampSettings;

    fn prepare(&mut self, spec: &ProcessSpec) {
        Preamp::prepare(self, spec);
    }

    fn reset(&mut self) {
        Preamp::reset(self);
    }

    fn set_settings(&mut self, s: PreampSettings) {
        Preamp::set_settings(self, s);
    }

    fn process(&mut self, block: &mut [f64]) {
        Preamp::process(self, block);
    }

    fn response(&self, freq_hz: f64) -> Complex<f64> {
        self.small_signal_response(freq_hz)
    }

    fn latency_samples(&self) -> usize {
        0
    }
}

impl Stage for DiBox {
    type Settings = DiSettings;

    fn prepare(&mut self, spec: &ProcessSpec) {
        DiBox::prepare(self, spec);
    }

    fn reset(&mut self) {
        DiBox::reset(self);
    }

    fn set_settings(&mut self, s: DiSettings) {
        DiBox::set_settings(self, s);
    }

    fn process(&mut self, block: &mut [f64]) {
        DiBox::process(self, block);
    }

    fn response(&self, freq_hz: f64) -> Complex<f64> {
        DiBox::response(self, freq_hz)
    }

    fn latency_samples(&self) -> usize {
        DiBox::latency_samples(self)
    }
}

impl Stage for MicTransformer {
    type Settings = MicTransformerSettings;

    fn prepare(&mut self, spec: &ProcessSpec) {
        MicTransformer::prepare(self, spec);
    }

    fn reset(&mut self) {
        MicTransformer::reset(self);
    }

    fn set_settings(&mut self, s: MicTransformerSettings) {
        MicTransformer::set_settings(self, s);
    }

    fn process(&mut self, block: &mut [f64]) {
        MicTransformer::process(self, block);
    }

    fn response(&self, freq_hz: f64) -> Complex<f64> {
        MicTransformer::response(self, freq_hz)
    }

    fn latency_samples(&self) -> usize {
        MicTransformer::latency_samples(self)
    }
}

impl Stage for HeadphoneAmp {
    type Settings = HeadphoneSettings;

    fn prepare(&mut self, spec: &ProcessSpec) {
        HeadphoneAmp::prepare(self, spec);
    }

    fn reset(&mut self) {
        HeadphoneAmp::reset(self);
    }

    fn set_settings(&mut self, s: HeadphoneSettings) {
        HeadphoneAmp::set_settings(self, s);
    }

    fn process(&mut self, block: &mut [f64]) {
        HeadphoneAmp::process(self, block);
    }

    fn response(&self, freq_hz: f64) -> Complex<f64> {
        // Small-signal: the volume is linear below the swing limit.
        HeadphoneAmp::response(self, freq_hz) * self.volume_gain()
    }

    fn latency_samples(&self) -> usize {
        HeadphoneAmp::latency_samples(self)
    }
}

/// Controls of a [`DelayLine`] as a stage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DelaySettings {
    /// Delay in samples (clamped to the line's capacity).
    pub delay_samples: usize,
    /// A change crossfades from the old tap to the new one over this many
    /// samples; 0 jumps (for a signal nobody hears).
    pub fade_samples: usize,
}

impl Stage for DelayLine {
    type Settings = DelaySettings;

    /// The capacity was set when the line was made
    /// (`DelayLine::prepare(max_delay)`); the stream changes nothing of it.
    fn prepare(&mut self, _spec: &ProcessSpec) {
        DelayLine::reset(self);
    }

    fn reset(&mut self) {
        DelayLine::reset(self);
    }

    fn set_settings(&mut self, s: DelaySettings) {
        if s.fade_samples == 0 {
            self.set_delay(s.delay_samples);
        } else {
            self.set_delay_faded(s.delay_samples, s.fade_samples);
        }
    }

    /// Non-finite input is delayed as 0 V (the chain guards its input
    /// before its delay lines, so it skips this pass).
    fn process(&mut self, block: &mut [f64]) {
        for s in block.iter_mut() {
            if !s.is_finite() {
                *s = 0.0;
            }
        }
        DelayLine::process(self, block);
    }

    /// A pure delay, all of it latency.
    fn response(&self, _freq_hz: f64) -> Complex<f64> {
        Complex::new(1.0, 0.0)
    }

    fn latency_samples(&self) -> usize {
        self.delay()
    }
}

/// Controls of an [`Oversampler`] as a stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OversamplingSettings {
    /// Filter family.
    pub quality: Quality,
    /// Factor: 1 (pass-through), 2, 4, 8 or 16.
    pub factor: usize,
}

impl Default for OversamplingSettings {
    /// What `Oversampler::new` starts with: a pass-through.
    fn default() -> Self {
        Self {
            quality: Quality::Live,
            factor: 1,
        }
    }
}

/// An [`Oversampler`] as a stage: up- and downsampling with nothing in
/// between (the identity closure), i.e. the band-limiting and delay that the
/// stages run inside it see. A wrapper only because `response` needs the
/// rate, which the oversampler keeps to itself.
#[derive(Clone, Debug)]
pub struct OversamplerStage {
    /// The oversampler.
    oversampler: Oversampler,
    /// The host rate it was prepared for, Hz.
    sample_rate_hz: f64,
}

impl Default for OversamplerStage {
    fn default() -> Self {
        Self::new()
    }
}

impl OversamplerStage {
    /// A pass-through at 48 kHz, as `Oversampler::new`.
    pub fn new() -> Self {
        Self {
            oversampler: Oversampler::new(),
            sample_rate_hz: 48_000.0,
        }
    }
}

impl Stage for OversamplerStage {
    type Settings = OversamplingSettings;

    fn prepare(&mut self, spec: &ProcessSpec) {
        self.oversampler.prepare(spec);
        self.sample_rate_hz = spec.sample_rate;
    }

    fn reset(&mut self) {
        self.oversampler.reset();
    }

    fn set_settings(&mut self, s: OversamplingSettings) {
        self.oversampler.configure(s.quality, s.factor);
    }

    fn process(&mut self, block: &mut [f64]) {
        self.oversampler.process(block, |_| {});
    }

    /// `Oversampler::response` includes the latency; this takes it out.
    fn response(&self, freq_hz: f64) -> Complex<f64> {
        let w = 2.0 * PI * freq_hz / self.sample_rate_hz;
        let latency = self.oversampler.latency_samples() as f64;
        self.oversampler.response(freq_hz) * Complex::from_polar(1.0, w * latency)
    }

    fn latency_samples(&self) -> usize {
        self.oversampler.latency_samples()
    }
}
