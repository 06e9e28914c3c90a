//! The headphone amp stage, one per channel: an amplifier (Thevenin
//! source: gain, then a voltage-swing limit) with output resistance Zo,
//! loaded by a headphone (`headphone/loads.rs` for the built-in loads,
//! `headphone/custom.rs` for a measured one). The interaction of Zo with
//! the load runs in `headphone/path.rs`; this file holds the stage around
//! it: settings and their smoothing, load crossfades, the custom path,
//! the swing limit and the meters.
//!
//! Zo is smoothed per sample (linear in ln(1 + Zo), so the level moves at
//! an even rate in dB); volume, rail and normalisation are smoothed too.
//! Switching loads crossfades between two paths over 20 ms. With no
//! parameter moving, a block runs the steady loop
//! (`headphone/amp/steady.rs`); ramps, crossfades and the custom path run
//! the general per-sample loop here, with the same arithmetic per sample,
//! so the output is bit-identical for any block partition.
//!
//! The swing limit is a symmetric soft knee into the rail, applied to the
//! amplifier's internal voltage (before Zo), C2-continuous at the knee and
//! never above the rail (no oversampling: it runs at the host rate, so the
//! curve is gentle rather than hard).
//!
//! Meters: the voltage across the headphone, the current into it
//! (Y_b v for a built-in load, (V_amp - V_headphone) / Zo for a custom
//! one) and the real power, the mean of v * i; exponential means with a
//! 300 ms time constant.

use super::custom::{self, CustomFilter};
use super::fit::{self, LATENCY};
use super::loads::{design_loads, LoadDesign, LoadDesigns};
use super::path::Path;
use super::{HeadphoneModel, HeadphoneSettings, C64};
use crate::dsp::simd::Isa;
use crate::dsp::ProcessSpec;

mod steady;

/// Meter readings of the current signal at the headphone (exponential
/// window, 300 ms time constant).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct HeadphoneLevels {
    /// RMS voltage across the headphone, volts.
    pub v_rms_volts: f64,
    /// RMS current into the headphone, amperes.
    pub i_rms_amps: f64,
    /// Real power delivered, watts: the mean of v * i (exact for the current
    /// signal, no assumption about its frequency).
    pub power_watts: f64,
    /// Power expressed in mW for display.
    pub power_mw: f64,
}

/// Mixing time for load changes and custom-filter swaps.
const FADE_MS: f64 = 20.0;

/// The headphone amp stage, one per channel.
pub struct HeadphoneAmp {
    /// Current sample rate.
    fs: f64,
    /// Settings last applied.
    settings: HeadphoneSettings,
    /// Every built-in load designed at `fs` (made in `prepare`).
    designs: LoadDesigns,
    /// The path running the current built-in load.
    active: Path,
    /// The path of the previous load while a load change crossfades.
    fading: Path,
    /// Remaining samples of the built-in crossfade (0 = none).
    fade_left: usize,
    /// Length of a crossfade in samples.
    fade_len: usize,
    /// Custom-load convolver (input history) and filters.
    custom: custom::Convolver,
    /// Delay line aligning the (zero-latency) custom path with the
    /// built-in loads' LATENCY samples.
    custom_delay: [f64; LATENCY],
    /// Read/write position in `custom_delay`.
    custom_pos: usize,
    /// Mix of the custom path: 0 = built-in load, 1 = custom load.
    custom_mix: f64,
    /// Target of `custom_mix`.
    custom_mix_target: f64,
    /// Smoothed output impedance, ohms.
    zo: f64,
    /// Target output impedance, ohms.
    zo_target: f64,
    /// ln(1 + zo / 1 ohm): Zo ramps linearly in this domain over 20 ms,
    /// so the level changes at an even rate in dB (no click at the start
    /// of a change). Also the coordinate of the correction grid.
    zo_log: f64,
    /// Per-sample step of `zo_log` while ramping.
    zo_log_step: f64,
    /// Smoothed input gain (volume), linear.
    gain: f64,
    /// Target input gain.
    gain_target: f64,
    /// Smoothed post gain (level normalisation), linear.
    post: f64,
    /// Target post gain.
    post_target: f64,
    /// Per-sample smoothing coefficient for parameters.
    smooth: f64,
    /// Rail voltage of the swing limit (smoothed like the gain).
    rail: f64,
    /// Rail voltage asked for.
    rail_target: f64,
    /// Step of `ln(rail)` per sample while it moves.
    rail_log_step: f64,
    /// Metering coefficients (300 ms): (weight of the new value, weight
    /// kept of the old mean), see `meter`.
    meter_coeff: (f64, f64),
    /// Mean square voltage.
    ms_v: f64,
    /// Mean square current.
    ms_i: f64,
    /// Mean power.
    mean_p: f64,
    /// The build the steady loop runs in (from `prepare`'s spec). The loop
    /// has no multiply-add to fuse, so every build computes the same bits;
    /// the AVX2 one only has wider vectors.
    isa: Isa,
}

