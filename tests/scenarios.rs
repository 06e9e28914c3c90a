//! The scenarios people ask about, end to end through the renderer: volts
//! in (a +4 dBu line signal under the converter calibration), dBu out.

mod util;

use std::path::Path;
use std::process::Command;

use util::*;

const RATE: u32 = 48_000;
const CAL_DBU: f64 = 18.0;

/// A 1 kHz sine at `dbu` rms under the default calibration: a full-scale
/// sine (peak 1.0) is +18 dBu rms.
fn tone_at_dbu(dbu: f64, secs: f64) -> Vec<f32> {
    let peak = 10f64.powf((dbu - CAL_DBU) / 20.0);
    sine(
        1000.0,
        peak,
        f64::from(RATE),
        (secs * f64::from(RATE)) as usize,
    )
}

fn render(input: &[f32], sets: &[&str]) -> Vec<f32> {
    let dir = tempfile::tempdir().unwrap();
    let (i, o) = (dir.path().join("in.wav"), dir.path().join("out.wav"));
    write_mono(&i, input);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tubeline-render"));
    cmd.arg(&i).arg(&o);
    for s in sets {
        cmd.args(["--set", s]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut r = hound::WavReader::open(&o).unwrap();
    r.samples::<f32>().map(Result::unwrap).collect()
}

fn write_mono(path: &Path, x: &[f32]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for &v in x {
        w.write_sample(v).unwrap();
    }
    w.finalize().unwrap();
}

/// dBu rms of the steady second half of a render (a sine's rms is 3.01 dB
/// below its peak, and a full-scale peak is +18 dBu rms).
fn dbu_of(x: &[f32]) -> f64 {
    rms_db(&x[x.len() / 2..]) + 20.0 * 2f64.sqrt().log10() + CAL_DBU
}

#[test]
fn line_level_through_the_di_lands_at_mic_level() {
    let line = tone_at_dbu(4.0, 1.0);
    let base = [
        "source=pro_line",
        "pre_on=off",
        "di_on=on",
        "di_source=line_out",
        "di_load=1500",
    ];
    // 12:1 is −21.58 dB: +4 dBu → −17.58 dBu (the 100 Ω source costs 0.004 dB).
    let out = render(&line, &base);
    let dbu = dbu_of(&out);
    assert!((dbu - (4.0 - 21.584)).abs() < 0.05, "DI out {dbu:.3} dBu");
    // With the DI's −15 dB pad: about −32.6 dBu.
    let mut padded = base.to_vec();
    padded.push("di_pad=-15");
    let dbu = dbu_of(&render(&line, &padded));
    assert!(
        (dbu - (4.0 - 21.584 - 15.0)).abs() < 0.05,
        "padded {dbu:.3} dBu"
    );
}

#[test]
fn the_di_keeps_a_line_signal_clean_at_moderate_preamp_gain() {
    // One second at 48 kHz holds exactly 1000 cycles of 1 kHz: bin 1000 of
    // the steady last 24 000 samples is bin 500.
    let line = tone_at_dbu(4.0, 1.0);
    let preamp = [
        "source=pro_line",
        "pre_on=on",
        "gain=10",
        "level=-40",
        "auto_gain=off",
    ];
    let straight = render(&line, &preamp);
    let mut via_di = preamp.to_vec();
    via_di.extend(["di_on=on", "di_pad=-15"]);
    let through_di = render(&line, &via_di);
    let steady = |x: &[f32]| thd(&x[24_000..], 500);
    let (thd_straight, thd_di) = (steady(&straight), steady(&through_di));
    println!(
        "+4 dBu at gain 10 dB / level -40 dB: straight in THD {:.1} %, via DI -15 dB pad {:.3} %",
        100.0 * thd_straight,
        100.0 * thd_di
    );
    // Straight into the mic input the first grid is driven far past conduction.
    assert!(
        thd_straight > 0.10,
        "straight in: THD {:.2} %",
        100.0 * thd_straight
    );
    // Through the DI and its pad the first grid sees 36.6 dB less: clean.
    assert!(thd_di < 0.01, "through the DI: THD {:.3} %", 100.0 * thd_di);
    assert!(thd_straight / thd_di > 30.0);
}
