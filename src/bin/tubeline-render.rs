//! `tubeline-render`: run WAV files through Tubeline's chain offline.
//!
//! ```text
//! tubeline-render INPUT.wav OUTPUT.wav [--set id=value]... [--preset FILE|NAME] [--quality live|high]
//! tubeline-render --out-dir DIR INPUT.wav... [same options]
//! tubeline-render --demo [OUTPUT.wav] [--set id=value]...
//! tubeline-render --list-presets | --list-params
//! ```
//!
//! The output keeps the input's sample rate and channel count and is written
//! as 32-bit float WAV (the chain can exceed 0 dBFS; nothing is clipped). It
//! is written to a temporary file beside OUTPUT, flushed to disk and renamed
//! into place only when complete, so a failed render never leaves a
//! half-written file. With `--out-dir`, the inputs are rendered in parallel
//! (one file per core), each on its own: a file that fails is reported and
//! the others are still rendered.

use std::fs;
use std::io::{BufWriter, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use nice_plug::prelude::Params;

use tubeline::dsp::headphone::{
    load_report, HeadphoneLevels, HeadphoneModel, HeadphoneSettings, ImpedanceCurve,
};
use tubeline::dsp::oversampling::Quality;
use tubeline::headphone_curve::{read_curve_file, resolve_curve};
use tubeline::params::TubelineParams;
use tubeline::presets;
use tubeline::render::{check_sample_rate, demo_signal, pcm_to_f32, render_at, RenderReport};

/// Render WAV files through Tubeline's analog chain (DI box, tube preamp,
/// headphone amp) with the same DSP core as the plugin.
///
/// One file: tubeline-render IN.wav OUT.wav. Several: tubeline-render
/// --out-dir DIR IN1.wav IN2.wav ... (rendered in parallel, one per core).
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Cli {
    /// INPUT.wav OUTPUT.wav (mono or stereo, any sample rate from 8 to 384
    /// kHz); with --out-dir, one or more input files; with --demo, the
    /// output file (optional).
    #[arg(value_name = "FILES")]
    files: Vec<PathBuf>,
    /// Batch mode: render every input file into DIR, under its own file
    /// name (DIR is created if needed). The files are rendered in parallel;
    /// each is reported on its own, and a file that fails does not stop the
    /// others (the exit code is then 1).
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
    /// Oversampling quality of the render. `high` is what a host's offline
    /// bounce uses; `live` renders exactly what the plugin plays in real
    /// time with Quality = Live, so you can bounce what you monitored. (The
    /// Quality parameter of a preset is not used here.)
    #[arg(long, value_enum, default_value_t = QualityArg::High)]
    quality: QualityArg,
    /// Batch mode: how many files to render at once (default: one per CPU
    /// core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
    jobs: Option<u32>,
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
    /// Sample rate of the demo signal, in Hz (8000 … 384000).
    #[arg(long, default_value_t = 48_000)]
    demo_rate: u32,
    /// List every parameter ID with its range and default, then exit.
    #[arg(long)]
    list_params: bool,
    /// List the factory presets with their descriptions, then exit.
    #[arg(long)]
    list_presets: bool,
}

/// The renderer's `--quality`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum QualityArg {
    /// Low-latency polyphase IIR oversampling: the plugin's Live quality.
    Live,
    /// Linear-phase FIR oversampling: the plugin's High quality (the
    /// default, as in a host's offline bounce).
    High,
}

impl QualityArg {
    fn to_dsp(self) -> Quality {
        match self {
            QualityArg::Live => Quality::Live,
            QualityArg::High => Quality::High,
        }
    }
}

/// What every render of a run shares.
struct Setup {
    params: TubelineParams,
    curve: Option<ImpedanceCurve>,
    quality: Quality,
    block: usize,
}

