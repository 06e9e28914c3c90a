//! Signal generators and measurements shared by the integration tests.
//! Independent of the implementation: plain formulas only.
#![allow(dead_code)]

use dasp::signal::{self, Signal};

use tubeline::dsp::chain::{Chain, ChainSettings};

/// A sine of `freq` Hz with peak `amp`, `len` samples at `sr`: dasp's
/// oscillator (an f64 phase accumulator, `sin(2π·phase)`), whose phase
/// drifts by ~1e-12 cycles over a million samples: far below the −120 dB
/// the THD measurements need, and below an f32's resolution.
pub fn sine(freq: f64, amp: f64, sr: f64, len: usize) -> Vec<f32> {
    signal::rate(sr)
        .const_hz(freq)
        .sine()
        .scale_amp(amp)
        .take(len)
        .map(|v| v as f32)
        .collect()
}

/// Deterministic white noise in −amp … amp, for tests: dasp's hash noise.
/// Its generator steps its seed by one per sample and only the seed's low
/// 31 bits count, so seeds are spread 2^20 samples apart: two seeds give
/// unrelated signals (not the same noise shifted by a sample) for up to a
/// million samples.
pub fn noise(amp: f64, len: usize, seed: u64) -> Vec<f32> {
    signal::noise(seed << 20)
        .scale_amp(amp)
        .take(len)
        .map(|v| v as f32)
        .collect()
}

/// RMS of a slice in dB relative to 1.0.
pub fn rms_db(x: &[f32]) -> f64 {
    let sum: f64 = x.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
    10.0 * (sum / x.len() as f64).log10()
}

/// Run planar `input` through a fresh chain with `settings` at `sr`, in host
/// blocks of `block`. Returns the output (same length, latency not removed)
/// and the chain's latency.
pub fn run_chain(
    settings: ChainSettings,
    input: &[Vec<f32>],
    sr: f64,
    block: usize,
) -> (Vec<Vec<f32>>, usize) {
    let mut chain = Chain::new();
    chain.set_settings(settings);
    chain.prepare(sr, input.len());
    let out = process_with(&mut chain, input, block);
    (out, chain.latency_samples())
}

/// Process `input` through `chain` in blocks of `block`.
pub fn process_with(chain: &mut Chain, input: &[Vec<f32>], block: usize) -> Vec<Vec<f32>> {
    let mut out: Vec<Vec<f32>> = input.to_vec();
    let len = out[0].len();
    let mut start = 0;
    while start < len {
        let n = block.min(len - start);
        let mut slices: Vec<&mut [f32]> =
            out.iter_mut().map(|c| &mut c[start..start + n]).collect();
        chain.process(&mut slices);
        start += n;
    }
    out
}

/// Amplitude spectrum (peak units) of `x` with a rectangular window: exact
/// for tones with a whole number of cycles in `x`.
pub fn spectrum(x: &[f32]) -> Vec<f64> {
    let mut planner = realfft::RealFftPlanner::<f64>::new();
    let fft = planner.plan_fft_forward(x.len());
    let mut input: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    let mut out = fft.make_output_vec();
    fft.process(&mut input, &mut out).unwrap();
    let n = x.len() as f64;
    out.iter().map(|c| 2.0 * c.norm() / n).collect()
}

/// THD (ratio, not %) of a tone at bin `fundamental_bin`, harmonics 2…10
/// below Nyquist.
pub fn thd(x: &[f32], fundamental_bin: usize) -> f64 {
    let s = spectrum(x);
    let h1 = s[fundamental_bin];
    let harmonics: f64 = (2..=10)
        .map(|k| k * fundamental_bin)
        .filter(|&b| b < s.len())
        .map(|b| s[b] * s[b])
        .sum();
    harmonics.sqrt() / h1
}

/// An impedance CSV (as measurement tools export it) of a purely resistive
/// `ohms` load from 10 Hz to 24 kHz: from an output impedance Zo the divider
/// is ohms/(ohms+Zo) at every frequency.
pub fn resistive_csv(ohms: f64) -> String {
    let mut csv = String::from("Freq(Hz),Magnitude(ohm),Phase(deg)\n");
    for i in 0..40 {
        let f = 10.0 * 2400f64.powf(f64::from(i) / 39.0);
        csv.push_str(&format!("{f:.3},{ohms:.1},0.0\n"));
    }
    csv
}

/// Parameters that choose the headphone amp driving the measured curve at
/// `csv_path` from 120 Ω, with every other stage out (a pro line source).
pub fn curve_params(csv_path: &str) -> tubeline::params::TubelineParams {
    let params = tubeline::params::TubelineParams::default();
    for (id, value) in [
        ("pre_on", "off"),
        ("source", "pro_line"),
        ("hp_on", "on"),
        ("hp_model", "custom"),
        ("amp_z", "120"),
    ] {
        params.set_from_text(id, value).unwrap();
    }
    *params.hp_csv.write().unwrap() = csv_path.to_string();
    params
}
