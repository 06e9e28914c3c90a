//! The editor's plots, drawn with egui's painter, and the models behind them.
//!
//! - [`ResponseModel`]: the chain's small-signal magnitude response, from the
//!   stages' own `response()` functions (DI box, tube preamp, oversampler,
//!   headphone amp), evaluated on stage objects built in the editor thread
//!   from the parameter snapshot. Recomputed only when the settings change.
//!   The chain's product of stage responses is exact for the linear parts;
//!   the curve is shown relative to its 1 kHz value, and the title gives
//!   the track-to-track gain at 1 kHz ([`ResponseModel::track_gain_1k_db`]):
//!   dBFS in to dBFS out as the chain applies it, i.e. the input conversion
//!   (calibration, source level, input trim), DI, pad, the preamp's
//!   small-signal gain, the auto-gain's static compensation when it is on,
//!   the preamp's output level, the headphone amp, and the output
//!   conversion with the output trim. The auto-gain's slow loudness
//!   correction on top of its static compensation depends on the signal and
//!   is not included, nor are mix, compare and bypass (the wet path's gain).
//! - [`Spectrum`]: a live spectrum of the output samples the audio thread
//!   pushes through the ring: the last [`FFT_LEN`] samples, Hann window,
//!   realfft, in dB relative to a full-scale sine (a full-scale sine reads
//!   0 dB: the Hann window's coherent gain 1/2 is divided out).
//! - The tube's static transfer curve and the headphone's |Z|(f) with the
//!   resulting deviation 20·log10|Z/(Z+Zo)|, normalised to 1 kHz: of the
//!   chosen model, or of the measured curve (`hp_model` = custom): the
//!   points saved in the state (what the audio side designs from), or,
//!   before they are saved, the file that [`MeasuredCurve`] reads in the
//!   editor thread with the plugin's own reader (`read_curve_file`),
//!   cached by path, modification time and the saved curve's revision.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use egui::{Color32, Pos2, Rect, Stroke, Ui, Vec2};
use num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

use crate::dsp::chain::{input_response, transformer_drive, ChainSettings, PreampType};
use crate::dsp::headphone::{HeadphoneAmp, HeadphoneModel, ImpedanceCurve};
use crate::dsp::mic::{MicModel, MicSource};
use crate::dsp::oversampling::Oversampler;
use crate::dsp::solid::SolidPreamp;
use crate::dsp::stage::Stage;
use crate::dsp::transformer::{DiBox, MicTransformer};
use crate::dsp::tube::{Preamp, PreampSettings};
use crate::dsp::{db_to_gain, ProcessSpec, MAX_BLOCK};
use crate::headphone_curve::{read_curve_file, CurveSlot};

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
        // One line, so the four plots stay aligned (a cut title shows in
        // full on hover).
        ui.add(egui::Label::new(egui::RichText::new(title).strong()).truncate());
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
    /// The mic's loading of the preamp input (with the preamp).
    mic: MicSource,
    /// The input transformer (with the preamp, when in).
    xfmr: MicTransformer,
    preamp: Preamp,
    /// The solid-state preamp (`pre_type`).
    solid: SolidPreamp,
    oversampler: Oversampler,
    headphone: HeadphoneAmp,
    /// Settings of the cached curve.
    cached: Option<ChainSettings>,
    /// 20 log10 |H| relative to 1 kHz, at `freqs`.
    pub curve_db: Vec<(f64, f64)>,
    /// |H| at 1 kHz, dB (volts at the chain output per volt at its input,
    /// auto-gain excluded).
    pub gain_1k_db: f64,
    /// Track-to-track gain at 1 kHz, dB: a 1 kHz sine at X dBFS on the
    /// track leaves the wet path at X + this dBFS (see the module header).
    pub track_gain_1k_db: f64,
}

