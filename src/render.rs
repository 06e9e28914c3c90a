//! Offline rendering shared by the `tubeline-render` binary and the tests:
//! run whole files through the same [`Chain`] the plugin uses, with the
//! latency removed so the output lines up with the input.

use crate::dsp::chain::Chain;
use crate::dsp::headphone::{design_custom, HeadphoneLevels, HeadphoneModel, ImpedanceCurve};
use crate::dsp::oversampling::Quality;
use crate::params::TubelineParams;

/// The sample rates an offline render accepts, in Hz: from telephone-band
/// 8 kHz to 384 kHz (the highest rate common converters run at). Outside
/// it a render is refused: a rate of 0 would give an empty file, and an
/// absurd one a demo signal of billions of samples.
pub const SAMPLE_RATE_RANGE_HZ: (u32, u32) = (8_000, 384_000);

/// Check a sample rate against [`SAMPLE_RATE_RANGE_HZ`]; the error says
/// what is accepted.
pub fn check_sample_rate(rate: u32) -> Result<(), String> {
    let (lo, hi) = SAMPLE_RATE_RANGE_HZ;
    if (lo..=hi).contains(&rate) {
        Ok(())
    } else {
        Err(format!(
            "a sample rate of {rate} Hz is not supported: Tubeline renders at {lo} to {hi} Hz"
        ))
    }
}

/// One integer PCM sample as `hound` reads it (right-aligned in an `i32`,
/// 8-bit already made signed) in the file's `bits_per_sample`, as `f32`
/// with full scale at ±1: dasp's sample conversion, which divides by the
/// format's full scale (2^(bits − 1)), so −2^(bits − 1) reads −1.0 exactly
/// and the largest code reads 1 − 2^(1 − bits) (rounded to f32: a 32-bit
/// file's largest code 2^31 − 1 reads 1.0). `None` for a depth WAV has no
/// integer format for (hound reads only 8, 16, 24 and 32 bits) or a value
/// outside the depth.
pub fn pcm_to_f32(value: i32, bits_per_sample: u16) -> Option<f32> {
    use dasp::sample::{types::I24, Sample};
    Some(match bits_per_sample {
        8 => i8::try_from(value).ok()?.to_sample(),
        16 => i16::try_from(value).ok()?.to_sample(),
        24 => I24::new(value)?.to_sample(),
        32 => value.to_sample(),
        _ => return None,
    })
}

/// What a render measured.
#[derive(Clone, Debug, PartialEq)]
pub struct RenderReport {
    /// Peak of the input, dBFS.
    pub peak_in_dbfs: f64,
    /// RMS of the input, dBFS (a full-scale sine reads −3.01 dBFS).
    pub rms_in_dbfs: f64,
    /// Peak of the output, dBFS.
    pub peak_out_dbfs: f64,
    /// RMS of the output, dBFS.
    pub rms_out_dbfs: f64,
    /// Latency of the chain that was removed, in samples.
    pub latency_samples: usize,
    /// With the headphone amp in: the loudest moment at the headphone (the
    /// highest 300 ms rms voltage and mean power over the file, any channel).
    pub headphone_peak: Option<HeadphoneLevels>,
}

/// Render planar `input` (one `Vec` per channel) at `sample_rate` with the
/// parameters in `params`, in host blocks of `block_size`, at the High
/// quality, as a host's offline bounce does. With `headphone_curve`, the
/// headphone amp is switched in and drives that measured load. `progress`
/// is called with the number of input samples done so far.
pub fn render(
    params: &TubelineParams,
    headphone_curve: Option<&ImpedanceCurve>,
    input: &[Vec<f32>],
    sample_rate: f64,
    block_size: usize,
    progress: impl FnMut(usize),
) -> (Vec<Vec<f32>>, RenderReport) {
    render_at(
        params,
        headphone_curve,
        input,
        sample_rate,
        block_size,
        Quality::High,
        progress,
    )
}

