//! Deterministic test signals, shared by the unit tests, the integration
//! tests and the benches so that all of them measure on the same material.
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