impl ResponseModel {
    /// Stages prepared at `sample_rate` (allocates: editor thread only).
    pub fn new(sample_rate: f64) -> Self {
        let spec = ProcessSpec::new(sample_rate, MAX_BLOCK);
        let mut di = DiBox::new();
        di.prepare(&spec);
        let mut oversampler = Oversampler::new();
        oversampler.prepare(&spec);
        let mut headphone = HeadphoneAmp::new();
        headphone.prepare(&spec);
        let mut mic = MicSource::new();
        mic.prepare(&spec);
        let mut xfmr = MicTransformer::new();
        xfmr.prepare(&spec);
        Self {
            sample_rate,
            factor: 0,
            di,
            mic,
            xfmr,
            preamp: Preamp::new(),
            solid: SolidPreamp::new(),
            oversampler,
            headphone,
            cached: None,
            curve_db: Vec::new(),
            gain_1k_db: 0.0,
            track_gain_1k_db: 0.0,
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
            let os_spec = ProcessSpec::new(self.sample_rate * factor as f64, MAX_BLOCK * factor);
            self.preamp.prepare(&os_spec);
            self.solid.prepare(&os_spec);
        }
        self.di.set_settings(s.di);
        self.mic.set_settings(s.mic);
        self.xfmr.set_settings(transformer_drive(&s.mic).0);
        let preamp = PreampSettings {
            output_db: 0.0,
            ..s.preamp
        };
        self.preamp.set_settings(preamp);
        self.solid.set_settings(preamp);
        self.headphone.set_settings(s.headphone);
        let h = |f: f64| self.response(s, f);
        let reference = 20.0 * h(1000.0).norm().log10();
        let curve = log_freqs(160)
            .into_iter()
            .map(|f| (f, 20.0 * h(f).norm().log10() - reference))
            .collect();
        self.gain_1k_db = reference;
        self.track_gain_1k_db = 20.0 * self.track_gain_1k(s).log10();
        self.curve_db = curve;
    }

    /// Linear track-to-track gain at 1 kHz (see the module header).
    fn track_gain_1k(&self, s: &ChainSettings) -> f64 {
        // Track sample → volts, the stages, volts → track sample.
        let mut g = s.input_gain() * self.response(s, 1000.0).norm() * s.output_gain();
        if s.pre_on && s.auto_gain {
            // The auto-gain divides by the small-signal gain the chain hands
            // it (`ChainSettings::auto_gain_static_gain`).
            let static_gain = s.auto_gain_static_gain(
                self.di.response(1000.0).norm(),
                (self.input_response(s, 1000.0) * self.preamp_response(1000.0)).norm(),
            );
            if static_gain.is_finite() && static_gain > 1e-12 {
                g /= static_gain;
            }
        }
        g
    }

    /// The chain's small-signal response at `freq_hz` (volts out per volt
    /// at the chain input, before the output trim).
    fn response(&self, s: &ChainSettings, freq_hz: f64) -> Complex<f64> {
        let mut h = Complex::new(s.preamp_input_gain(), 0.0);
        if s.di_on {
            h *= self.di.response(freq_hz);
        }
        if s.pre_on {
            h *= self.input_response(s, freq_hz)
                * self.preamp_response(freq_hz)
                * self.oversampler.response(freq_hz)
                * db_to_gain(s.preamp.output_db);
        }
        if s.hp_on {
            h *= self.headphone.response(freq_hz);
        }
        h
    }

    /// The mic's loading and, when in, the input transformer with the
    /// gains around it (`transformer_drive`), at `freq_hz`.
    fn input_response(&self, s: &ChainSettings, freq_hz: f64) -> Complex<f64> {
        input_response(&self.mic, &self.xfmr, &s.mic, s.in_xfmr, freq_hz)
    }

    /// Whether the cached settings choose the solid-state preamp.
    fn solid_state(&self) -> bool {
        self.cached
            .is_some_and(|s| s.pre_type == PreampType::SolidState)
    }

    /// The chosen preamp's small-signal response at `freq_hz`.
    fn preamp_response(&self, freq_hz: f64) -> Complex<f64> {
        if self.solid_state() {
            self.solid.small_signal_response(freq_hz)
        } else {
            self.preamp.small_signal_response(freq_hz)
        }
    }