/// [`render`] at the given oversampling `quality`: `Quality::Live` renders
/// what the plugin plays in real time with Quality = Live (the Quality
/// parameter in `params` is not used).
pub fn render_at(
    params: &TubelineParams,
    headphone_curve: Option<&ImpedanceCurve>,
    input: &[Vec<f32>],
    sample_rate: f64,
    block_size: usize,
    quality: Quality,
    mut progress: impl FnMut(usize),
) -> (Vec<Vec<f32>>, RenderReport) {
    let channels = input.len();
    let frames = input.first().map_or(0, Vec::len);
    let block_size = block_size.max(1);

    let mut settings = params.snapshot(true);
    settings.quality = quality;
    if headphone_curve.is_some() {
        settings.hp_on = true;
        settings.headphone.model = HeadphoneModel::Custom;
    }
    let mut chain = Chain::new();
    chain.set_settings(settings);
    chain.prepare(sample_rate, channels);
    if let Some(curve) = headphone_curve {
        let filter = design_custom(curve, settings.headphone.amp_z_ohms, sample_rate);
        for c in 0..channels {
            chain.swap_headphone_custom(c, filter.clone());
        }
        chain.reset();
    }
    let latency = chain.latency_samples();

    // Feed the input followed by `latency` samples of silence, and drop the
    // first `latency` output samples: the output lines up with the input.
    let total = frames + latency;
    let mut output: Vec<Vec<f32>> = vec![Vec::with_capacity(frames); channels];
    let mut block: Vec<Vec<f32>> = vec![vec![0.0; block_size]; channels];
    let hp_on = settings.hp_on;
    let mut headphone_peak: Option<HeadphoneLevels> = None;
    let mut pos = 0;
    while pos < total {
        let n = block_size.min(total - pos);
        for (b, x) in block.iter_mut().zip(input) {
            for (i, s) in b[..n].iter_mut().enumerate() {
                *s = x.get(pos + i).copied().unwrap_or(0.0);
            }
        }
        let mut slices: Vec<&mut [f32]> = block.iter_mut().map(|b| &mut b[..n]).collect();
        chain.process(&mut slices);
        if hp_on {
            for lv in (0..channels).filter_map(|c| chain.headphone_levels(c)) {
                let peak = headphone_peak.get_or_insert(lv);
                peak.v_rms_volts = peak.v_rms_volts.max(lv.v_rms_volts);
                peak.i_rms_amps = peak.i_rms_amps.max(lv.i_rms_amps);
                peak.power_watts = peak.power_watts.max(lv.power_watts);
                peak.power_mw = peak.power_mw.max(lv.power_mw);
            }
        }
        for (out, b) in output.iter_mut().zip(&block) {
            for (i, &s) in b[..n].iter().enumerate() {
                if pos + i >= latency {
                    out.push(s);
                }
            }
        }
        pos += n;
        progress(pos.min(frames));
    }

    let (peak_in_dbfs, rms_in_dbfs) = peak_and_rms_dbfs(input);
    let (peak_out_dbfs, rms_out_dbfs) = peak_and_rms_dbfs(&output);
    let report = RenderReport {
        peak_in_dbfs,
        rms_in_dbfs,
        peak_out_dbfs,
        rms_out_dbfs,
        latency_samples: latency,
        headphone_peak,
    };
    (output, report)
}

/// Peak and RMS over all channels, in dBFS.
pub fn peak_and_rms_dbfs(channels: &[Vec<f32>]) -> (f64, f64) {
    let mut peak = 0.0f64;
    let mut sum = 0.0f64;
    let mut count = 0usize;
    for x in channels.iter().flatten() {
        let v = f64::from(*x);
        peak = peak.max(v.abs());
        sum += v * v;
        count += 1;
    }
    let rms = if count > 0 {
        (sum / count as f64).sqrt()
    } else {
        0.0
    };
    (20.0 * peak.log10(), 20.0 * rms.log10())
}

