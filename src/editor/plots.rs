//! The editor's plots, drawn with egui's painter, and the models behind them.
//!
//! - [`ResponseModel`]: the chain's small-signal magnitude response, from the
//!   stages' own `response()` functions (DI box, tube preamp, oversampler,
//!   headphone amp), evaluated on stage objects built in the editor thread
//!   from the parameter snapshot. Recomputed only when the settings change.
//!   The chain's product of stage responses is exact for the linear parts;
//!   the auto-gain (a slow loudness control) is not part of it, so the curve
//!   is shown relative to its 1 kHz value and the 1 kHz gain is printed.
//! - [`Spectrum`]: a live spectrum of the output samples the audio thread
//!   pushes through the ring: the last [`FFT_LEN`] samples, Hann window,
//!   realfft, in dB relative to a full-scale sine (a full-scale sine reads
//!   0 dB: the Hann window's coherent gain 1/2 is divided out).
//! - The tube's static transfer curve and the headphone's |Z|(f) with the
//!   resulting deviation 20·log10|Z/(Z+Zo)|, normalised to 1 kHz.

use std::sync::Arc;

use egui::{Color32, Pos2, Rect, Stroke, Ui, Vec2};
use num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

use crate::dsp::chain::ChainSettings;
use crate::dsp::headphone::{HeadphoneAmp, HeadphoneModel};
use crate::dsp::oversampling::Oversampler;
use crate::dsp::transformer::DiBox;
use crate::dsp::tube::{Preamp, PreampSettings};
use crate::dsp::{db_to_gain, ProcessSpec, MAX_BLOCK};

/// Length of the spectrum's FFT.
pub const FFT_LEN: usize = 4096;

/// Frequencies (Hz) of the response plots: log-spaced, 20 Hz … 20 kHz.
pub fn log_freqs(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| 20.0 * 1000f64.powf(i as f64 / (n - 1) as f64))
        .collect()
}

/// One curve of a plot.
pub struct Series<'a> {
    /// (x, y) points in data units.
    pub points: &'a [(f64, f64)],
    /// Line colour.
    pub colour: Color32,
}

/// Axes of a plot.
pub struct Axes {
    /// x range in data units.
    pub x: (f64, f64),
    /// y range in data units.
    pub y: (f64, f64),
    /// Log x axis (frequency plots).
    pub log_x: bool,
    /// Grid lines on x.
    pub x_grid: Vec<(f64, String)>,
    /// Grid lines on y.
    pub y_grid: Vec<(f64, String)>,
}

impl Axes {
    /// A 20 Hz … 20 kHz log axis with y from `y.0` to `y.1` and grid lines
    /// every `y_step`.
    pub fn audio(y: (f64, f64), y_step: f64) -> Self {
        let x_grid = [
            (20.0, "20"),
            (100.0, "100"),
            (1000.0, "1k"),
            (10_000.0, "10k"),
            (20_000.0, "20k"),
        ]
        .iter()
        .map(|&(f, t)| (f, t.to_string()))
        .collect();
        let mut y_grid = Vec::new();
        let mut v = (y.0 / y_step).ceil() * y_step;
        while v <= y.1 + 1e-9 {
            y_grid.push((v, format!("{v:+.0}")));
            v += y_step;
        }
        Self {
            x: (20.0, 20_000.0),
            y,
            log_x: true,
            x_grid,
            y_grid,
        }
    }

    fn to_screen(&self, rect: Rect, x: f64, y: f64) -> Pos2 {
        let fx = if self.log_x {
            (x.max(1e-9).ln() - self.x.0.ln()) / (self.x.1.ln() - self.x.0.ln())
        } else {
            (x - self.x.0) / (self.x.1 - self.x.0)
        };
        let fy = (y - self.y.0) / (self.y.1 - self.y.0);
        Pos2::new(
            rect.left() + rect.width() * fx as f32,
            rect.bottom() - rect.height() * fy.clamp(-0.02, 1.02) as f32,
        )
    }
}