impl Default for HeadphoneAmp {
    fn default() -> Self {
        Self::new()
    }
}

impl HeadphoneAmp {
    /// A stage with default settings; call `prepare` before `process`.
    pub fn new() -> Self {
        let flat = LoadDesign::flat();
        HeadphoneAmp {
            fs: 0.0,
            settings: HeadphoneSettings::default(),
            designs: LoadDesigns {
                sample_rate_hz: 0.0,
                loads: Vec::new(),
            },
            active: Path::new(0, &flat),
            fading: Path::new(0, &flat),
            fade_left: 0,
            fade_len: 1,
            custom: custom::Convolver::new(),
            custom_delay: [0.0; LATENCY],
            custom_pos: 0,
            custom_mix: 0.0,
            custom_mix_target: 0.0,
            zo: 0.1,
            zo_target: 0.1,
            zo_log: 0.1f64.ln_1p(),
            zo_log_step: 0.0,
            gain: 1.0,
            gain_target: 1.0,
            post: 1.0,
            post_target: 1.0,
            smooth: 1.0,
            rail: 10.0,
            rail_target: 10.0,
            rail_log_step: 0.0,
            meter_coeff: (1.0, 0.0),
            ms_v: 0.0,
            ms_i: 0.0,
            mean_p: 0.0,
            isa: Isa::portable(),
        }
    }

    /// Designs every built-in load for this rate (a few ms; skipped when
    /// the rate is unchanged) and allocates the custom convolver. Allocates.
    pub fn prepare(&mut self, spec: &ProcessSpec) {
        let fs = spec.sample_rate;
        if fs != self.designs.sample_rate_hz || self.designs.loads.is_empty() {
            self.designs = design_loads(fs);
        }
        self.finish_prepare(spec);
    }

    /// Like `prepare`, but takes the load designs from `designs` (made
    /// once by `design_loads` for all channels) when its rate matches.
    /// Allocates.
    pub fn prepare_with(&mut self, spec: &ProcessSpec, designs: &LoadDesigns) {
        if designs.sample_rate_hz == spec.sample_rate && !designs.loads.is_empty() {
            self.designs = designs.clone();
        }
        self.prepare(spec);
    }

    fn finish_prepare(&mut self, spec: &ProcessSpec) {
        self.isa = spec.isa;
        let fs = spec.sample_rate;
        self.fs = fs;
        self.fade_len = ((FADE_MS * 1e-3 * fs) as usize).max(1);
        self.smooth = smoothing_coeff(FADE_MS / 4.0, fs);
        let mc = smoothing_coeff(300.0, fs);
        self.meter_coeff = (mc, 1.0 - mc);
        self.custom.prepare(fs);
        let s = self.settings;
        self.apply(s, true);
        self.reset();
    }

    /// Latency of the stage in samples (the same at every rate and for
    /// every load, custom included). `response` excludes it.
    pub fn latency_samples(&self) -> usize {
        LATENCY
    }

