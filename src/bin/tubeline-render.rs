//! `tubeline-render`: run WAV files through Tubeline's chain offline.
//!
//! ```text
//! tubeline-render INPUT.wav OUTPUT.wav [--set id=value]... [--preset FILE|NAME]
//! tubeline-render --demo [OUTPUT.wav] [--set id=value]...
//! tubeline-render --list-presets | --list-params
//! ```
//!
//! The output keeps the input's sample rate and channel count and is written
//! as 32-bit float WAV (the chain can exceed 0 dBFS; nothing is clipped). It
//! is written to a temporary file beside OUTPUT and renamed into place only
//! when complete, so a failed render never leaves a half-written file.

use std::fs;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use nice_plug::prelude::Params;

use tubeline::dsp::headphone::{
    load_report, parse_impedance_csv, HeadphoneLevels, HeadphoneModel, HeadphoneSettings,
    ImpedanceCurve,
};
use tubeline::params::TubelineParams;
use tubeline::presets;
use tubeline::render::{demo_signal, render, RenderReport};

/// Render WAV files through Tubeline's analog chain (DI box, tube preamp,
/// headphone amp) with the same DSP core as the plugin.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Cli {
    /// Input WAV file (mono or stereo, any sample rate). Not used with --demo.
    input: Option<PathBuf>,
    /// Output WAV file (32-bit float, same rate and channels as the input).
    output: Option<PathBuf>,
    /// Set a parameter by its ID with a plain value: dB, %, Hz, ohms, on/off,
    /// or a choice's name, e.g. --set pad=on --set in_trim=-6 --set cal=+20.
    /// May be repeated. Applied after --preset.
    #[arg(long = "set", value_name = "ID=VALUE")]
    set: Vec<String>,
    /// Load a preset: a preset file, a saved state file (the JSON the plugin
    /// saves, or a host's saved CLAP state), or a factory preset's name
    /// (case and punctuation do not matter; see --list-presets). A file
    /// of that name wins over a factory preset.
    #[arg(long, value_name = "FILE|NAME")]
    preset: Option<String>,
    /// Drive a measured headphone instead of a modelled one: an impedance
    /// CSV (frequency Hz, |Z| ohm, phase degrees, as REW, ARTA or DATS
    /// export). Switches the headphone amp in. Without it, a preset that
    /// chooses the "Measured curve" headphone uses the curve it names.
    #[arg(long, value_name = "FILE")]
    hp_csv: Option<PathBuf>,
    /// Render the built-in demo signal (6 s: tone, sweep, chord) instead of
    /// an input file. The first positional argument is then the output
    /// (default: tubeline-demo.wav).
    #[arg(long)]
    demo: bool,
    /// Host block size to process with (1 … 8192). The output does not depend
    /// on it; it is here to prove that.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..=8192))]
    block: u32,
    /// Sample rate of the demo signal, in Hz.
    #[arg(long, default_value_t = 48_000)]
    demo_rate: u32,
    /// List every parameter ID with its range and default, then exit.
    #[arg(long)]
    list_params: bool,
    /// List the factory presets with their descriptions, then exit.
    #[arg(long)]
    list_presets: bool,
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let params = TubelineParams::default();
    if cli.list_params {
        print_params(&params);
        return Ok(());
    }
    if cli.list_presets {
        print_presets();
        return Ok(());
    }
    if let Some(preset) = &cli.preset {
        load_preset(&params, preset)?;
    }
    for assignment in &cli.set {
        let (id, value) = assignment.split_once('=').with_context(|| {
            format!("--set {assignment}: write it as ID=VALUE, for example --set pad=on")
        })?;
        params
            .set_from_text(id.trim(), value)
            .with_context(|| format!("--set {assignment}"))?;
    }

    let (input, sample_rate, output_path) = if cli.demo {
        let out = cli
            .input
            .clone()
            .unwrap_or_else(|| PathBuf::from("tubeline-demo.wav"));
        if cli.output.is_some() {
            bail!("with --demo, give only the output file");
        }
        (demo_signal(f64::from(cli.demo_rate)), cli.demo_rate, out)
    } else {
        let (Some(inp), Some(out)) = (&cli.input, &cli.output) else {
            bail!("give an input and an output file: tubeline-render INPUT.wav OUTPUT.wav (or try --demo)");
        };
        let (samples, rate) = read_wav(inp)?;
        (samples, rate, out.clone())
    };

    // The measured curve: --hp-csv, or the one a preset names for the
    // "Measured curve" headphone.
    let preset_curve = params.hp_csv.read().map(|p| p.clone()).unwrap_or_default();
    let curve_path = cli.hp_csv.clone().or_else(|| {
        let custom = params.snapshot(true).headphone.model == HeadphoneModel::Custom;
        (custom && !preset_curve.is_empty()).then(|| PathBuf::from(&preset_curve))
    });
    let curve = match &curve_path {
        Some(path) => {
            let text = fs::read_to_string(path)
                .with_context(|| format!("cannot read impedance curve {}", path.display()))?;
            Some(
                parse_impedance_csv(&text)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
            )
        }
        None => None,
    };

    let frames = input.first().map_or(0, Vec::len);
    let bar = progress_bar(frames, sample_rate);
    let started = Instant::now();
    let (output, report) = render(
        &params,
        curve.as_ref(),
        &input,
        f64::from(sample_rate),
        cli.block as usize,
        |done| bar.set_position(done as u64),
    );
    let elapsed = started.elapsed().as_secs_f64();
    bar.finish_and_clear();

    write_wav_atomically(&output_path, &output, sample_rate)?;
    let mut settings = params.snapshot(true);
    if curve.is_some() {
        settings.hp_on = true;
        settings.headphone.model = HeadphoneModel::Custom;
    }
    print_report(
        &report,
        frames,
        sample_rate,
        elapsed,
        &output_path,
        settings.cal_dbu,
    );
    if settings.hp_on {
        print_headphone_report(
            &settings.headphone,
            curve.as_ref(),
            report.headphone_peak.as_ref(),
        );
    }
    Ok(())
}

