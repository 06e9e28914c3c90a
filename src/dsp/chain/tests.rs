use super::compare::CompareMatch;
use super::{ChainSettings, Source};
use crate::dsp::fma::MulAdd;
use crate::dsp::simd::in_every_build;

#[test]
fn compare_pair_is_bit_identical_to_two_mono_compares() {
    in_every_build!(compare_pair_matches_mono);
}

fn compare_pair_matches_mono<M: MulAdd>() {
    // Different material per channel (one side silent for a while, so
    // its gain holds), in block sizes that straddle the hops.
    let n = 9_000;
    let wave = |i: usize, f: f64, a: f64| a * (i as f64 * f).sin();
    let dry_l: Vec<f64> = (0..n).map(|i| wave(i, 0.031, 0.3)).collect();
    let out_l: Vec<f64> = (0..n).map(|i| (wave(i, 0.031, 0.3) * 4.0).tanh()).collect();
    let dry_r: Vec<f64> = (0..n)
        .map(|i| if i < 3_000 { 0.0 } else { wave(i, 0.27, 0.1) })
        .collect();
    let out_r: Vec<f64> = dry_r.iter().map(|v| v * 0.5).collect();
    let (mut a, mut b) = (CompareMatch::new(), CompareMatch::new());
    let (mut ga, mut gb) = (vec![0.0; n], vec![0.0; n]);
    // Some blocks run with compare off (no gains written): the estimate
    // must move the same, so the gains written later still match.
    let mut written = vec![true; n];
    let mut start = 0;
    for (k, size) in [1usize, 31, 64, 500, 3].iter().cycle().enumerate() {
        if start >= n {
            break;
        }
        let end = (start + size).min(n);
        let left = (&dry_l[start..end], &out_l[start..end], &mut ga[start..end]);
        let right = (&dry_r[start..end], &out_r[start..end], &mut gb[start..end]);
        let on = k % 4 != 1;
        CompareMatch::process_pair_as::<M>(on, &mut a, &mut b, left, right);
        written[start..end].fill(on);
        start = end;
    }
    let (mut ma, mut mb) = (CompareMatch::new(), CompareMatch::new());
    let (mut ea, mut eb) = (vec![0.0; n], vec![0.0; n]);
    ma.process::<true>(&dry_l, &out_l, &mut ea);
    mb.process::<true>(&dry_r, &out_r, &mut eb);
    assert!(written.iter().filter(|w| !**w).count() > 1000);
    for i in (0..n).filter(|&i| written[i]) {
        assert!(ga[i] == ea[i], "left differs from mono at {i}");
        assert!(gb[i] == eb[i], "right differs from mono at {i}");
    }
    // The right plays its dry signal at the output's loudness: ½ (−6 dB).
    assert!((gb[n - 1] - 0.5).abs() < 1e-3, "{}", gb[n - 1]);
}

#[test]
fn source_levels_are_the_documented_ones() {
    assert!((Source::ConsumerLine.nominal_dbu() - (-7.78)).abs() < 0.01);
    assert_eq!(Source::ProLine.nominal_dbu(), 4.0);
}

#[test]
fn calibration_maps_full_scale_to_the_stated_dbu() {
    // A full-scale sine (peak 1.0) must have cal dBu rms in volts.
    for cal in [18.0, 20.0, 22.0, 24.0] {
        let s = ChainSettings {
            cal_dbu: cal,
            ..ChainSettings::default()
        };
        let volts_rms = s.input_gain() / 2f64.sqrt();
        let dbu = 20.0 * (volts_rms / 0.7746).log10();
        assert!((dbu - cal).abs() < 0.001, "{cal}: {dbu}");
    }
}