/// The demo signal: six seconds of stereo that shows what the chain does. A
/// 1 kHz tone at −18 dBFS (the usual reference level), a sweep from 20 Hz to
/// 20 kHz at −24 dBFS, then a decaying plucked chord (A2, E3, A3, C#4) peaking
/// near −6 dBFS, slightly different in each channel. Generated, not loaded,
/// so it is the same everywhere: dasp's oscillators (a phase accumulator
/// per tone, `sin(2π·phase)`), with 10 ms linear fades at the ends of each
/// part.
pub fn demo_signal(sample_rate: f64) -> Vec<Vec<f32>> {
    use dasp::signal::{self, Signal};
    use std::f64::consts::TAU;
    let sr = sample_rate;
    let secs = |s: f64| (s * sr) as usize;
    let total = secs(6.0);
    let mut left = vec![0.0f32; total];
    let mut right = vec![0.0f32; total];
    let fade = |i: usize, len: usize| {
        let ramp = secs(0.01).max(1);
        (i.min(len - 1 - i).min(ramp) as f64) / ramp as f64
    };
    let level = |dbfs: f64| 10f64.powf(dbfs / 20.0);
    // Write `len` samples of `part` (one value per sample, the same in both
    // channels) from `start`, faded in and out.
    let mut write = |start: usize, len: usize, part: &mut dyn FnMut() -> (f64, f64)| {
        for i in 0..len {
            let (l, r) = part();
            let g = fade(i, len);
            left[start + i] = (l * g) as f32;
            right[start + i] = (r * g) as f32;
        }
    };

    // 0–1.5 s: 1 kHz at −18 dBFS.
    let mut tone = signal::rate(sr)
        .const_hz(1000.0)
        .sine()
        .scale_amp(level(-18.0));
    write(0, secs(1.5), &mut || {
        let v = tone.next();
        (v, v)
    });

    // 1.5–3.5 s: exponential sweep 20 Hz → 20 kHz at −24 dBFS: the
    // oscillator's frequency follows f0·(f1/f0)^(t/T).
    let (f0, f1, t) = (20.0f64, 20_000.0f64, 2.0);
    let mut n = 0u32;
    let glide = signal::gen_mut(move || {
        let hz = f0 * (f1 / f0).powf(f64::from(n) / sr / t);
        n += 1;
        hz
    });
    let mut sweep = signal::rate(sr).hz(glide).sine().scale_amp(level(-24.0));
    write(secs(1.5), secs(2.0), &mut || {
        let v = sweep.next();
        (v, v)
    });

    // 3.5–6 s: plucked chord with a few harmonics and an exponential decay.
    // Each note starts at its own phase (n radians), and the right channel
    // is detuned by 0.15 %.
    let notes = [110.0, 164.81, 220.0, 277.18];
    let mut partials: Vec<_> = notes
        .iter()
        .enumerate()
        .flat_map(|(n, f)| {
            (1..=5).map(move |h| {
                let hz = f * f64::from(h);
                let oscillator = |hz: f64| signal::rate(sr).const_hz(hz).phase();
                (
                    0.12 / f64::from(h).powf(1.3),
                    n as f64,
                    oscillator(hz),
                    oscillator(hz * 1.0015),
                )
            })
        })
        .collect();
    let start = secs(3.5);
    let mut i = 0usize;
    write(start, total - start, &mut || {
        let env = (-(i as f64) / sr * 2.2).exp();
        i += 1;
        partials
            .iter_mut()
            .fold((0.0, 0.0), |(l, r), (a, offset, pl, pr)| {
                (
                    l + *a * env * (TAU * pl.next() + *offset).sin(),
                    r + *a * env * (TAU * pr.next() + *offset).sin(),
                )
            })
    });
    vec![left, right]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PCM code's value from the format's definition (full scale at
    /// 2^(bits − 1)), worked out in f64, where it is exact, and rounded to
    /// f32 once.
    fn defined(code: i32, bits: u16) -> f32 {
        (f64::from(code) / f64::from(bits - 1).exp2()) as f32
    }

    #[test]
    fn pcm_reads_as_its_code_over_full_scale_at_every_depth() {
        // Every code of 8, 16 and 24 bits; 32 bits at its ends and a spread.
        for bits in [8u16, 16, 24] {
            let full = 1i32 << (bits - 1);
            for code in -full..full {
                assert_eq!(
                    pcm_to_f32(code, bits),
                    Some(defined(code, bits)),
                    "{bits} bit {code}"
                );
            }
            assert_eq!(pcm_to_f32(-full, bits), Some(-1.0));
            assert_eq!(pcm_to_f32(full, bits), None, "{bits} bit: one past the top");
            assert_eq!(pcm_to_f32(-full - 1, bits), None);
        }
        assert_eq!(pcm_to_f32(0, 16), Some(0.0));
        assert_eq!(
            pcm_to_f32(i32::from(i16::MAX), 16),
            Some(32_767.0 / 32_768.0)
        );
        assert_eq!(pcm_to_f32(8_388_607, 24), Some(8_388_607.0 / 8_388_608.0));
        assert_eq!(pcm_to_f32(i32::MIN, 32), Some(-1.0));
        // 2^31 − 1 has no f32 of its own: it rounds to 2^31, full scale.
        assert_eq!(pcm_to_f32(i32::MAX, 32), Some(1.0));
        let mut code = i32::MIN;
        while let Some(next) = code.checked_add(65_537) {
            assert_eq!(
                pcm_to_f32(code, 32),
                Some(defined(code, 32)),
                "32 bit {code}"
            );
            code = next;
        }
        for bits in [0u16, 1, 12, 20, 48, 64] {
            assert_eq!(
                pcm_to_f32(0, bits),
                None,
                "{bits} bits is not a WAV PCM depth"
            );
        }
    }
}