/// Load `--preset`: a file if one exists at that path, else a factory
/// preset of that name.
fn load_preset(params: &TubelineParams, preset: &str) -> Result<()> {
    let path = Path::new(preset);
    let loaded = if path.is_file() {
        presets::load_user(path)?
    } else if let Some(p) = presets::find_factory(preset) {
        p
    } else {
        bail!(
            "--preset {preset}: there is no such file, and no factory preset has that name. \
             Factory presets (see --list-presets): {}",
            presets::factory_names().join("; ")
        );
    };
    params
        .apply_state(&loaded.state)
        .with_context(|| format!("preset {preset}"))
}

fn print_presets() {
    for p in presets::factory() {
        println!("{}", p.name);
        println!("    {}", p.description);
    }
}

/// Read a WAV file into planar f32 channels.
fn read_wav(path: &Path) -> Result<(Vec<Vec<f32>>, u32)> {
    let hint = "Tubeline reads mono or stereo WAV files, PCM 8/16/24/32-bit or 32-bit float";
    let mut reader = hound::WavReader::open(path)
        .with_context(|| format!("cannot read {} as a WAV file ({hint})", path.display()))?;
    let spec = reader.spec();
    let channels = usize::from(spec.channels);
    if !(1..=2).contains(&channels) {
        bail!(
            "{} has {channels} channels; {hint}. Split it into mono or stereo files first.",
            path.display()
        );
    }
    let interleaved: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => {
            if spec.bits_per_sample != 32 {
                bail!(
                    "{} is {}-bit float; {hint}",
                    path.display(),
                    spec.bits_per_sample
                );
            }
            reader.samples::<f32>().collect::<Result<_, _>>()
        }
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32;
            reader
                .samples::<i32>()
                .map(|s| s.map(|v| v as f32 * scale))
                .collect::<Result<_, _>>()
        }
    }
    .with_context(|| format!("{} is damaged or truncated ({hint})", path.display()))?;
    let mut planar = vec![Vec::with_capacity(interleaved.len() / channels); channels];
    for frame in interleaved.chunks_exact(channels) {
        for (ch, &s) in planar.iter_mut().zip(frame) {
            ch.push(s);
        }
    }
    Ok((planar, spec.sample_rate))
}