    /// The chosen preamp's static transfer curve at `v_in` volts.
    fn transfer(&self, v_in: f64) -> f64 {
        if self.solid_state() {
            self.solid.transfer_curve(v_in)
        } else {
            self.preamp.transfer_curve(v_in)
        }
    }

    /// Twice the mic-input voltage at which the transfer curve has covered
    /// 90 % of its positive swing (the interesting part of the curve).
    pub fn transfer_span(&self) -> f64 {
        let y0 = self.transfer(0.0);
        let top = self.transfer(10.0) - y0;
        let mut x = 1e-6;
        while x < 10.0 {
            if (self.transfer(x) - y0).abs() >= 0.9 * top.abs() {
                return 2.0 * x;
            }
            x *= 1.1;
        }
        10.0
    }

    /// The preamp's transfer curve for the cached settings: (mic input
    /// volts, output volts) over ±`span_volts`.
    pub fn transfer_curve(&self, span_volts: f64) -> Vec<(f64, f64)> {
        (0..=200)
            .map(|i| {
                let x = span_volts * (i as f64 / 100.0 - 1.0);
                (x, self.transfer(x))
            })
            .collect()
    }
}

/// A gain in dB with its sign and one decimal ("+6.0 dB"); values that
/// round to zero read "+0.0 dB", never "-0.0 dB".
pub fn fmt_gain_db(db: f64) -> String {
    let db = if db.abs() < 0.05 { 0.0 } else { db };
    format!("{db:+.1} dB")
}

/// (x, y) points of a curve.
pub type Curve = Vec<(f64, f64)>;

/// |Z|(f) of a headphone model and the level deviation 20·log10|Z/(Z+Zo)|
/// relative to 1 kHz, at `freqs`.
pub fn headphone_curves(model: HeadphoneModel, zo_ohms: f64, freqs: &[f64]) -> (Curve, Curve) {
    divider_curves(|f| model.impedance(f), zo_ohms, freqs)
}

/// |Z|(f) of any load `impedance(f)` (complex ohms) and the level deviation
/// 20·log10|Z/(Z+Zo)| of the divider it makes with the amp's output
/// impedance `zo_ohms`, relative to 1 kHz, at `freqs`.
pub fn divider_curves(
    impedance: impl Fn(f64) -> Complex<f64>,
    zo_ohms: f64,
    freqs: &[f64],
) -> (Curve, Curve) {
    let divider = |f: f64| {
        let z = impedance(f);
        (z / (z + zo_ohms)).norm()
    };
    let reference = divider(1000.0);
    let z = freqs.iter().map(|&f| (f, impedance(f).norm())).collect();
    let dev = freqs
        .iter()
        .map(|&f| (f, 20.0 * (divider(f) / reference).log10()))
        .collect();
    (z, dev)
}

/// |Z_mic|(f) of a mic and the level 20·log10|Z_in/(Z_in + Z_mic)| its
/// loading leaves at the preamp input (absolute: 0 dB is the ideal
/// source), at `freqs`.
pub fn mic_curves(model: MicModel, in_z_ohms: f64, freqs: &[f64]) -> (Curve, Curve) {
    let z = freqs
        .iter()
        .map(|&f| (f, model.impedance(f).norm()))
        .collect();
    let level = freqs
        .iter()
        .map(|&f| {
            let h = in_z_ohms / (in_z_ohms + model.impedance(f));
            (f, 20.0 * h.norm().log10())
        })
        .collect();
    (z, level)
}

/// The measured impedance curve for the plot: the points saved in the
/// state when they belong to the path (as the audio side uses them), else
/// the CSV file read in the editor thread, kept until the path, the file's
/// modification time or the saved curve changes.
#[derive(Default)]
pub struct MeasuredCurve {
    /// The path, modification time and saved-curve revision the cached
    /// result belongs to.
    key: Option<(String, Option<SystemTime>, u64)>,
    /// The parsed curve, or why it could not be read (a message for a
    /// person: the file, and the line of a malformed CSV).
    result: Option<Result<ImpedanceCurve, String>>,
}

