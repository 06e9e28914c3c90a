//! The offline renderer end to end: the binary, its files and its errors.

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;

use util::*;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tubeline-render"))
}

fn write_wav(path: &Path, channels: &[Vec<f32>], rate: u32, bits: u16, float: bool) {
    let spec = hound::WavSpec {
        channels: channels.len() as u16,
        sample_rate: rate,
        bits_per_sample: bits,
        sample_format: if float {
            hound::SampleFormat::Float
        } else {
            hound::SampleFormat::Int
        },
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..channels[0].len() {
        for ch in channels {
            if float {
                w.write_sample(ch[i]).unwrap();
            } else {
                w.write_sample(to_pcm(ch[i], bits)).unwrap();
            }
        }
    }
    w.finalize().unwrap();
}

/// `x` as a `bits`-bit PCM code, by dasp's conversion: x · 2^(bits − 1)
/// truncated toward zero (not rounded). dasp takes −1 ≤ x < 1 (+1.0 would
/// overflow 24 bits): the test signals stay inside.
fn to_pcm(x: f32, bits: u16) -> i32 {
    use dasp::sample::{types::I24, Sample};
    match bits {
        8 => i32::from(x.to_sample::<i8>()),
        16 => i32::from(x.to_sample::<i16>()),
        24 => x.to_sample::<I24>().inner(),
        32 => x.to_sample::<i32>(),
        _ => panic!("no {bits}-bit PCM"),
    }
}

fn read_wav(path: &Path) -> (Vec<Vec<f32>>, hound::WavSpec) {
    let mut r = hound::WavReader::open(path).unwrap();
    let spec = r.spec();
    let data: Vec<f32> = r.samples::<f32>().map(Result::unwrap).collect();
    let n = usize::from(spec.channels);
    let planar = (0..n)
        .map(|c| data.iter().skip(c).step_by(n).copied().collect())
        .collect();
    (planar, spec)
}

/// Every stage out and a pro-line source: the chain is an exact identity
/// (the plugin's defaults put the tube preamp in, with a mic source).
const ALL_OUT: [&str; 4] = ["--set", "pre_on=off", "--set", "source=pro_line"];

/// `args` followed by [`ALL_OUT`].
fn all_out<'a>(args: &[&'a str]) -> Vec<&'a str> {
    args.iter().copied().chain(ALL_OUT).collect()
}

fn run_ok(args: &[&str]) -> String {
    let out = bin().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?} failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn run_err(args: &[&str]) -> String {
    let out = bin().args(args).output().unwrap();
    assert!(!out.status.success(), "{args:?} should have failed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn p(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn keeps_rate_and_channels_and_lines_up_with_the_input() {
    let dir = tmp();
    for (rate, channels) in [(44_100u32, 1usize), (96_000, 2)] {
        let input: Vec<Vec<f32>> = (0..channels)
            .map(|c| sine(440.0 * (c + 1) as f64, 0.4, f64::from(rate), 20_000))
            .collect();
        let (i, o) = (p(dir.path(), "in.wav"), p(dir.path(), "out.wav"));
        write_wav(&i, &input, rate, 32, true);
        let report = run_ok(&all_out(&[s(&i), s(&o)]));
        assert!(report.contains("latency"), "{report}");
        let (out, spec) = read_wav(&o);
        assert_eq!(spec.sample_rate, rate);
        assert_eq!(usize::from(spec.channels), channels);
        // Defaults are an identity, and the latency is removed.
        assert_eq!(out, input);
    }
}

#[test]
fn reads_integer_pcm_and_applies_set_values() {
    let dir = tmp();
    let input = vec![sine(1000.0, 0.5, 48_000.0, 48_000)];
    let (i, o) = (p(dir.path(), "in24.wav"), p(dir.path(), "out.wav"));
    write_wav(&i, &input, 48_000, 24, false);
    run_ok(&all_out(&[
        s(&i),
        s(&o),
        "--set",
        "pad=on",
        "--set",
        "out_trim=+6 dB",
    ]));
    let (out, _) = read_wav(&o);
    let gain = rms_db(&out[0][4800..]) - rms_db(&input[0][4800..]);
    assert!((gain - (-14.0)).abs() < 0.01, "pad + 6 dB trim gave {gain}");
}

#[test]
fn integer_pcm_reads_as_its_code_over_full_scale_at_every_depth() {
    // Codes written as they are (hound, no conversion); every stage out is
    // an exact identity, so the float output is the reader's conversion:
    // code / 2^(bits − 1), the format's definition.
    let dir = tmp();
    for bits in [8u16, 16, 24, 32] {
        let full = 1i64 << (bits - 1);
        let codes: Vec<i32> = [-full, -full + 1, -1, 0, 1, full / 3, full - 1]
            .iter()
            .map(|&c| c as i32)
            .collect();
        let i = p(dir.path(), &format!("codes{bits}.wav"));
        let o = p(dir.path(), &format!("out{bits}.wav"));
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 48_000,
            bits_per_sample: bits,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&i, spec).unwrap();
        for &c in &codes {
            w.write_sample(c).unwrap();
        }
        w.finalize().unwrap();
        run_ok(&all_out(&[s(&i), s(&o)]));
        let (out, _) = read_wav(&o);
        let expected: Vec<f32> = codes
            .iter()
            .map(|&c| (f64::from(c) / full as f64) as f32)
            .collect();
        assert_eq!(out[0], expected, "{bits}-bit");
        assert_eq!(out[0][0], -1.0, "{bits}-bit negative full scale");
    }
}

