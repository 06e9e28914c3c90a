//! The plugin's defaults are useful on insert (issue 3): a track at about
//! −18 dBFS gets gentle, audible colour at matched loudness.

mod util;

use tubeline::params::TubelineParams;
use util::*;

#[test]
fn defaults_give_gentle_colour_at_matched_loudness() {
    let sr = 48_000.0;
    let s = TubelineParams::default().snapshot(false);
    assert!(s.pre_on, "the preamp is in by default");
    // Four seconds of 1 kHz at −18 dBFS peak; measure the last second
    // (a whole number of cycles: bin 1000 of 48 000).
    let input = vec![sine(1000.0, 10f64.powf(-18.0 / 20.0), sr, 4 * 48_000)];
    let (out, latency) = run_chain(s, &input, sr, 512);
    let tail = &out[0][3 * 48_000..];
    let thd = thd(tail, 1000);
    let level = rms_db(tail) - rms_db(&input[0][3 * 48_000 - latency..4 * 48_000 - latency]);
    println!("defaults: THD {:.2} %, level {level:+.2} dB", 100.0 * thd);
    assert!((0.005..=0.02).contains(&thd), "THD {:.2} %", 100.0 * thd);
    assert!(level.abs() <= 0.5, "level {level:+.2} dB");
}

#[test]
fn auto_gain_matches_loudness_from_the_first_sample_on_program_material() {
    // The demo signal starts from silence: the auto-gain must compare the
    // track with what the chain made of the same samples, or its first
    // estimate reads the (still silent, latency-delayed) output as a huge
    // loss and blows the level up. Defaults, and driven hard. (The top of
    // the range, Gain 60 dB and Level 0 dB, is checked in tests/scenarios.rs.)
    let sr = 48_000.0;
    let input: Vec<Vec<f32>> = tubeline::render::demo_signal(sr);
    for (gain, level) in [(20.0, -20.0), (45.0, -35.0)] {
        let p = TubelineParams::default();
        p.set_from_text("gain", &gain.to_string()).unwrap();
        p.set_from_text("level", &level.to_string()).unwrap();
        let (out, _) = run_chain(p.snapshot(false), &input, sr, 512);
        let peak_in = input[0].iter().fold(0f32, |m, v| m.max(v.abs()));
        let peak_out = out[0].iter().fold(0f32, |m, v| m.max(v.abs()));
        let level_db = rms_db(&out[0]) - rms_db(&input[0]);
        println!("gain {gain} level {level}: rms {level_db:+.2} dB, peak {peak_out} vs {peak_in}");
        assert!(level_db.abs() < 1.0, "rms differs by {level_db:+.2} dB");
        assert!(
            peak_out < 2.0 * peak_in,
            "peak {peak_out} vs input {peak_in}"
        );
    }
}