fn main() {
    match run(Cli::parse()) {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}

/// Run the command line; `Ok(false)` when a batch finished with failures.
fn run(cli: Cli) -> Result<bool> {
    let params = TubelineParams::default();
    if cli.list_params {
        print_params(&params);
        return Ok(true);
    }
    if cli.list_presets {
        print_presets();
        return Ok(true);
    }
    if let Some(preset) = &cli.preset {
        load_preset(&params, preset)?;
    }
    for assignment in &cli.set {
        let (id, value) = assignment.split_once('=').with_context(|| {
            format!("--set {assignment}: write it as ID=VALUE, for example --set pad=on")
        })?;
        if id.trim() == "quality" {
            bail!(
                "--set {assignment}: an offline render's quality is chosen with --quality live|high \
                 (the Quality parameter is what the plugin plays in real time)"
            );
        }
        params
            .set_from_text(id.trim(), value)
            .with_context(|| format!("--set {assignment}"))?;
    }
    let curve = headphone_curve(&params, cli.hp_csv.as_deref())?;
    let setup = Setup {
        params,
        curve,
        quality: cli.quality.to_dsp(),
        block: cli.block as usize,
    };

    if let Some(dir) = &cli.out_dir {
        if cli.demo {
            bail!("--demo renders one file: give its name instead of --out-dir");
        }
        return batch(&setup, &cli.files, dir, cli.jobs);
    }
    if cli.demo {
        let out = match cli.files.as_slice() {
            [] => PathBuf::from("tubeline-demo.wav"),
            [out] => out.clone(),
            _ => bail!("with --demo, give only the output file"),
        };
        check_sample_rate(cli.demo_rate)
            .map_err(|e| anyhow!("--demo-rate {}: {e}", cli.demo_rate))?;
        let input = demo_signal(f64::from(cli.demo_rate));
        render_and_print(&setup, input, cli.demo_rate, &out)?;
        return Ok(true);
    }
    let [input, output] = cli.files.as_slice() else {
        bail!(
            "give an input and an output file: tubeline-render INPUT.wav OUTPUT.wav; several inputs \
             go with --out-dir DIR (or try --demo)"
        );
    };
    refuse_overwriting_input(input, output)?;
    let (samples, rate) = read_wav(input)?;
    render_and_print(&setup, samples, rate, output)?;
    Ok(true)
}

/// The measured curve: --hp-csv, or the one a preset carries for the
/// "Measured curve" headphone (its saved points; the file its path names
/// when it has none, as older presets do).
fn headphone_curve(
    params: &TubelineParams,
    hp_csv: Option<&Path>,
) -> Result<Option<ImpedanceCurve>> {
    if let Some(path) = hp_csv {
        return read_curve_file(path).map(Some).map_err(|e| anyhow!(e));
    }
    if params.snapshot(true).headphone.model != HeadphoneModel::Custom {
        return Ok(None);
    }
    let resolved = resolve_curve(&params.hp_curve, &params.hp_csv, false);
    match resolved.problem {
        Some(problem) => bail!("{problem}"),
        None => Ok(resolved.curve),
    }
}

/// Render `input` (at `rate`) into `output`; `progress` is called with the
/// input samples done so far. Returns the report of what the render
/// measured, as text.
fn render_one(
    setup: &Setup,
    input: Vec<Vec<f32>>,
    rate: u32,
    output: &Path,
    progress: impl FnMut(usize),
) -> Result<String> {
    let frames = input.first().map_or(0, Vec::len);
    let started = Instant::now();
    let (out, measured) = render_at(
        &setup.params,
        setup.curve.as_ref(),
        &input,
        f64::from(rate),
        setup.block,
        setup.quality,
        progress,
    );
    let elapsed = started.elapsed().as_secs_f64();
    drop(input);
    write_wav_atomically(output, &out, rate)?;

    let mut settings = setup.params.snapshot(true);
    if setup.curve.is_some() {
        settings.hp_on = true;
        settings.headphone.model = HeadphoneModel::Custom;
    }
    let mut text = format_report(
        &measured,
        frames,
        rate,
        elapsed,
        output,
        settings.cal_dbu,
        setup.quality,
    );
    if settings.hp_on {
        text += &format_headphone_report(
            &settings.headphone,
            setup.curve.as_ref(),
            measured.headphone_peak.as_ref(),
        );
    }
    Ok(text)
}

/// Render one file (or the demo) with a progress bar, and print the report.
fn render_and_print(setup: &Setup, input: Vec<Vec<f32>>, rate: u32, output: &Path) -> Result<()> {
    let bar = progress_bar(input[0].len() as f64 / f64::from(rate), 1);
    let text = render_one(setup, input, rate, output, |done| {
        bar.set_position(millis(done, rate))
    });
    bar.finish_and_clear();
    print!("{}", text?);
    Ok(())
}

/// Samples at `rate` as whole milliseconds (the progress bar's unit, so
/// files at different rates add up).
fn millis(samples: usize, rate: u32) -> u64 {
    (samples as u64).saturating_mul(1000) / u64::from(rate.max(1))
}

/// Batch mode: render every input into `dir`, in parallel. Returns whether
/// every file rendered.
fn batch(setup: &Setup, inputs: &[PathBuf], dir: &Path, jobs: Option<u32>) -> Result<bool> {
    if inputs.is_empty() {
        bail!(
            "--out-dir {}: give one or more input files after it",
            dir.display()
        );
    }
    if dir.exists() && !dir.is_dir() {
        bail!(
            "--out-dir {}: that is a file, not a directory",
            dir.display()
        );
    }
    fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the directory {}", dir.display()))?;
    // Outputs are named after their inputs: two inputs with one name would
    // write one file twice, and an input inside DIR would be overwritten.
    let mut outputs: Vec<PathBuf> = Vec::with_capacity(inputs.len());
    for input in inputs {
        let Some(name) = input.file_name() else {
            bail!("{}: not a file name", input.display());
        };
        let output = dir.join(name);
        if let Some(k) = outputs.iter().position(|o| *o == output) {
            bail!(
                "{} and {} would both be written to {}: render them into different directories",
                inputs[k].display(),
                input.display(),
                output.display()
            );
        }
        refuse_overwriting_input(input, &output)?;
        outputs.push(output);
    }

    // One progress bar over the audio of every file, in milliseconds (a
    // header that does not read counts zero: that file fails on its own).
    let millis_of: Vec<u64> = inputs
        .iter()
        .map(|p| {
            hound::WavReader::open(p)
                .map_or(0, |r| millis(r.duration() as usize, r.spec().sample_rate))
        })
        .collect();
    let bar = progress_bar(millis_of.iter().sum::<u64>() as f64 / 1000.0, inputs.len());
    let workers = jobs
        .map(|j| j as usize)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .min(inputs.len());
    let next = AtomicUsize::new(0);
    let done_files = AtomicUsize::new(0);
    let failed = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let (Some(input), Some(output)) = (inputs.get(k), outputs.get(k)) else {
                    break;
                };
                let mut shown = 0;
                // A file's failure, even a panic, stays that file's.
                let result = catch_unwind(AssertUnwindSafe(|| {
                    let (samples, rate) = read_wav(input)?;
                    render_one(setup, samples, rate, output, |done| {
                        let now = millis(done, rate);
                        bar.inc(now.saturating_sub(shown));
                        shown = now;
                    })
                }))
                .unwrap_or_else(|panic| {
                    let why = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    Err(anyhow!("internal error while rendering: {why}"))
                });
                // What is left of this file's share of the bar.
                bar.inc(millis_of[k].saturating_sub(shown));
                let n = done_files.fetch_add(1, Ordering::Relaxed) + 1;
                bar.set_message(format!("{n} of {} files", inputs.len()));
                let message = match result {
                    Ok(text) => format!("ok: {}\n{}", input.display(), indent(&text)),
                    Err(e) => {
                        failed
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(input.clone());
                        format!("FAILED: {}: {e:#}\n", input.display())
                    }
                };
                bar.suspend(|| {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(message.as_bytes());
                    let _ = out.flush();
                });
            });
        }
    });
    bar.finish_and_clear();
    let failed = failed.into_inner().unwrap_or_else(|e| e.into_inner());
    let ok = inputs.len() - failed.len();
    println!(
        "rendered {ok} of {} files into {} in {:.1} s ({workers} at a time)",
        inputs.len(),
        dir.display(),
        started.elapsed().as_secs_f64()
    );
    if !failed.is_empty() {
        let names: Vec<String> = failed.iter().map(|p| p.display().to_string()).collect();
        eprintln!(
            "error: {} of {} files failed: {}",
            failed.len(),
            inputs.len(),
            names.join(", ")
        );
    }
    Ok(failed.is_empty())
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