/// Draw a titled plot of `size` points.
pub fn plot(ui: &mut Ui, title: &str, size: Vec2, axes: &Axes, series: &[Series<'_>]) -> Rect {
    ui.vertical(|ui| {
        ui.label(egui::RichText::new(title).strong());
        let (outer, _) = ui.allocate_exact_size(size, egui::Sense::hover());
        let painter = ui.painter_at(outer);
        let rect = Rect::from_min_max(
            outer.min + Vec2::new(30.0, 4.0),
            outer.max - Vec2::new(6.0, 14.0),
        );
        painter.rect_filled(outer, 3.0, ui.visuals().extreme_bg_color);
        let grid = Stroke::new(1.0, ui.visuals().faint_bg_color.gamma_multiply(2.0));
        let text = ui.visuals().weak_text_color();
        let font = egui::FontId::proportional(10.0);
        for (x, label) in &axes.x_grid {
            let p = axes.to_screen(rect, *x, axes.y.0);
            painter.line_segment(
                [Pos2::new(p.x, rect.top()), Pos2::new(p.x, rect.bottom())],
                grid,
            );
            painter.text(
                Pos2::new(p.x, rect.bottom() + 1.0),
                egui::Align2::CENTER_TOP,
                label,
                font.clone(),
                text,
            );
        }
        for (y, label) in &axes.y_grid {
            let p = axes.to_screen(rect, axes.x.0, *y);
            painter.line_segment(
                [Pos2::new(rect.left(), p.y), Pos2::new(rect.right(), p.y)],
                grid,
            );
            painter.text(
                Pos2::new(rect.left() - 3.0, p.y),
                egui::Align2::RIGHT_CENTER,
                label,
                font.clone(),
                text,
            );
        }
        let clip = painter.with_clip_rect(rect.expand(1.0));
        for s in series {
            let pts: Vec<Pos2> = s
                .points
                .iter()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .map(|&(x, y)| axes.to_screen(rect, x, y))
                .collect();
            if pts.len() > 1 {
                clip.add(egui::Shape::line(pts, Stroke::new(1.5, s.colour)));
            }
        }
        outer
    })
    .inner
}

/// Stage objects built in the editor thread to evaluate the chain's
/// small-signal response for the current settings.
pub struct ResponseModel {
    /// Rate the stages are prepared for.
    sample_rate: f64,
    /// Oversampling factor the preamp is prepared for.
    factor: usize,
    di: DiBox,
    preamp: Preamp,
    oversampler: Oversampler,
    headphone: HeadphoneAmp,
    /// Settings of the cached curve.
    cached: Option<ChainSettings>,
    /// 20 log10 |H| relative to 1 kHz, at `freqs`.
    pub curve_db: Vec<(f64, f64)>,
    /// |H| at 1 kHz, dB (volts out per volt in, auto-gain excluded).
    pub gain_1k_db: f64,
}

impl ResponseModel {
    /// Stages prepared at `sample_rate` (allocates: editor thread only).
    pub fn new(sample_rate: f64) -> Self {
        let spec = ProcessSpec {
            sample_rate,
            max_block: MAX_BLOCK,
        };
        let mut di = DiBox::new();
        di.prepare(&spec);
        let mut oversampler = Oversampler::new();
        oversampler.prepare(&spec);
        let mut headphone = HeadphoneAmp::new();
        headphone.prepare(&spec);
        Self {
            sample_rate,
            factor: 0,
            di,
            preamp: Preamp::new(),
            oversampler,
            headphone,
            cached: None,
            curve_db: Vec::new(),
            gain_1k_db: 0.0,
        }
    }

    /// Rate the model runs at.
    pub fn sample_rate(&self) -> f64 {
        self.sample_rate
    }

    /// Recompute the curve when `s` differs from the cached settings.
    pub fn update(&mut self, s: &ChainSettings) {
        if self.cached.as_ref() == Some(s) {
            return;
        }
        self.cached = Some(*s);
        let factor = s.oversampling_factor();
        self.oversampler.configure(s.quality, factor);
        if factor != self.factor {
            self.factor = factor;
            self.preamp.prepare(&ProcessSpec {
                sample_rate: self.sample_rate * factor as f64,
                max_block: MAX_BLOCK * factor,
            });
        }
        self.di.set_settings(s.di);
        self.preamp.set_settings(PreampSettings {
            output_db: 0.0,
            ..s.preamp
        });
        self.headphone.set_settings(s.headphone);
        let h = |f: f64| self.response(s, f);
        let reference = 20.0 * h(1000.0).norm().log10();
        let curve = log_freqs(160)
            .into_iter()
            .map(|f| (f, 20.0 * h(f).norm().log10() - reference))
            .collect();
        self.gain_1k_db = reference;
        self.curve_db = curve;
    }

    /// The chain's small-signal response at `freq_hz` (volts out per volt
    /// at the chain input, before the output trim).
    fn response(&self, s: &ChainSettings, freq_hz: f64) -> Complex<f64> {
        let mut h = Complex::new(s.preamp_input_gain(), 0.0);
        if s.di_on {
            h *= self.di.response(freq_hz);
        }
        if s.pre_on {
            h *= self.preamp.small_signal_response(freq_hz)
                * self.oversampler.response(freq_hz)
                * db_to_gain(s.preamp.output_db);
        }
        if s.hp_on {
            h *= self.headphone.response(freq_hz);
        }
        h
    }

    /// Twice the mic-input voltage at which the transfer curve has covered
    /// 90 % of its positive swing (the interesting part of the curve).
    pub fn transfer_span(&self) -> f64 {
        let y0 = self.preamp.transfer_curve(0.0);
        let top = self.preamp.transfer_curve(10.0) - y0;
        let mut x = 1e-6;
        while x < 10.0 {
            if (self.preamp.transfer_curve(x) - y0).abs() >= 0.9 * top.abs() {
                return 2.0 * x;
            }
            x *= 1.1;
        }
        10.0
    }

    /// The tube's transfer curve for the cached settings: (mic input volts,
    /// output volts) over ±`span_volts`.
    pub fn transfer_curve(&self, span_volts: f64) -> Vec<(f64, f64)> {
        (0..=200)
            .map(|i| {
                let x = span_volts * (i as f64 / 100.0 - 1.0);
                (x, self.preamp.transfer_curve(x))
            })
            .collect()
    }
}

/// (x, y) points of a curve.
pub type Curve = Vec<(f64, f64)>;

/// |Z|(f) of a headphone model and the level deviation 20·log10|Z/(Z+Zo)|
/// relative to 1 kHz, at `freqs`.
pub fn headphone_curves(model: HeadphoneModel, zo_ohms: f64, freqs: &[f64]) -> (Curve, Curve) {
    let divider = |f: f64| {
        let z = model.impedance(f);
        (z / (z + zo_ohms)).norm()
    };
    let reference = divider(1000.0);
    let z = freqs
        .iter()
        .map(|&f| (f, model.impedance(f).norm()))
        .collect();
    let dev = freqs
        .iter()
        .map(|&f| (f, 20.0 * (divider(f) / reference).log10()))
        .collect();
    (z, dev)
}

/// The live output spectrum.
pub struct Spectrum {
    /// The latest `FFT_LEN` samples (a circular buffer).
    history: Vec<f32>,
    /// Next write position in `history`.
    pos: usize,
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
    input: Vec<f32>,
    output: Vec<Complex<f32>>,
    /// Smoothed spectrum in dBFS (full-scale sine = 0 dB), per bin.
    pub db: Vec<f32>,
}

impl Default for Spectrum {
    fn default() -> Self {
        Self::new()
    }
}

impl Spectrum {
    /// An empty analyser.
    pub fn new() -> Self {
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(FFT_LEN);
        let window = (0..FFT_LEN)
            .map(|i| {
                let x = std::f32::consts::PI * i as f32 / FFT_LEN as f32;
                x.sin() * x.sin()
            })
            .collect();
        let input = fft.make_input_vec();
        let output = fft.make_output_vec();
        Self {
            history: vec![0.0; FFT_LEN],
            pos: 0,
            fft,
            window,
            input,
            output,
            db: vec![-150.0; FFT_LEN / 2 + 1],
        }
    }

    /// Add samples (oldest first).
    pub fn push(&mut self, samples: impl IntoIterator<Item = f32>) {
        for s in samples {
            self.history[self.pos] = if s.is_finite() { s } else { 0.0 };
            self.pos = (self.pos + 1) % FFT_LEN;
        }
    }

    /// Transform the latest `FFT_LEN` samples; `smoothing` in 0..1 blends
    /// with the previous spectrum (0 = none).
    pub fn analyse(&mut self, smoothing: f32) {
        for (i, v) in self.input.iter_mut().enumerate() {
            *v = self.history[(self.pos + i) % FFT_LEN] * self.window[i];
        }
        if self.fft.process(&mut self.input, &mut self.output).is_err() {
            return;
        }
        // A full-scale sine of amplitude 1 gives |X| = N/4 with a Hann
        // window (N/2 for a rectangular one, times the coherent gain 1/2).
        let scale = 4.0 / FFT_LEN as f32;
        for (d, c) in self.db.iter_mut().zip(&self.output) {
            let v = 20.0 * (c.norm() * scale).max(1e-9).log10();
            *d = smoothing * *d + (1.0 - smoothing) * v;
        }
    }

    /// (frequency, dB) points for plotting at `sample_rate`.
    pub fn points(&self, sample_rate: f64) -> Vec<(f64, f64)> {
        let bin_hz = sample_rate / FFT_LEN as f64;
        self.db
            .iter()
            .enumerate()
            .skip(1)
            .map(|(i, &d)| (i as f64 * bin_hz, f64::from(d)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_scale_sine_reads_zero_db_at_its_frequency() {
        let fs = 48_000.0;
        // A bin-centred frequency: bin 128.
        let f = 128.0 * fs / FFT_LEN as f64;
        let mut s = Spectrum::new();
        s.push((0..FFT_LEN).map(|n| (2.0 * std::f64::consts::PI * f * n as f64 / fs).sin() as f32));
        s.analyse(0.0);
        assert!((s.db[128]).abs() < 0.05, "{}", s.db[128]);
        // Hann sidelobes: far bins are far down.
        assert!(s.db[400] < -100.0, "{}", s.db[400]);
    }

    #[test]
    fn resistive_divider_gives_no_deviation_and_a_32_ohm_can_on_120_ohm_does() {
        let freqs = log_freqs(200);
        // Planar: nearly resistive, tiny deviation from a 10 ohm source.
        let (_, dev) = headphone_curves(HeadphoneModel::Planar, 0.0, &freqs);
        assert!(dev.iter().all(|&(_, d)| d.abs() < 1e-9));
        // DESIGN.md: a 32 ohm closed-back from 120 ohm deviates 2.9 dB.
        let (_, dev) = headphone_curves(HeadphoneModel::Closed32, 120.0, &freqs);
        let (lo, hi) = dev.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &(_, d)| {
            (lo.min(d), hi.max(d))
        });
        assert!(((hi - lo) - 2.90).abs() < 0.2, "{}", hi - lo);
    }

    #[test]
    fn all_stages_out_is_flat_and_the_pad_reads_minus_20_db() {
        let mut m = ResponseModel::new(48_000.0);
        let mut s = ChainSettings::default();
        m.update(&s);
        assert!(m.gain_1k_db.abs() < 1e-9);
        assert!(m.curve_db.iter().all(|&(_, d)| d.abs() < 1e-9));
        s.pad = true;
        m.update(&s);
        assert!((m.gain_1k_db + 20.0).abs() < 1e-9, "{}", m.gain_1k_db);
    }

    #[test]
    fn the_di_reads_its_turns_ratio_at_1_khz() {
        let mut m = ResponseModel::new(48_000.0);
        let s = ChainSettings {
            di_on: true,
            ..Default::default()
        };
        m.update(&s);
        // 12:1 into its rated load: -21.58 dB (DESIGN.md), within the
        // transformer's loading tolerance.
        assert!(
            (m.gain_1k_db - 20.0 * (1.0f64 / 12.0).log10()).abs() < 0.5,
            "{}",
            m.gain_1k_db
        );
    }
}
