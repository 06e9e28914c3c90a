//! Deterministic test signals and a reference loudness filter, shared by the
//! unit tests, the integration tests and the benches, so that all of them
//! measure on the same material.
//! Nothing here runs on the audio thread.

/// Deterministic uniform noise in −1 … 1: a 64-bit linear congruential
/// generator (Knuth's MMIX constants), top 53 bits.
pub fn lcg(seed: &mut u64) -> f64 {
    *seed = seed
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    (*seed >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

/// Pink noise (−3 dB/octave) from Paul Kellet's "refined" filter of white
/// noise (accurate to ±0.05 dB above 9 Hz at 44.1 kHz), unscaled: the caller
/// sets the level.
pub fn pink_noise(len: usize, mut seed: u64) -> Vec<f64> {
    let mut b = [0.0; 7];
    (0..len)
        .map(|_| {
            let w = lcg(&mut seed);
            b[0] = 0.99886 * b[0] + w * 0.0555179;
            b[1] = 0.99332 * b[1] + w * 0.0750759;
            b[2] = 0.96900 * b[2] + w * 0.1538520;
            b[3] = 0.86650 * b[3] + w * 0.3104856;
            b[4] = 0.55000 * b[4] + w * 0.5329522;
            b[5] = -0.7616 * b[5] - w * 0.0168980;
            let y = b.iter().sum::<f64>() + w * 0.5362;
            b[6] = w * 0.115926;
            y
        })
        .collect()
}

/// Music-like material at 48 kHz-style timing, unscaled: decaying three-note
/// chords with five harmonics each (a new chord every 0.5 s), a bass line,
/// noise-burst drums every 250 ms, and a phrase 10 dB down in the last 0.5 s
/// of every 2 s — loudness that moves, as a mix does.
pub fn music_like(len: usize, fs: f64, mut seed: u64) -> Vec<f64> {
    use std::f64::consts::TAU;
    let notes = [220.0, 277.18, 329.63, 246.94, 293.66, 369.99, 196.0, 261.63];
    (0..len)
        .map(|i| {
            let t = i as f64 / fs;
            let bar = (t / 0.5) as usize;
            let tn = t - bar as f64 * 0.5;
            let env = (-tn * 4.0).exp() * (1.0 - (-tn * 400.0).exp());
            let mut v = 0.0;
            for k in 0..3 {
                let f = notes[(bar + 2 * k) % notes.len()];
                for h in 1..6 {
                    v += env * (TAU * f * h as f64 * t).sin() / (h * h) as f64;
                }
            }
            v += 0.8 * (TAU * 55.0 * (1 + bar % 3) as f64 * t).sin() * (-tn * 2.0).exp();
            v += 0.7 * lcg(&mut seed) * (-(t % 0.25) * 60.0).exp();
            v * if (t % 2.0) > 1.5 { 0.3 } else { 1.0 }
        })
        .collect()
}

/// Reference K-weighting (ITU-R BS.1770-4) at 48 kHz, with the pre-filter
/// shelf and RLB high-pass coefficients typed in from the recommendation's
/// tables: an independent check of the loudness estimators, which compute
/// their coefficients from the analog prototypes at any rate.
pub fn k_weighted_48k(x: &[f64]) -> Vec<f64> {
    let stages = [
        (
            [
                1.535_124_859_586_97,
                -2.691_696_189_406_38,
                1.198_392_810_852_85,
            ],
            [-1.690_659_293_182_41, 0.732_480_774_215_85],
        ),
        (
            [1.0, -2.0, 1.0],
            [-1.990_047_454_833_98, 0.990_072_250_366_21],
        ),
    ];
    let mut y = x.to_vec();
    for (b, a) in stages {
        let (mut x1, mut x2, mut y1, mut y2) = (0.0, 0.0, 0.0, 0.0);
        for v in y.iter_mut() {
            let out = b[0] * *v + b[1] * x1 + b[2] * x2 - a[0] * y1 - a[1] * y2;
            (x2, x1, y2, y1) = (x1, *v, y1, out);
            *v = out;
        }
    }
    y
}