/// Write to a temporary file beside `path`, then rename it into place.
fn write_wav_atomically(path: &Path, channels: &[Vec<f32>], sample_rate: u32) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".tubeline-render-")
        .suffix(".wav.tmp")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))?;
    let spec = hound::WavSpec {
        channels: channels.len() as u16,
        sample_rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    {
        let mut writer = hound::WavWriter::new(BufWriter::new(tmp.as_file()), spec)
            .context("cannot start the WAV file")?;
        let frames = channels.first().map_or(0, Vec::len);
        for i in 0..frames {
            for ch in channels {
                writer.write_sample(ch[i])?;
            }
        }
        writer
            .finalize()
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    tmp.persist(path)
        .with_context(|| format!("cannot move the finished file to {}", path.display()))?;
    Ok(())
}

fn progress_bar(frames: usize, sample_rate: u32) -> ProgressBar {
    // Only worth a bar for files longer than ten seconds.
    if frames < 10 * sample_rate as usize {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(frames as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:40}] {percent}% {elapsed} (eta {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

fn print_report(
    r: &RenderReport,
    frames: usize,
    rate: u32,
    elapsed: f64,
    out: &Path,
    cal_dbu: f64,
) {
    let seconds = frames as f64 / f64::from(rate);
    println!("wrote {} ({seconds:.2} s at {rate} Hz)", out.display());
    println!("levels at the converter, 0 dBFS = {cal_dbu:+.0} dBu (a full-scale sine):");
    println!(
        "in : peak {:7.2} dBFS   rms {:7.2} dBFS = {:7.2} dBu",
        r.peak_in_dbfs,
        r.rms_in_dbfs,
        r.rms_in_dbfs + 3.0103 + cal_dbu
    );
    println!(
        "out: peak {:7.2} dBFS   rms {:7.2} dBFS = {:7.2} dBu",
        r.peak_out_dbfs,
        r.rms_out_dbfs,
        r.rms_out_dbfs + 3.0103 + cal_dbu
    );
    println!(
        "latency {} samples ({:.2} ms), removed from the output",
        r.latency_samples,
        r.latency_samples as f64 * 1000.0 / f64::from(rate)
    );
    if elapsed > 0.0 {
        let channels_note = "all channels";
        println!(
            "speed {:.0}x real time ({:.1} ns per sample frame, {channels_note})",
            seconds / elapsed,
            elapsed * 1e9 / frames.max(1) as f64
        );
    }
}

fn print_headphone_report(
    hp: &HeadphoneSettings,
    curve: Option<&ImpedanceCurve>,
    peak: Option<&HeadphoneLevels>,
) {
    let r = load_report(hp.model, curve, hp.amp_z_ohms);
    println!(
        "headphone: {} ({:.0} ohm nominal) from {:.1} ohm: damping factor {:.1}",
        if curve.is_some() {
            "measured curve"
        } else {
            hp.model.name()
        },
        r.nominal_ohms,
        hp.amp_z_ohms,
        r.damping_factor
    );
    println!(
        "  level at 1 kHz {:+.2} dB, response deviation 20 Hz-20 kHz {:.2} dB{}",
        r.level_1k_db,
        r.deviation_db,
        if hp.normalize {
            " (normalized: the 1 kHz loss is made up)"
        } else {
            ""
        }
    );
    if let Some(p) = peak {
        println!(
            "  loudest 300 ms at the headphone: {:.3} V rms, {:.2} mW",
            p.v_rms_volts, p.power_mw
        );
    }
    if let Some(w) = r.warning {
        println!("  warning: {w}");
    }
}

fn print_params(params: &TubelineParams) {
    println!("{:<10} {:<8} {:<22} default", "id", "group", "name");
    for (id, ptr, group) in params.param_map() {
        // SAFETY: `ptr` points into `params`, alive for this call.
        let (name, default) = unsafe {
            (
                ptr.name().to_string(),
                ptr.normalized_value_to_string(ptr.default_normalized_value(), true),
            )
        };
        println!("{id:<10} {group:<8} {name:<22} {default}");
    }
}