#[test]
fn output_does_not_depend_on_block_size_and_re_renders_identically() {
    let dir = tmp();
    let input = vec![noise(0.5, 30_000, 3), sine(50.0, 0.7, 44_100.0, 30_000)];
    let i = p(dir.path(), "in.wav");
    write_wav(&i, &input, 44_100, 32, true);
    let mut renders = Vec::new();
    for block in ["1", "7", "64", "513", "4096", "4096"] {
        let o = p(dir.path(), &format!("out{}.wav", renders.len()));
        run_ok(&[
            s(&i),
            s(&o),
            "--block",
            block,
            "--set",
            "polarity=on",
            "--set",
            "mix=60",
        ]);
        renders.push(std::fs::read(&o).unwrap());
    }
    assert!(renders.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn reads_a_preset_in_the_plugin_state_format() {
    let dir = tmp();
    let params = tubeline::params::TubelineParams::default();
    params.set_from_text("in_trim", "-12").unwrap();
    params.set_from_text("pre_on", "off").unwrap();
    params.set_from_text("source", "pro_line").unwrap();
    let preset = p(dir.path(), "p.json");
    std::fs::write(&preset, serde_json::to_string(&params.to_state()).unwrap()).unwrap();
    let input = vec![sine(1000.0, 0.5, 48_000.0, 9600)];
    let (i, o) = (p(dir.path(), "in.wav"), p(dir.path(), "out.wav"));
    write_wav(&i, &input, 48_000, 32, true);
    run_ok(&[s(&i), s(&o), "--preset", s(&preset)]);
    // (The preset switches every stage out itself.)
    let (out, _) = read_wav(&o);
    let gain = rms_db(&out[0][2000..]) - rms_db(&input[0][2000..]);
    assert!((gain + 12.0).abs() < 0.01, "{gain}");
    // A host's saved CLAP state (length-prefixed JSON) loads too.
    let json = serde_json::to_vec(&params.to_state()).unwrap();
    let mut clap_state = (json.len() as u64).to_le_bytes().to_vec();
    clap_state.extend_from_slice(&json);
    let saved = p(dir.path(), "saved.state");
    std::fs::write(&saved, &clap_state).unwrap();
    run_ok(&[s(&i), s(&o), "--preset", s(&saved)]);
    let (out, _) = read_wav(&o);
    let gain = rms_db(&out[0][2000..]) - rms_db(&input[0][2000..]);
    assert!((gain + 12.0).abs() < 0.01, "{gain}");
    // --set wins over the preset.
    run_ok(&[s(&i), s(&o), "--preset", s(&preset), "--set", "in_trim=0"]);
    assert_eq!(read_wav(&o).0, input);
}

#[test]
fn demo_renders_with_no_input_file() {
    let dir = tmp();
    let o = p(dir.path(), "demo.wav");
    let report = run_ok(&["--demo", s(&o), "--set", "pad=on"]);
    assert!(report.contains("out: peak"), "{report}");
    let (out, spec) = read_wav(&o);
    assert_eq!(spec.channels, 2);
    assert_eq!(out[0].len(), 6 * 48_000);
    assert!(out.iter().flatten().any(|&v| v != 0.0));
}

#[test]
fn bad_input_gets_a_clear_error_and_no_output_file() {
    let dir = tmp();
    let o = p(dir.path(), "out.wav");
    let good = p(dir.path(), "good.wav");
    write_wav(
        &good,
        &[sine(100.0, 0.1, 48_000.0, 4800)],
        48_000,
        16,
        false,
    );

    // Not a WAV at all.
    let junk = p(dir.path(), "junk.wav");
    std::fs::write(&junk, b"this is not audio").unwrap();
    let e = run_err(&[s(&junk), s(&o)]);
    assert!(e.contains("cannot read") && e.contains("WAV"), "{e}");

    // A file that does not exist.
    let e = run_err(&[s(&p(dir.path(), "missing.wav")), s(&o)]);
    assert!(e.contains("missing.wav"), "{e}");

    // A truncated WAV.
    let bytes = std::fs::read(&good).unwrap();
    let cut = p(dir.path(), "cut.wav");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let e = run_err(&[s(&cut), s(&o)]);
    assert!(e.contains("cut.wav"), "{e}");

    // Too many channels.
    let six = p(dir.path(), "six.wav");
    write_wav(&six, &vec![vec![0.0; 100]; 6], 48_000, 16, false);
    let e = run_err(&[s(&six), s(&o)]);
    assert!(e.contains("6 channels"), "{e}");

    // Unknown ID, out of range, bad word, missing '='.
    let e = run_err(&[s(&good), s(&o), "--set", "drive=3"]);
    assert!(
        e.contains("unknown parameter ID \"drive\"") && e.contains("in_trim"),
        "{e}"
    );
    let e = run_err(&[s(&good), s(&o), "--set", "in_trim=40"]);
    assert!(e.contains("-24") && e.contains("24"), "{e}");
    let e = run_err(&[s(&good), s(&o), "--set", "pad=sometimes"]);
    assert!(e.contains("on or off"), "{e}");
    let e = run_err(&[s(&good), s(&o), "--set", "pad"]);
    assert!(e.contains("ID=VALUE"), "{e}");

    // Corrupt presets.
    let preset = p(dir.path(), "bad.json");
    std::fs::write(&preset, "{ not json").unwrap();
    let e = run_err(&[s(&good), s(&o), "--preset", s(&preset)]);
    assert!(e.contains("not a Tubeline preset"), "{e}");
    std::fs::write(
        &preset,
        r#"{"version":"0.1.0","params":{"in_trim":{"f32":99.0}},"fields":{}}"#,
    )
    .unwrap();
    let e = run_err(&[s(&good), s(&o), "--preset", s(&preset)]);
    assert!(e.contains("in_trim") && e.contains("outside"), "{e}");

    assert!(!o.exists(), "a failed render left an output file");
    // No temporary files left behind either.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_failed_render_keeps_the_previous_output() {
    let dir = tmp();
    let o = p(dir.path(), "out.wav");
    std::fs::write(&o, b"previous render").unwrap();
    let junk = p(dir.path(), "junk.wav");
    std::fs::write(&junk, b"RIFF....WAVEjunk").unwrap();
    run_err(&[s(&junk), s(&o)]);
    assert_eq!(std::fs::read(&o).unwrap(), b"previous render");
}

#[test]
fn headphone_report_gives_levels_damping_and_a_plain_warning() {
    let dir = tmp();
    let o = p(dir.path(), "demo.wav");
    // 32 Ω closed-back from an IEC 120 Ω output: docs/DESIGN.md's numbers are a
    // 2.90 dB response deviation and 13.5 dB less level; 120 > 32/8 warns.
    let report = run_ok(&["--demo", s(&o), "--set", "hp_on=on", "--set", "amp_z=120"]);
    assert!(report.contains("damping factor 0.3"), "{report}");
    assert!(report.contains("level at 1 kHz -13.5"), "{report}");
    assert!(report.contains("deviation 20 Hz-20 kHz 2.9"), "{report}");
    assert!(report.contains("mW"), "{report}");
    assert!(
        report.contains("warning: Output impedance 120 ohm"),
        "{report}"
    );
    // From an ideal source there is nothing to warn about.
    let report = run_ok(&["--demo", s(&o), "--set", "hp_on=on", "--set", "amp_z=0.1"]);
    assert!(report.contains("damping factor 320"), "{report}");
    assert!(!report.contains("warning"), "{report}");
}

#[test]
fn a_measured_headphone_curve_from_csv_drives_the_amp() {
    let dir = tmp();
    // A purely resistive 32 Ω "headphone" from a 120 Ω output: the voltage
    // divider gives 32/152 at every frequency, −13.53 dB.
    let csv = resistive_csv(32.0);
    let curve = p(dir.path(), "flat32.csv");
    std::fs::write(&curve, &csv).unwrap();
    let input = vec![sine(1000.0, 0.1, 48_000.0, 24_000)];
    let (i, o) = (p(dir.path(), "in.wav"), p(dir.path(), "out.wav"));
    write_wav(&i, &input, 48_000, 32, true);
    let report = run_ok(&all_out(&[
        s(&i),
        s(&o),
        "--hp-csv",
        s(&curve),
        "--set",
        "amp_z=120",
    ]));
    assert!(report.contains("measured curve"), "{report}");
    let (out, _) = read_wav(&o);
    let gain = rms_db(&out[0][4800..]) - rms_db(&input[0][4800..]);
    let expected = 20.0 * (32.0f64 / 152.0).log10();
    assert!(
        (gain - expected).abs() < 0.1,
        "{gain} dB, expected {expected}"
    );

    // A preset that chooses the "Measured curve" headphone names its file.
    let params = curve_params(s(&curve));
    let preset = p(dir.path(), "measured.json");
    std::fs::write(&preset, serde_json::to_string(&params.to_state()).unwrap()).unwrap();
    run_ok(&[s(&i), s(&o), "--preset", s(&preset)]);
    let (out, _) = read_wav(&o);
    let gain = rms_db(&out[0][4800..]) - rms_db(&input[0][4800..]);
    assert!(
        (gain - expected).abs() < 0.1,
        "preset: {gain} dB, expected {expected}"
    );

    // A preset carrying the curve's points renders the same without the
    // file (as one saved by the plugin does).
    let points = tubeline::headphone_curve::read_curve_points(&curve).unwrap();
    params.hp_curve.store_loaded(s(&curve), points);
    let state = params.to_state();
    std::fs::write(&preset, serde_json::to_string(&state).unwrap()).unwrap();
    std::fs::remove_file(&curve).unwrap();
    run_ok(&[s(&i), s(&o), "--preset", s(&preset)]);
    let (out_saved, _) = read_wav(&o);
    assert_eq!(out_saved, out, "preset with points, file gone");
    // Without them (an older preset), the missing file is named.
    let mut old = state;
    old.fields.remove("hp_curve");
    std::fs::write(&preset, serde_json::to_string(&old).unwrap()).unwrap();
    let e = run_err(&[s(&i), s(&o), "--preset", s(&preset)]);
    assert!(
        e.contains("flat32.csv") && e.contains("load the CSV again"),
        "{e}"
    );

    // A malformed curve names the line and the problem, and nothing is written.
    let bad = p(dir.path(), "bad.csv");
    std::fs::write(&bad, "f,z,phase\n20,32,0\n40,abc,0\n").unwrap();
    std::fs::remove_file(&o).unwrap();
    let e = run_err(&[s(&i), s(&o), "--hp-csv", s(&bad)]);
    assert!(e.contains("bad.csv") && e.contains("line 3"), "{e}");
    assert!(!o.exists());
}

/// The report line naming the quality and the latency removed.
fn quality_line(report: &str) -> &str {
    report
        .lines()
        .find(|l| l.trim_start().starts_with("quality "))
        .unwrap_or_else(|| panic!("no quality line in {report}"))
}

#[test]
fn quality_defaults_to_high_and_live_renders_what_the_plugin_plays_live() {
    let dir = tmp();
    // The plugin's defaults: the tube preamp in, where the two qualities
    // differ (oversampling filters and latency).
    let input = vec![noise(0.3, 9600, 7), sine(330.0, 0.5, 48_000.0, 9600)];
    let i = p(dir.path(), "in.wav");
    write_wav(&i, &input, 48_000, 32, true);
    let (default, high, live) = (
        p(dir.path(), "default.wav"),
        p(dir.path(), "high.wav"),
        p(dir.path(), "live.wav"),
    );
    let r_default = run_ok(&[s(&i), s(&default)]);
    let r_high = run_ok(&[s(&i), s(&high), "--quality", "high"]);
    let r_live = run_ok(&[s(&i), s(&live), "--quality", "live"]);
    assert_eq!(
        quality_line(&r_default),
        "quality high: latency 75 samples (1.56 ms), removed from the output"
    );
    assert_eq!(quality_line(&r_high), quality_line(&r_default));
    assert_eq!(
        quality_line(&r_live),
        "quality live: latency 15 samples (0.31 ms), removed from the output"
    );
    assert_eq!(
        std::fs::read(&default).unwrap(),
        std::fs::read(&high).unwrap()
    );
    // Each is the library's render at that quality (what the plugin plays
    // at Quality = Live in real time, and in a host's offline bounce).
    let params = tubeline::params::TubelineParams::default();
    for (file, quality) in [
        (&high, tubeline::dsp::oversampling::Quality::High),
        (&live, tubeline::dsp::oversampling::Quality::Live),
    ] {
        let (expected, _) =
            tubeline::render::render_at(&params, None, &input, 48_000.0, 512, quality, |_| {});
        assert_eq!(read_wav(file).0, expected, "{quality:?}");
    }
    assert_ne!(read_wav(&live).0, read_wav(&high).0);

    // The Quality parameter is the plugin's real-time choice: the renderer
    // says where its own is set.
    let e = run_err(&[s(&i), s(&live), "--set", "quality=live"]);
    assert!(e.contains("--quality live|high"), "{e}");
    let help = run_ok(&["--help"]);
    assert!(
        help.contains("--quality <QUALITY>") && help.contains("bounce what you monitored"),
        "{help}"
    );
}

/// The files in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn batch_renders_every_file_and_a_failure_stays_with_its_file() {
    let dir = tmp();
    let inputs = p(dir.path(), "in");
    std::fs::create_dir(&inputs).unwrap();
    let a = p(&inputs, "a.wav");
    let b = p(&inputs, "b.wav");
    let c = p(&inputs, "c.wav");
    let bad = p(&inputs, "bad.wav");
    write_wav(&a, &[sine(440.0, 0.4, 44_100.0, 30_000)], 44_100, 16, false);
    write_wav(
        &b,
        &[noise(0.2, 20_000, 1), noise(0.2, 20_000, 2)],
        96_000,
        32,
        true,
    );
    write_wav(&c, &[sine(60.0, 0.8, 48_000.0, 12_000)], 48_000, 24, false);
    std::fs::write(&bad, b"RIFF....WAVE not really").unwrap();
    let out = p(dir.path(), "out");
    // A previous render of the bad file's name is kept, not destroyed.
    std::fs::create_dir(&out).unwrap();
    std::fs::write(p(&out, "bad.wav"), b"previous render").unwrap();

    let run = bin()
        .args(["--out-dir", s(&out), s(&a), s(&bad), s(&b), s(&c)])
        .args(["--set", "gain=40"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success(), "a failed file must fail the run");
    for f in [&a, &b, &c] {
        assert!(stdout.contains(&format!("ok: {}", s(f))), "{stdout}");
    }
    assert!(
        stdout.contains(&format!("FAILED: {}: cannot read", s(&bad))),
        "{stdout}"
    );
    assert!(stdout.contains("rendered 3 of 4 files"), "{stdout}");
    assert!(stderr.contains("1 of 4 files failed"), "{stderr}");
    assert_eq!(listing(&out), ["a.wav", "b.wav", "bad.wav", "c.wav"]);
    assert_eq!(
        std::fs::read(p(&out, "bad.wav")).unwrap(),
        b"previous render"
    );

    // Each output is what a render of that file alone gives, byte for
    // byte, whatever the number of files rendered at once.
    let single = p(dir.path(), "single");
    std::fs::create_dir(&single).unwrap();
    for f in [&a, &b, &c] {
        let name = f.file_name().unwrap().to_str().unwrap();
        let o = p(&single, name);
        run_ok(&[s(f), s(&o), "--set", "gain=40"]);
        assert_eq!(
            std::fs::read(p(&out, name)).unwrap(),
            std::fs::read(&o).unwrap(),
            "{name}"
        );
        let (_, spec) = read_wav(&o);
        let in_spec = wav_spec(f);
        assert_eq!(
            (spec.sample_rate, spec.channels),
            (in_spec.sample_rate, in_spec.channels)
        );
    }
    let one_at_a_time = p(dir.path(), "jobs1");
    run_ok(&[
        "--out-dir",
        s(&one_at_a_time),
        "--jobs",
        "1",
        s(&a),
        s(&b),
        s(&c),
        "--set",
        "gain=40",
    ]);
    for name in ["a.wav", "b.wav", "c.wav"] {
        assert_eq!(
            std::fs::read(p(&one_at_a_time, name)).unwrap(),
            std::fs::read(p(&out, name)).unwrap(),
            "{name}"
        );
    }
}

/// The format of a WAV file (any sample format).
fn wav_spec(path: &Path) -> hound::WavSpec {
    hound::WavReader::open(path).unwrap().spec()
}

#[test]
fn batch_refuses_outputs_that_collide_or_overwrite_an_input() {
    let dir = tmp();
    let (d1, d2) = (p(dir.path(), "one"), p(dir.path(), "two"));
    std::fs::create_dir(&d1).unwrap();
    std::fs::create_dir(&d2).unwrap();
    let (x1, x2) = (p(&d1, "take.wav"), p(&d2, "take.wav"));
    write_wav(&x1, &[sine(100.0, 0.1, 48_000.0, 480)], 48_000, 16, false);
    write_wav(&x2, &[sine(200.0, 0.1, 48_000.0, 480)], 48_000, 16, false);
    let out = p(dir.path(), "out");
    let e = run_err(&["--out-dir", s(&out), s(&x1), s(&x2)]);
    assert!(e.contains("would both be written to"), "{e}");
    let before = std::fs::read(&x1).unwrap();
    let e = run_err(&["--out-dir", s(&d1), s(&x1)]);
    assert!(e.contains("over its own input"), "{e}");
    assert_eq!(std::fs::read(&x1).unwrap(), before);
    let e = run_err(&[s(&x1), s(&x1)]);
    assert!(e.contains("over its own input"), "{e}");
    let e = run_err(&["--out-dir", s(&out)]);
    assert!(e.contains("one or more input files"), "{e}");
    assert_eq!(listing(&out), Vec::<String>::new());
}

#[test]
fn sample_rates_outside_8_to_384_khz_are_refused_with_the_range() {
    let dir = tmp();
    let o = p(dir.path(), "out.wav");
    for rate in ["0", "1", "7999", "384001", "4000000000"] {
        let e = run_err(&["--demo", s(&o), "--demo-rate", rate]);
        assert!(
            e.contains(&format!("--demo-rate {rate}")) && e.contains("8000 to 384000 Hz"),
            "{rate}: {e}"
        );
        assert!(!o.exists());
    }
    // A WAV file whose header claims an absurd rate.
    let odd = p(dir.path(), "odd.wav");
    write_wav(&odd, &[vec![0.1; 100]], 1_000_000, 16, false);
    let e = run_err(&[s(&odd), s(&o)]);
    assert!(e.contains("odd.wav") && e.contains("1000000 Hz"), "{e}");
    assert!(!o.exists());
    // The edges render, through every stage, with a finite output.
    for rate in [8_000u32, 384_000] {
        let i = p(dir.path(), &format!("in{rate}.wav"));
        let input = vec![sine(100.0, 0.5, f64::from(rate), rate as usize / 10)];
        write_wav(&i, &input, rate, 32, true);
        for quality in ["live", "high"] {
            run_ok(&[
                s(&i),
                s(&o),
                "--quality",
                quality,
                "--set",
                "di_on=on",
                "--set",
                "hp_on=on",
                "--set",
                "hp_model=iem",
            ]);
            let (out, spec) = read_wav(&o);
            assert_eq!(spec.sample_rate, rate);
            assert_eq!(out[0].len(), input[0].len());
            assert!(out[0].iter().all(|v| v.is_finite()), "{rate} Hz {quality}");
            assert!(out[0].iter().any(|&v| v != 0.0), "{rate} Hz {quality}");
        }
    }
}

#[test]
fn a_preset_directory_gets_a_clear_message() {
    let dir = tmp();
    let presets = p(dir.path(), "presets");
    std::fs::create_dir(&presets).unwrap();
    std::fs::write(p(&presets, "vocal.json"), "{}").unwrap();
    let o = p(dir.path(), "out.wav");
    let e = run_err(&["--demo", s(&o), "--preset", s(&presets)]);
    assert!(
        e.contains("is a directory") && e.contains("vocal.json") && e.contains("--list-presets"),
        "{e}"
    );
    assert!(!o.exists());
}

#[test]
fn the_output_file_is_readable_like_any_new_file() {
    // Rendered through a temporary file, the output still gets the
    // permissions of a file created in the usual way (not the owner-only
    // ones of a temporary file).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let dir = tmp();
        let o = p(dir.path(), "out.wav");
        run_ok(&["--demo", s(&o), "--demo-rate", "8000"]);
        let usual = p(dir.path(), "usual");
        std::fs::File::create(&usual).unwrap();
        let mode = |f: &Path| std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&o), mode(&usual));
    }
}