    /// Clears all state and snaps smoothed parameters to their targets.
    pub fn reset(&mut self) {
        self.active.reset();
        self.fading.reset();
        self.fade_left = 0;
        self.custom.reset();
        self.custom_delay = [0.0; LATENCY];
        self.custom_pos = 0;
        self.custom_mix = self.custom_mix_target;
        self.zo = self.zo_target;
        self.zo_log = self.zo.ln_1p();
        self.gain = self.gain_target;
        self.rail = self.rail_target;
        self.post = self.post_target;
        self.update_paths();
        self.ms_v = 0.0;
        self.ms_i = 0.0;
        self.mean_p = 0.0;
    }

    /// Applies new settings; never allocates.
    pub fn set_settings(&mut self, s: HeadphoneSettings) {
        if s != self.settings {
            self.apply(s, false);
        }
    }

    fn apply(&mut self, s: HeadphoneSettings, force: bool) {
        let model_changed = s.model != self.settings.model || force;
        self.settings = s;
        self.zo_target = sanitize(s.amp_z_ohms, 0.0, fit::GRID_MAX_OHMS, 0.1);
        self.zo_log_step = (self.zo_target.ln_1p() - self.zo_log) / self.fade_len as f64;
        self.gain_target = 10f64.powf(sanitize(s.volume_db, -200.0, 100.0, 0.0) / 20.0);
        // The rail moves like the gain (a jump of the limit would click).
        self.rail_target = sanitize(s.swing_volts, 1e-6, 1e6, 10.0);
        if force {
            self.rail = self.rail_target;
        }
        self.rail_log_step = (self.rail_target / self.rail).ln() / self.fade_len as f64;
        self.custom_mix_target = if s.model == HeadphoneModel::Custom {
            1.0
        } else {
            0.0
        };
        if self.custom_mix_target > 0.0 && self.custom_mix == 0.0 {
            // The custom path was idle: start from a clean input history.
            self.custom.reset();
            self.custom_delay = [0.0; LATENCY];
        }
        if model_changed && s.model != HeadphoneModel::Custom && !self.designs.loads.is_empty() {
            let idx = s.model.index();
            let new = Path::new(idx, &self.designs.loads[idx]);
            if force {
                self.active = new;
            } else {
                self.fading = self.active;
                self.active = new;
                self.fade_left = self.fade_len;
            }
        }
        self.post_target = self.normalize_gain(self.zo_target);
        if force {
            self.zo = self.zo_target;
            self.zo_log = self.zo.ln_1p();
            self.post = self.post_target;
            self.gain = self.gain_target;
            self.custom_mix = self.custom_mix_target;
        }
        self.update_paths();
    }

    fn normalize_gain(&self, zo: f64) -> f64 {
        if !self.settings.normalize {
            return 1.0;
        }
        let h = self.divider_response(zo, 1000.0);
        let m = h.norm();
        if m > 1e-9 && m.is_finite() {
            1.0 / m
        } else {
            1.0
        }
    }

    /// Response of the current load's divider at `zo` (latency removed).
    fn divider_response(&self, zo: f64, freq_hz: f64) -> C64 {
        if self.settings.model == HeadphoneModel::Custom {
            self.custom.response_current(freq_hz)
        } else {
            match self.designs.loads.get(self.active.load) {
                Some(d) => d.response(zo, freq_hz, self.fs),
                None => C64::new(1.0, 0.0),
            }
        }
    }

    /// Loop gain and correction taps of both paths at the current Zo.
    fn update_paths(&mut self) {
        let (zo, u) = (self.zo, self.zo_log);
        if let Some(d) = self.designs.loads.get(self.active.load) {
            self.active.set_zo(d, zo, u);
        }
        if let Some(d) = self.designs.loads.get(self.fading.load) {
            self.fading.set_zo(d, zo, u);
        }
    }