/// Refuse an output that is the input itself (the render would replace it).
fn refuse_overwriting_input(input: &Path, output: &Path) -> Result<()> {
    let same = match (fs::canonicalize(input), fs::canonicalize(output)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same {
        bail!(
            "{} would be written over its own input: choose another output file or directory",
            output.display()
        );
    }
    Ok(())
}

/// Load `--preset`: a file if one exists at that path, else a factory
/// preset of that name.
fn load_preset(params: &TubelineParams, preset: &str) -> Result<()> {
    let path = Path::new(preset);
    let loaded = if path.is_dir() {
        let mut files: Vec<String> = fs::read_dir(path)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".json"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        let hint = match files.first() {
            Some(first) => format!(
                "; it holds {}, e.g. --preset {}",
                files.join(", "),
                path.join(first).display()
            ),
            None => String::new(),
        };
        bail!(
            "--preset {preset} is a directory: give one preset file in it, or a factory \
             preset's name (see --list-presets){hint}"
        );
    } else if path.is_file() {
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
    check_sample_rate(spec.sample_rate).map_err(|e| anyhow!("{}: {e}", path.display()))?;
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
            let bits = spec.bits_per_sample;
            if pcm_to_f32(0, bits).is_none() {
                bail!("{} is {bits}-bit PCM; {hint}", path.display());
            }
            // hound never yields a value outside the depth it read.
            reader
                .samples::<i32>()
                .map(|s| s.map(|v| pcm_to_f32(v, bits).unwrap_or(0.0)))
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

/// Write to a temporary file beside `path`, flush it to disk, then rename
/// it into place (and flush the directory entry), so a crash or a full disk
/// never leaves a half-written file under the final name.
fn write_wav_atomically(path: &Path, channels: &[Vec<f32>], sample_rate: u32) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut builder = tempfile::Builder::new();
    builder.prefix(".tubeline-render-").suffix(".wav.tmp");
    // A rendered file gets the permissions of any new file (0666 less the
    // umask), not a temporary file's owner-only 0600.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let tmp = builder
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))?;
    let spec = hound::WavSpec {
        channels: channels.len() as u16,
        sample_rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let cannot_write = || format!("cannot write {}", path.display());
    {
        let mut writer = hound::WavWriter::new(BufWriter::new(tmp.as_file()), spec)
            .context("cannot start the WAV file")?;
        let frames = channels.first().map_or(0, Vec::len);
        for i in 0..frames {
            for ch in channels {
                writer.write_sample(ch[i]).with_context(cannot_write)?;
            }
        }
        writer.finalize().with_context(cannot_write)?;
    }
    tmp.as_file().sync_all().with_context(cannot_write)?;
    tmp.persist(path)
        .with_context(|| format!("cannot move the finished file to {}", path.display()))?;
    // The rename itself is durable once the directory is flushed (not
    // possible everywhere, e.g. on some network file systems: best effort).
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A progress bar over `seconds` of audio in `files` files: only worth it
/// for more than ten seconds (hidden anyway when stderr is not a terminal).
fn progress_bar(seconds: f64, files: usize) -> ProgressBar {
    if seconds < 10.0 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new((seconds * 1000.0).round() as u64);
    let template = if files > 1 {
        "{spinner} [{bar:40}] {percent}% of the audio, {msg} {elapsed} (eta {eta})"
    } else {
        "{spinner} [{bar:40}] {percent}% {elapsed} (eta {eta})"
    };
    bar.set_style(
        ProgressStyle::with_template(template)
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

fn format_report(
    r: &RenderReport,
    frames: usize,
    rate: u32,
    elapsed: f64,
    out: &Path,
    cal_dbu: f64,
    quality: Quality,
) -> String {
    let seconds = frames as f64 / f64::from(rate);
    let mut s = format!("wrote {} ({seconds:.2} s at {rate} Hz)\n", out.display());
    s += &format!("levels at the converter, 0 dBFS = {cal_dbu:+.0} dBu (a full-scale sine):\n");
    s += &format!(
        "in : peak {:7.2} dBFS   rms {:7.2} dBFS = {:7.2} dBu\n",
        r.peak_in_dbfs,
        r.rms_in_dbfs,
        r.rms_in_dbfs + 3.0103 + cal_dbu
    );
    s += &format!(
        "out: peak {:7.2} dBFS   rms {:7.2} dBFS = {:7.2} dBu\n",
        r.peak_out_dbfs,
        r.rms_out_dbfs,
        r.rms_out_dbfs + 3.0103 + cal_dbu
    );
    s += &format!(
        "quality {}: latency {} samples ({:.2} ms), removed from the output\n",
        match quality {
            Quality::Live => "live",
            Quality::High => "high",
        },
        r.latency_samples,
        r.latency_samples as f64 * 1000.0 / f64::from(rate)
    );
    if elapsed > 0.0 {
        s += &format!(
            "speed {:.0}x real time ({:.1} ns per sample frame, all channels)\n",
            seconds / elapsed,
            elapsed * 1e9 / frames.max(1) as f64
        );
    }
    s
}

fn format_headphone_report(
    hp: &HeadphoneSettings,
    curve: Option<&ImpedanceCurve>,
    peak: Option<&HeadphoneLevels>,
) -> String {
    let r = load_report(hp.model, curve, hp.amp_z_ohms);
    let mut s = format!(
        "headphone: {} ({:.0} ohm nominal) from {:.1} ohm: damping factor {:.1}\n",
        if curve.is_some() {
            "measured curve"
        } else {
            hp.model.name()
        },
        r.nominal_ohms,
        hp.amp_z_ohms,
        r.damping_factor
    );
    s += &format!(
        "  level at 1 kHz {:+.2} dB, response deviation 20 Hz-20 kHz {:.2} dB{}\n",
        r.level_1k_db,
        r.deviation_db,
        if hp.normalize {
            " (normalized: the 1 kHz loss is made up)"
        } else {
            ""
        }
    );
    if let Some(p) = peak {
        s += &format!(
            "  loudest 300 ms at the headphone: {:.3} V rms, {:.2} mW\n",
            p.v_rms_volts, p.power_mw
        );
    }
    if let Some(w) = r.warning {
        s += &format!("  warning: {w}\n");
    }
    s
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