impl MeasuredCurve {
    /// The curve for `path`: `saved`'s points when they are for `path` (or
    /// the path is empty), else the file read and parsed when the path or
    /// the file's modification time differs from the cached one (a stat
    /// per call, a read only on a change).
    pub fn get(&mut self, path: &str, saved: &CurveSlot) -> Result<&ImpedanceCurve, &str> {
        let revision = saved.revision();
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let key = (path.to_string(), modified, revision);
        if self.key.as_ref() != Some(&key) {
            let curve = saved.get();
            self.result = Some(
                if curve.is_for(path) || (path.is_empty() && !curve.points.is_empty()) {
                    curve.curve()
                } else {
                    read_curve_file(Path::new(path))
                },
            );
            self.key = Some(key);
        }
        match self.result.as_ref().expect("set above") {
            Ok(curve) => Ok(curve),
            Err(e) => Err(e.as_str()),
        }
    }
}

/// Write `text` (wrapped) in the middle of a plot's `rect`.
pub fn message(ui: &Ui, rect: Rect, text: &str, colour: Color32) {
    let galley = ui.painter().layout(
        text.to_string(),
        egui::FontId::proportional(11.0),
        colour,
        (rect.width() - 40.0).max(40.0),
    );
    let at = rect.center() - galley.size() / 2.0;
    ui.painter_at(rect).galley(at, galley, colour);
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
        // docs/DESIGN.md, § Headphone amp: a 32 ohm closed-back from 120 ohm deviates 2.9 dB.
        let (_, dev) = headphone_curves(HeadphoneModel::Closed32, 120.0, &freqs);
        let (lo, hi) = dev.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &(_, d)| {
            (lo.min(d), hi.max(d))
        });
        assert!(((hi - lo) - 2.90).abs() < 0.2, "{}", hi - lo);
    }

    /// Write a CSV impedance curve (Hz, ohm, degrees) into `dir`.
    fn write_csv(dir: &Path, name: &str, points: &[(f64, f64)]) -> String {
        let path = dir.join(name);
        let text: String = std::iter::once("Freq(Hz), Z(ohm), Phase(deg)\n".to_string())
            .chain(points.iter().map(|(f, z)| format!("{f}, {z}, 0\n")))
            .collect();
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().to_string()
    }

    const FREQS: [f64; 10] = [
        20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10_000.0, 20_000.0,
    ];

    #[test]
    fn a_flat_measured_curve_gives_a_flat_deviation() {
        let dir = tempfile::tempdir().unwrap();
        let flat: Vec<(f64, f64)> = FREQS.iter().map(|&f| (f, 32.0)).collect();
        let path = write_csv(dir.path(), "flat.csv", &flat);
        let mut cache = MeasuredCurve::default();
        let curve = cache.get(&path, &CurveSlot::default()).unwrap().clone();
        let (z, dev) = divider_curves(|f| curve.impedance(f), 120.0, &log_freqs(100));
        assert!(z.iter().all(|&(_, z)| (z - 32.0).abs() < 1e-9), "{z:?}");
        assert!(dev.iter().all(|&(_, d)| d.abs() < 1e-9), "{dev:?}");
    }

    #[test]
    fn a_two_to_one_impedance_step_gives_the_divider_s_level_step() {
        let dir = tempfile::tempdir().unwrap();
        // 64 ohm up to 200 Hz, 32 ohm from 500 Hz, resistive; Zo = 32 ohm.
        let step: Vec<(f64, f64)> = FREQS
            .iter()
            .map(|&f| (f, if f <= 200.0 { 64.0 } else { 32.0 }))
            .collect();
        let path = write_csv(dir.path(), "step.csv", &step);
        let mut cache = MeasuredCurve::default();
        let curve = cache.get(&path, &CurveSlot::default()).unwrap().clone();
        let freqs = [20.0, 100.0, 1000.0, 10_000.0];
        let (z, dev) = divider_curves(|f| curve.impedance(f), 32.0, &freqs);
        assert_eq!(z[0].1, 64.0);
        assert_eq!(z[2].1, 32.0);
        // Below the step the divider passes 64/(64+32) = 2/3, at 1 kHz
        // 32/(32+32) = 1/2: the bass is 20 log10(4/3) = +2.50 dB up.
        let expected = 20.0 * ((2.0 / 3.0) / 0.5f64).log10();
        assert!((dev[0].1 - expected).abs() < 1e-9, "{dev:?}");
        assert!((dev[1].1 - expected).abs() < 1e-9, "{dev:?}");
        assert!(dev[2].1.abs() < 1e-9 && dev[3].1.abs() < 1e-9, "{dev:?}");
    }

    #[test]
    fn a_malformed_curve_says_where_and_a_changed_file_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.csv");
        std::fs::write(&path, "20, 32, 0\n50, 32\n").unwrap();
        let p = path.to_string_lossy().to_string();
        let mut cache = MeasuredCurve::default();
        let slot = CurveSlot::default();
        let e = cache.get(&p, &slot).unwrap_err().to_string();
        assert!(e.contains("bad.csv") && e.contains("line 2"), "{e}");
        // Fixed on disk (with a later modification time): read again.
        let good: Vec<(f64, f64)> = FREQS.iter().map(|&f| (f, 300.0)).collect();
        write_csv(dir.path(), "bad.csv", &good);
        let later = std::fs::metadata(&path).unwrap().modified().unwrap()
            + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert!((cache.get(&p, &slot).unwrap().nominal_ohms() - 300.0).abs() < 1e-9);
        let missing = dir.path().join("missing.csv");
        let missing = missing.to_string_lossy();
        let e = cache.get(&missing, &slot).unwrap_err();
        assert!(
            e.contains("cannot read") && e.contains("missing.csv"),
            "{e}"
        );
        // Points saved in the state for that path: plotted without the file.
        let points: Vec<[f64; 3]> = FREQS.iter().map(|&f| [f, 150.0, 0.0]).collect();
        slot.store_loaded(&missing, points);
        assert!((cache.get(&missing, &slot).unwrap().nominal_ohms() - 150.0).abs() < 1e-9);
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

    /// Every stage out, a pro line track (the level it stands for is the
    /// +4 dBu reference), no trims.
    fn all_out() -> ChainSettings {
        ChainSettings {
            source: crate::dsp::chain::Source::ProLine,
            di_on: false,
            pre_on: false,
            hp_on: false,
            in_trim_db: 0.0,
            out_trim_db: 0.0,
            ..Default::default()
        }
    }

    fn track_gain(s: &ChainSettings) -> f64 {
        let mut m = ResponseModel::new(48_000.0);
        m.update(s);
        m.track_gain_1k_db
    }

    #[test]
    fn the_track_gain_is_zero_with_every_stage_out_and_follows_the_trims() {
        assert!(track_gain(&all_out()).abs() < 1e-9);
        let s = ChainSettings {
            out_trim_db: 6.0,
            ..all_out()
        };
        assert!((track_gain(&s) - 6.0).abs() < 1e-9);
        let s = ChainSettings {
            in_trim_db: -3.5,
            out_trim_db: 6.0,
            ..all_out()
        };
        assert!((track_gain(&s) - 2.5).abs() < 1e-9);
        // A mic track stands for -50 dBu where a line stands for +4 dBu:
        // 54 dB quieter when nothing amplifies it.
        let s = ChainSettings {
            source: crate::dsp::chain::Source::Mic,
            ..all_out()
        };
        assert!((track_gain(&s) + 54.0).abs() < 1e-9, "{}", track_gain(&s));
        // The pad: -20 dB.
        let s = ChainSettings {
            pad: true,
            ..all_out()
        };
        assert!((track_gain(&s) + 20.0).abs() < 1e-9);
        // The calibration maps in and out alike: no effect on its own.
        let s = ChainSettings {
            cal_dbu: 24.0,
            ..all_out()
        };
        assert!(track_gain(&s).abs() < 1e-9);
    }

    #[test]
    fn with_auto_gain_the_preamp_track_gain_is_its_output_level() {
        // The auto-gain compensates everything before it (source, DI, pad,
        // the tubes' gain): what is left is the preamp's output level.
        for (source, gain_db, pad, pre_out_db) in [
            (crate::dsp::chain::Source::Mic, 20.0, false, 0.0),
            (crate::dsp::chain::Source::ProLine, 45.0, true, 0.0),
            (crate::dsp::chain::Source::Instrument, 35.0, false, -4.0),
        ] {
            let mut s = ChainSettings {
                source,
                pre_on: true,
                auto_gain: true,
                pad,
                ..all_out()
            };
            s.preamp.gain_db = gain_db;
            s.preamp.output_db = pre_out_db;
            let g = track_gain(&s);
            // The oversampler's half-bands are flat to well under 0.01 dB
            // at 1 kHz.
            assert!((g - pre_out_db).abs() < 0.01, "{source:?}: {g}");
        }
        // Without auto-gain the tubes' gain shows: well above unity for a
        // pro line at 20 dB Gain.
        let mut s = ChainSettings {
            pre_on: true,
            auto_gain: false,
            ..all_out()
        };
        s.preamp.gain_db = 20.0;
        assert!(track_gain(&s) > 6.0, "{}", track_gain(&s));
    }

    /// Gain of the real chain for a quiet 1 kHz sine: rms out over rms in
    /// after the switches and smoothers have settled, dB.
    fn measured_chain_gain(s: &ChainSettings) -> f64 {
        let fs = 48_000.0;
        let mut chain = crate::dsp::chain::Chain::new();
        chain.set_settings(*s);
        chain.prepare(fs, 1);
        chain.set_settings(*s);
        chain.reset();
        let amp = 0.01f32; // -40 dBFS: the tubes are linear here.
        let n = 48_000;
        let mut x: Vec<f32> = (0..n)
            .map(|i| amp * (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / fs).sin() as f32)
            .collect();
        chain.process(&mut [&mut x[..]]);
        let tail = &x[n / 2..];
        let rms =
            (tail.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / tail.len() as f64).sqrt();
        20.0 * (rms * std::f64::consts::SQRT_2 / f64::from(amp)).log10()
    }

    #[test]
    fn the_track_gain_is_what_the_chain_does_to_a_1_khz_sine() {
        use crate::dsp::headphone::HeadphoneModel;
        let mut s = ChainSettings {
            source: crate::dsp::chain::Source::ConsumerLine,
            in_trim_db: -3.0,
            out_trim_db: 2.0,
            di_on: true,
            pre_on: true,
            auto_gain: false,
            hp_on: true,
            ..all_out()
        };
        s.preamp.gain_db = 30.0;
        s.preamp.output_db = -6.0;
        s.headphone.model = HeadphoneModel::Dynamic80;
        s.headphone.amp_z_ohms = 120.0;
        let predicted = track_gain(&s);
        let measured = measured_chain_gain(&s);
        assert!(
            (predicted - measured).abs() < 0.1,
            "predicted {predicted} dB, the chain gave {measured} dB"
        );
    }

    #[test]
    fn gains_print_with_a_sign_and_no_negative_zero() {
        assert_eq!(fmt_gain_db(-0.01), "+0.0 dB");
        assert_eq!(fmt_gain_db(6.0), "+6.0 dB");
        assert_eq!(fmt_gain_db(-21.58), "-21.6 dB");
    }

    #[test]
    fn the_di_reads_its_turns_ratio_at_1_khz() {
        let mut m = ResponseModel::new(48_000.0);
        let s = ChainSettings {
            di_on: true,
            ..Default::default()
        };
        m.update(&s);
        // 12:1 into its rated load: -21.58 dB (docs/DESIGN.md, § DI box), within the
        // transformer's loading tolerance.
        assert!(
            (m.gain_1k_db - 20.0 * (1.0f64 / 12.0).log10()).abs() < 0.5,
            "{}",
            m.gain_1k_db
        );
    }
}