    /// Hands a new custom filter (made by `design_custom` off the audio
    /// thread) to the stage without allocating. The stage crossfades from
    /// the filter it was using over 20 ms; that one is kept for the fade
    /// and the filter it displaces (the one from the swap before) is
    /// returned, so the caller can drop it off the audio thread. Returns an
    /// empty filter (nothing to free) the first time.
    pub fn swap_custom(&mut self, new: CustomFilter) -> CustomFilter {
        let old = self.custom.swap(new, self.fade_len);
        if self.settings.normalize {
            self.post_target = self.normalize_gain(self.zo_target);
        }
        old
    }

    /// The volume's linear gain (target), before the swing limit: what
    /// [`Self::response`] leaves out.
    pub fn volume_gain(&self) -> f64 {
        self.gain_target
    }

    /// Digital response of the stage's load divider at the current
    /// (target) settings, including normalisation but not volume, with
    /// the stage's latency (`latency_samples`) removed.
    pub fn response(&self, freq_hz: f64) -> C64 {
        self.divider_response(self.zo_target, freq_hz) * self.post_target
    }

    /// Worst fit error (dB, complex relative) of the built-in loads'
    /// correction inside 20 Hz..20 kHz at the prepared rate (diagnostics).
    pub fn worst_fit_error_db(&self) -> f64 {
        self.designs
            .loads
            .iter()
            .map(|d| 20.0 * d.fit_error.ln_1p() / std::f64::consts::LN_10)
            .fold(0.0, f64::max)
    }

    /// Meter readings of the current signal at the headphone.
    pub fn levels(&self) -> HeadphoneLevels {
        HeadphoneLevels {
            v_rms_volts: self.ms_v.max(0.0).sqrt(),
            i_rms_amps: self.ms_i.max(0.0).sqrt(),
            power_watts: self.mean_p,
            power_mw: self.mean_p * 1e3,
        }
    }

    /// Processes one block in place (volts in, volts at the headphone out,
    /// `latency_samples()` later).
    pub fn process(&mut self, block: &mut [f64]) {
        if self.designs.loads.is_empty() {
            return;
        }
        let steady = self.zo == self.zo_target
            && self.gain == self.gain_target
            && self.rail == self.rail_target
            && self.post == self.post_target
            && self.fade_left == 0
            && self.custom_mix == self.custom_mix_target
            && self.custom_mix == 0.0;
        if steady {
            self.process_steady(block);
        } else {
            self.process_general(block);
        }
        self.active.flush();
        self.fading.flush();
        let bad = !(self.ms_v.is_finite() && self.ms_i.is_finite() && self.mean_p.is_finite());
        // A non-short-circuit fold: vectorises (one pass, no branches).
        let finite = block.iter().fold(true, |ok, v| ok & v.is_finite());
        if bad || !finite {
            self.reset();
            block.iter_mut().for_each(|v| *v = 0.0);
        }
    }

