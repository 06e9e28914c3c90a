//! What the SPICE comparison measures, and the Rust side of it: the
//! harmonic analysis of a steady window, the operating point (Ra ‖ rp) the
//! bias-recovery check needs, and the render of the same stimulus through
//! the chain.
//!
//! # Levels: host samples and volts
//!
//! The chain (`ChainSettings`: Source Mic, preamp on, auto-gain off,
//! everything else out or neutral) turns a host sample x into volts at the
//! preamp input `v = x · input_gain · preamp_input_gain`
//! (`input_gain = full_scale_peak_volts(cal_dbu) · 10^((−50 − 4)/20)`: a
//! +4 dBu line level stands for the mic's nominal −50 dBu; at the default
//! calibration, +18 dBu = 0 dBFS, that is 17.40 mV per unit), and volts at
//! the preamp output into a host sample `y = V · output_gain`. The netlists
//! take `v` at their input `vin` and give the output volts across Rload.
//!
//! # Analysis
//!
//! A window of 960 samples at 48 kHz (20 ms: 20 periods of 1 kHz, 140 of
//! 7 kHz), Hann-weighted (what is left of a start-up transient leaks
//! ~1/k³ instead of ~1/k), each harmonic read at its exact bin (the window
//! holds whole periods, so the Hann weighting takes nothing from it but
//! its coherent gain 1/2). Harmonics are counted only up to 20 kHz: the
//! chain's decimator is flat to 20 kHz at 48 kHz and rejects from
//! 28 kHz, so a harmonic between is not comparable (at 7 kHz only H2,
//! 14 kHz, is in band; H3 at 21 kHz is in the decimator's transition).
//! THD = √(Σ Hk²)/H1 over the harmonics 2 … 10 in band.

use tubeline::dsp::chain::{Chain, ChainSettings, Source};
use tubeline::dsp::oversampling::Quality;
use tubeline::dsp::tube::{PreampSettings, TubeType};

/// Analysis rate (the host rate of the chain).
pub const FS: f64 = 48_000.0;
/// Analysis window: 20 ms.
pub const WINDOW: usize = 960;
/// Harmonics above this are outside the chain's flat band at 48 kHz.
pub const BAND_HZ: f64 = 20_000.0;
/// Harmonics reported: H2 … H5.
pub const REPORTED: usize = 4;
/// Harmonics counted in the THD: H2 … H10 (in band).
const THD_HARMONICS: usize = 10;

/// One steady window, measured.
#[derive(Clone, Copy, Debug)]
pub struct Measured {
    /// Output fundamental over input fundamental, dB.
    pub gain_db: f64,
    /// H2 … H5 relative to the fundamental, dBc (`None` above 20 kHz).
    pub hd_dbc: [Option<f64>; REPORTED],
    /// THD (ratio) over H2 … H10 in band.
    pub thd: f64,
}

/// Amplitude (peak) of the component with `cycles` periods in `y`:
/// Hann-weighted DFT at that bin.
pub fn amplitude(y: &[f64], cycles: usize) -> f64 {
    let n = y.len();
    let tau = 2.0 * std::f64::consts::PI;
    let (mut re, mut im) = (0.0, 0.0);
    for (i, v) in y.iter().enumerate() {
        let w = 0.5 - 0.5 * (tau * i as f64 / n as f64).cos();
        let ph = tau * ((cycles * i) % n) as f64 / n as f64;
        re += v * w * ph.cos();
        im -= v * w * ph.sin();
    }
    4.0 * (re * re + im * im).sqrt() / n as f64
}

/// Measure a window of `input` and `output` (volts, at 48 kHz) holding
/// whole periods of `freq`.
pub fn measure(input: &[f64], output: &[f64], freq: f64) -> Measured {
    measure_at(FS, input, output, freq)
}

/// [`measure`] at the sample rate `fs`.
pub fn measure_at(fs: f64, input: &[f64], output: &[f64], freq: f64) -> Measured {
    let n = input.len();
    let cycles = (freq * n as f64 / fs).round() as usize;
    assert!(
        (cycles as f64 * fs / n as f64 - freq).abs() < 1e-9,
        "{freq} Hz is not a whole number of periods in {n} samples"
    );
    let h1_in = amplitude(input, cycles);
    let h1 = amplitude(output, cycles);
    let in_band = |k: usize| k as f64 * freq <= BAND_HZ;
    let mut hd_dbc = [None; REPORTED];
    let mut sum = 0.0;
    for k in 2..=THD_HARMONICS {
        if !in_band(k) {
            continue;
        }
        let a = amplitude(output, k * cycles) / h1;
        sum += a * a;
        if k - 2 < REPORTED {
            hd_dbc[k - 2] = Some(20.0 * a.log10());
        }
    }
    Measured {
        gain_db: 20.0 * (h1 / h1_in).log10(),
        hd_dbc,
        thd: sum.sqrt(),
    }
}

/// The reference stage's operating point (B+ 250 V, Ra 100 kΩ, Rk
/// 1.5 kΩ, grid at 0 V DC): (Vk, Vpk, Ra ‖ rp, μ) in volts, volts, ohms and
/// the amplification factor gm·rp there. Solved here from Koren's equation
/// with the tube's constants by plain bisection and a central difference,
/// not with the model's solvers.
pub fn operating_point(tube: TubeType) -> (f64, f64, f64, f64) {
    let k = tube.constants();
    let ip = |vgk: f64, vpk: f64| {
        let e1 = vpk / k.kp
            * (k.kp * (1.0 / k.mu + vgk / (k.kvb + vpk * vpk).sqrt()))
                .exp()
                .ln_1p();
        2.0 * e1.max(0.0).powf(k.ex) / k.kg1
    };
    let (bplus, ra, rk) = (250.0, 100e3, 1.5e3);
    // Plate voltage (to the cathode) for a grid-to-cathode voltage, cathode at vk.
    let vpk_of = |vgk: f64, vk: f64| {
        let (mut lo, mut hi) = (0.0, bplus - vk);
        for _ in 0..200 {
            let m = 0.5 * (lo + hi);
            if m + vk - bplus + ra * ip(vgk, m) > 0.0 {
                hi = m;
            } else {
                lo = m;
            }
        }
        0.5 * (lo + hi)
    };
    let (mut lo, mut hi) = (0.0, 50.0);
    for _ in 0..200 {
        let vk = 0.5 * (lo + hi);
        let i = ip(-vk, vpk_of(-vk, vk));
        if vk > rk * i {
            hi = vk;
        } else {
            lo = vk;
        }
    }
    let vk = 0.5 * (lo + hi);
    let vpk = vpk_of(-vk, vk);
    let h = 1e-3;
    let gp = (ip(-vk, vpk + h) - ip(-vk, vpk - h)) / (2.0 * h);
    let gm = (ip(-vk + h, vpk) - ip(-vk - h, vpk)) / (2.0 * h);
    (vk, vpk, ra / (1.0 + ra * gp), gm / gp)
}

/// The chain as the comparison runs it: Source Mic, the tube preamp in
/// (`tube`, Gain, Level, bias 0, HPF off, output 0 dB), auto-gain off,
/// Quality High, everything else out or neutral.
pub fn chain_settings(tube: TubeType, gain_db: f64, level_db: f64) -> ChainSettings {
    ChainSettings {
        source: Source::Mic,
        pre_on: true,
        auto_gain: false,
        quality: Quality::High,
        preamp: PreampSettings {
            gain_db,
            level_db,
            tube,
            ..PreampSettings::default()
        },
        ..ChainSettings::default()
    }
}

/// Volts at the preamp input per host sample.
pub fn volts_per_unit(s: &ChainSettings) -> f64 {
    s.input_gain() * s.preamp_input_gain()
}

/// Render `input` (host samples) through a fresh mono chain with `s` at
/// 48 kHz: (input volts at the preamp, output volts at the preamp output,
/// the chain's latency in samples).
pub fn render(s: ChainSettings, input: &[f32]) -> (Vec<f64>, Vec<f64>, usize) {
    let mut chain = Chain::new();
    chain.set_settings(s);
    chain.prepare(FS, 1);
    let mut out = input.to_vec();
    for block in out.chunks_mut(512) {
        chain.process(&mut [block]);
    }
    let vin = volts_per_unit(&s);
    let vout = 1.0 / s.output_gain();
    (
        input.iter().map(|&x| f64::from(x) * vin).collect(),
        out.iter().map(|&y| f64::from(y) * vout).collect(),
        chain.latency_samples(),
    )
}