    /// Everything else: ramps, crossfades, the custom path.
    fn process_general(&mut self, block: &mut [f64]) {
        let k = self.smooth;
        let custom_only = self.custom_mix == 1.0 && self.custom_mix_target == 1.0;
        for x in block.iter_mut() {
            // Parameter smoothing (snaps when close, so it goes idle).
            if self.zo != self.zo_target {
                let target_log = self.zo_target.ln_1p();
                self.zo_log += self.zo_log_step;
                let passed = (self.zo_log - target_log) * self.zo_log_step >= 0.0;
                if passed || self.zo_log_step == 0.0 {
                    self.zo_log = target_log;
                    self.zo = self.zo_target;
                } else {
                    self.zo = self.zo_log.exp_m1();
                }
                self.update_paths();
            }
            if self.gain != self.gain_target {
                self.gain += k * (self.gain_target - self.gain);
                if (self.gain - self.gain_target).abs() <= 1e-12 * self.gain_target {
                    self.gain = self.gain_target;
                }
            }
            if self.rail != self.rail_target {
                // Straight in dB over the fade, like Zo.
                let log = self.rail.ln() + self.rail_log_step;
                let passed = (log - self.rail_target.ln()) * self.rail_log_step >= 0.0;
                self.rail = if passed || self.rail_log_step == 0.0 {
                    self.rail_target
                } else {
                    log.exp()
                };
            }
            if self.post != self.post_target {
                self.post += k * (self.post_target - self.post);
                if (self.post - self.post_target).abs() <= 1e-12 * self.post_target {
                    self.post = self.post_target;
                }
            }
            let input = if x.is_finite() { *x } else { 0.0 };
            let drive = soft_rail(input * self.gain, self.rail);
            let (mut y, mut v, mut i) = (0.0, 0.0, 0.0);
            if !custom_only {
                let (ya, va, ia) = self.active.tick(drive);
                (y, v, i) = (ya, va, ia);
                if self.fade_left > 0 {
                    let (yf, vf, i_f) = self.fading.tick(drive);
                    let t = self.fade_left as f64 / self.fade_len as f64;
                    y += t * (yf - y);
                    v += t * (vf - v);
                    i += t * (i_f - i);
                    self.fade_left -= 1;
                }
            }
            if self.custom_mix != self.custom_mix_target {
                let step = 1.0 / self.fade_len as f64;
                self.custom_mix = if self.custom_mix < self.custom_mix_target {
                    (self.custom_mix + step).min(self.custom_mix_target)
                } else {
                    (self.custom_mix - step).max(self.custom_mix_target)
                };
            }
            if self.custom_mix > 0.0 || self.custom_mix_target > 0.0 {
                let vc = self.custom.tick(drive);
                let delayed = self.custom_delay[self.custom_pos];
                self.custom_delay[self.custom_pos] = vc;
                self.custom_pos = (self.custom_pos + 1) % LATENCY;
                y += self.custom_mix * (delayed - y);
                v += self.custom_mix * (vc - v);
                // The current through Zo is (V_amp - V_headphone) / Zo; at
                // Zo = 0 the custom path carries no current estimate.
                let ic = if self.zo > 0.0 {
                    (drive - vc) / self.zo
                } else {
                    0.0
                };
                i += self.custom_mix * (ic - i);
            }
            let out = y * self.post;
            let mc = self.meter_coeff;
            self.ms_v = meter(self.ms_v, out * out, mc);
            self.ms_i = meter(self.ms_i, i * i, mc);
            self.mean_p = meter(self.mean_p, v * i, mc);
            *x = out;
        }
    }
}

fn sanitize(x: f64, lo: f64, hi: f64, fallback: f64) -> f64 {
    if x.is_finite() {
        x.clamp(lo, hi)
    } else {
        fallback
    }
}

/// One step of an exponential mean: `mean * keep + new * weight` with
/// `mc = (weight, keep)`, `keep = 1 - weight` (two operations deep, so the
/// meters never lengthen the per-sample dependency chain).
#[inline(always)]
fn meter(mean: f64, new: f64, mc: (f64, f64)) -> f64 {
    mean * mc.1 + new * mc.0
}

/// Per-sample smoothing coefficient for a time constant at a rate.
fn smoothing_coeff(time_ms: f64, fs: f64) -> f64 {
    1.0 - (-1000.0 / (time_ms * fs)).exp()
}

/// Fraction of the rail where the soft knee starts.
const KNEE_FRACTION: f64 = 0.6;

/// Symmetric soft limit into +-rail: identity below knee * rail, then
/// knee + (rail - knee) * tanh((|x| - knee) / (rail - knee)). Slope 1 and
/// zero curvature at the knee (C2), asymptotic to the rail.
#[inline]
pub(super) fn soft_rail(x: f64, rail: f64) -> f64 {
    let knee = KNEE_FRACTION * rail;
    let a = x.abs();
    if a <= knee {
        x
    } else {
        let w = rail - knee;
        (knee + w * ((a - knee) / w).tanh()).copysign(x)
    }
}
