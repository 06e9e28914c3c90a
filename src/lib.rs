//! Tubeline: a calibrated analog chain as a VST3/CLAP plugin.
//!
//! This file is the thin wrapper: it maps parameters to the DSP core's
//! settings, calls [`dsp::chain::Chain::process`], reports latency and exports
//! the plugin. All signal processing lives in [`dsp`], which knows nothing of
//! the plugin framework.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, RwLock};

use nice_plug::prelude::*;
use nice_plug_egui::{create_egui_editor, EguiEditor, EguiEditorState, EguiNiceSettings};

pub mod advice;
pub mod dsp;
pub mod editor;
pub mod headphone_curve;
pub mod meters;
pub mod params;
pub mod presets;
pub mod render;

use dsp::chain::Chain;
use dsp::headphone::HeadphoneModel;
use headphone_curve::{curve_channel, CurveReceiver, CurveSender};
use meters::{SeenSettings, SharedMeters};
use params::TubelineParams;

/// Work done off the audio thread.
pub enum Task {
    /// Design the measured headphone curve of the state (its saved points,
    /// or the file its path names when no points are saved for it) for
    /// this output impedance and sample rate.
    DesignCurve {
        zo_ohms: f64,
        sample_rate: f64,
        channels: usize,
        /// Read the file at the path even when points are saved for it:
        /// the person pressed Enter on the path.
        from_file: bool,
    },
}

/// Redesign a measured curve's filter when the output impedance moves by more
/// than this fraction (Zo is part of the filter).
const CURVE_ZO_TOLERANCE: f64 = 0.005;

/// The plugin instance.
pub struct Tubeline {
    /// Parameters shared with the host and the editor.
    params: Arc<TubelineParams>,
    /// The DSP core.
    chain: Chain,
    /// True while the host renders offline (a bounce, an export): quality is
    /// forced to High. Read per block ([`ProcessContext::process_mode`]): a
    /// VST3 host may switch to offline without a new setup (Ardour's export
    /// does), and a CLAP host sets it through the render extension.
    offline: bool,
    /// Latency last reported to the host.
    reported_latency: u32,
    /// CLAP: the latency a restart was asked for while processing (the new
    /// latency is reported in the next `activate`), so it is asked once.
    restart_requested_for: Option<u32>,
    /// Receives measured-curve filters designed off the audio thread.
    curve_rx: CurveReceiver,
    /// The background side of `curve_rx`, used by the task executor.
    curve_tx: Arc<Mutex<CurveSender>>,
    /// The last error loading the measured curve, for the editor.
    pub curve_error: Arc<RwLock<Option<String>>>,
    /// Output impedance the current measured-curve filter was designed for.
    curve_zo_ohms: f64,
    /// `hp_curve`'s state-load count when the curve was last designed: a
    /// state loaded since (while active, too) asks for a design.
    curve_state_loads: u32,
    /// The next design reads the curve's file (the editor's Enter).
    curve_from_file: bool,
    /// Host samples since the last redesign was asked for (debounce).
    samples_since_curve_request: usize,
    /// The host's sample rate.
    sample_rate: f64,
    /// Channels activated.
    channels: usize,
    /// No block processed since activation or reset: a filter installed now
    /// starts without a crossfade.
    fresh: bool,
    /// Meters and what the audio thread sees, shared with the editor.
    meters: Arc<SharedMeters>,
    /// Output samples for the editor's spectrum (audio thread side).
    spectrum_tx: rtrb::Producer<f32>,
    /// The editor's side of the spectrum ring.
    spectrum_rx: Arc<Mutex<rtrb::Consumer<f32>>>,
    /// The egui editor's state (size, open or not).
    editor_state: Arc<EguiEditorState>,
    /// Wakes the editor when new meter readings are published.
    repaint: nice_plug_egui::RepaintNotifier,
    /// Meter as if the editor were open and reading every block (env
    /// `TUBELINE_METERS=always`; the allocation tests use it, having no
    /// window).
    meters_forced: bool,
}

impl Default for Tubeline {
    fn default() -> Self {
        let (tx, rx) = curve_channel();
        let (spectrum_tx, spectrum_rx) = meters::spectrum_ring();
        let size = editor::EditorSize::default();
        Self {
            params: Arc::new(TubelineParams::default()),
            chain: Chain::new(),
            offline: false,
            reported_latency: 0,
            restart_requested_for: None,
            curve_rx: rx,
            curve_tx: Arc::new(Mutex::new(tx)),
            curve_error: Arc::new(RwLock::new(None)),
            curve_zo_ohms: f64::NAN,
            curve_state_loads: 0,
            curve_from_file: false,
            samples_since_curve_request: 0,
            sample_rate: 48_000.0,
            channels: 0,
            fresh: true,
            meters: Arc::new(SharedMeters::new()),
            spectrum_tx,
            spectrum_rx: Arc::new(Mutex::new(spectrum_rx)),
            editor_state: EguiEditorState::from_size(
                nice_plug::editor::dpi::LogicalSize::new(size.width, size.height),
                1.0,
            ),
            repaint: nice_plug_egui::RepaintNotifier::new(),
            meters_forced: std::env::var_os("TUBELINE_METERS").is_some_and(|v| v == "always"),
        }
    }
}

impl Tubeline {
    /// The task that designs the measured curve for the current settings.
    /// Takes what it asks for (a file read, a state load) as done.
    fn curve_task(&mut self) -> Task {
        self.curve_state_loads = self.params.hp_curve.state_loads();
        Task::DesignCurve {
            zo_ohms: self.chain.settings().headphone.amp_z_ohms,
            sample_rate: self.sample_rate,
            channels: self.channels,
            from_file: std::mem::take(&mut self.curve_from_file),
        }
    }

    /// Publish what this block did for the editor and the GUI test: the
    /// settings applied and, while the editor is open, the spectrum's
    /// samples. Never allocates, never waits.
    fn publish(&mut self, buffer: &mut Buffer) {
        let s = self.chain.settings();
        self.meters.publish_seen(
            &SeenSettings {
                cal_dbu: s.cal_dbu,
                gain_db: s.preamp.gain_db,
                out_trim_db: s.out_trim_db,
                amp_z_ohms: s.headphone.amp_z_ohms,
                di_on: s.di_on,
                pre_on: s.pre_on,
                hp_on: s.hp_on,
                pad: s.pad,
                sample_rate: self.sample_rate,
                ..Default::default()
            },
            buffer.samples(),
        );
        if !self
            .meters
            .editor_open
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return;
        }
        // The chain keeps accumulating until the editor has read the last
        // reading, so no peak between two editor frames is lost.
        if self.meters.reading_wanted() || self.meters_forced {
            let m = self.chain.take_meters();
            self.meters.publish(&m);
        }
        let channels = buffer.as_slice_immutable();
        let n = channels.first().map_or(0, |c| c.len());
        let scale = 1.0 / channels.len().max(1) as f32;
        for i in 0..n {
            let v = channels.iter().map(|c| c[i]).sum::<f32>() * scale;
            if self.spectrum_tx.push(v).is_err() {
                break;
            }
        }
        self.repaint.request_repaint();
    }

    /// The chain's latency moved away from the one reported (a quality
    /// change) while processing. Never allocates, never waits.
    ///
    /// CLAP allows the latency to change only inside `clap_plugin.activate()`
    /// (`clap_host_latency.changed()` is [main-thread & being-activated]):
    /// ask the host for a restart (`clap_host.request_restart()`, thread
    /// safe) and report the new latency in the `activate` that follows.
    /// nice-plug's `set_latency_samples` from here would post a main-thread
    /// task that calls `changed()` at once if the host has deactivated the
    /// plugin by the time it runs: outside `activate`.
    ///
    /// VST3 allows the change at any time: nice-plug's wrapper answers
    /// `set_latency_samples` with `restartComponent(kLatencyChanged)` from
    /// the main thread (the route Ardour and pedalboard have compensated).
    fn latency_moved(&mut self, latency: u32, context: &mut impl ProcessContext<Self>) {
        match context.plugin_api() {
            PluginApi::Clap => {
                if self.restart_requested_for != Some(latency) {
                    self.restart_requested_for = Some(latency);
                    context.request_restart();
                }
            }
            PluginApi::Vst3 | PluginApi::Standalone => {
                self.reported_latency = latency;
                context.set_latency_samples(latency);
            }
        }
    }
}

impl Plugin for Tubeline {
    const NAME: &'static str = "Tubeline";
    const VENDOR: &'static str = "Tubeline";
    // No website or support address exists: empty rather than made up.
    const URL: &'static str = "";
    const EMAIL: &'static str = "";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    const AUDIO_IO_LAYOUTS: &'static [AudioIOLayout] = &[
        AudioIOLayout {
            main_input_channels: NonZeroU32::new(2),
            main_output_channels: NonZeroU32::new(2),
            ..AudioIOLayout::const_default()
        },
        AudioIOLayout {
            main_input_channels: NonZeroU32::new(1),
            main_output_channels: NonZeroU32::new(1),
            ..AudioIOLayout::const_default()
        },
    ];

    const SAMPLE_ACCURATE_AUTOMATION: bool = true;

    type Editor = EguiEditor<editor::App>;
    type SysExMessage = ();
    type BackgroundTask = Task;

    fn params(&self) -> Arc<dyn Params> {
        self.params.clone()
    }

    fn editor(&mut self, _async_executor: AsyncExecutor<Self>) -> Option<Self::Editor> {
        let app = editor::App::new(editor::Shared {
            params: self.params.clone(),
            meters: self.meters.clone(),
            spectrum: self.spectrum_rx.clone(),
            curve_error: self.curve_error.clone(),
        });
        let min = nice_plug::editor::dpi::LogicalSize::new(editor::MIN_SIZE.0, editor::MIN_SIZE.1);
        create_egui_editor(
            self.editor_state.clone(),
            self.repaint.clone(),
            EguiNiceSettings::new()
                .with_tile("Tubeline")
                .with_resize_hint(
                    nice_plug::editor::ResizeHint::resizable().with_min_logical_size(min),
                ),
            app,
        )
    }

    fn filter_state(state: &mut PluginState) {
        headphone_curve::upgrade_state(state);
    }

    fn task_executor(&mut self) -> TaskExecutor<Self> {
        let params = self.params.clone();
        let sender = self.curve_tx.clone();
        let error = self.curve_error.clone();
        Box::new(move |task| match task {
            Task::DesignCurve {
                zo_ohms,
                sample_rate,
                channels,
                from_file,
            } => {
                let resolved =
                    headphone_curve::resolve_curve(&params.hp_curve, &params.hp_csv, from_file);
                let sent = match (&resolved.curve, sender.lock()) {
                    (None, _) => Ok(()),
                    (Some(curve), Ok(mut s)) => s.load(curve, zo_ohms, sample_rate, channels),
                    (Some(_), Err(_)) => Err("the curve loader is unavailable".to_string()),
                };
                if resolved.curve.is_none() && resolved.problem.is_none() {
                    // No curve chosen.
                    return;
                }
                let result = match (resolved.problem, sent) {
                    (Some(problem), _) => Err(problem),
                    (None, sent) => sent,
                };
                if let Err(e) = &result {
                    nice_log!("headphone curve: {e}");
                }
                if let Ok(mut slot) = error.write() {
                    *slot = result.err();
                }
            }
        })
    }

    fn activate(
        &mut self,
        audio_io_layout: &AudioIOLayout,
        buffer_config: &BufferConfig,
        context: &mut impl ActivateContext<Self>,
    ) -> bool {
        self.offline = buffer_config.process_mode == ProcessMode::Offline;
        let channels = audio_io_layout
            .main_output_channels
            .map_or(0, |c| c.get() as usize);
        self.chain.set_settings(self.params.snapshot(self.offline));
        self.chain
            .prepare(f64::from(buffer_config.sample_rate), channels);
        // The only place where CLAP lets the latency change. (nice-plug's
        // CLAP wrapper applies this after marking the instance active: when
        // the value differs from the last one it asks the host for one more
        // restart and calls `clap_host_latency::changed()` inside that
        // `activate`. `latency.get()` returns the new value from here on.)
        self.reported_latency = self.chain.latency_samples() as u32;
        self.restart_requested_for = None;
        context.set_latency_samples(self.reported_latency);
        self.sample_rate = f64::from(buffer_config.sample_rate);
        self.channels = channels;
        self.fresh = true;
        // Design the measured curve now, if one is chosen, so it is there
        // from the first block.
        // A later change of Zo may ask for a redesign at once.
        self.samples_since_curve_request = usize::MAX / 2;
        if self.chain.settings().headphone.model == HeadphoneModel::Custom {
            self.curve_zo_ohms = self.chain.settings().headphone.amp_z_ohms;
            let task = self.curve_task();
            context.execute(task);
        }
        true
    }

    fn reset(&mut self) {
        self.chain.reset();
        self.fresh = true;
    }

    fn process(
        &mut self,
        buffer: &mut Buffer,
        _aux: &mut AuxiliaryBuffers,
        context: &mut impl ProcessContext<Self>,
    ) -> ProcessStatus {
        // The host's mode for this block, not only the one at activation.
        // Entering or leaving an offline render changes the quality through
        // the chain's quality switch, like the Quality parameter: the High
        // chain comes in settled over a 20 ms crossfade, and the new latency
        // is reported below.
        self.offline = context.process_mode() == ProcessMode::Offline;
        self.chain.set_settings(self.params.snapshot(self.offline));
        let editor_open = self.editor_state.is_open() || self.meters_forced;
        self.meters
            .editor_open
            .store(editor_open, std::sync::atomic::Ordering::Relaxed);
        // Meter taps cost only while someone looks at them.
        self.chain.set_metering(editor_open);

        // A measured headphone curve has the output impedance built in: ask
        // for a new design when it moves (at most every 100 ms), and install
        // whatever the background has designed.
        let hp = self.chain.settings().headphone;
        if hp.model == HeadphoneModel::Custom {
            // The editor changed the curve's path, or a state (a session, a
            // preset) brought another curve: design it anew at once.
            if self
                .meters
                .redesign_curve
                .swap(false, std::sync::atomic::Ordering::AcqRel)
                || self.params.hp_curve.state_loads() != self.curve_state_loads
            {
                self.curve_from_file |= self
                    .meters
                    .reload_curve_file
                    .swap(false, std::sync::atomic::Ordering::AcqRel);
                self.curve_zo_ohms = f64::NAN;
                self.samples_since_curve_request = usize::MAX / 2;
            }
            self.samples_since_curve_request = self
                .samples_since_curve_request
                .saturating_add(buffer.samples());
            // (NaN before the first design: counts as moved.)
            let within = (hp.amp_z_ohms - self.curve_zo_ohms).abs()
                <= CURVE_ZO_TOLERANCE * self.curve_zo_ohms.abs() + 0.01;
            let moved = !within;
            if moved && self.samples_since_curve_request as f64 >= 0.1 * self.sample_rate {
                self.curve_zo_ohms = hp.amp_z_ohms;
                self.samples_since_curve_request = 0;
                let task = self.curve_task();
                context.execute_background(task);
            }
        }
        if self.curve_rx.install(&mut self.chain) && self.fresh {
            self.chain.reset();
        }
        self.fresh = false;

        let latency = self.chain.latency_samples() as u32;
        if latency != self.reported_latency {
            self.latency_moved(latency, context);
        }
        self.chain.process(buffer.as_slice());
        self.publish(buffer);
        ProcessStatus::Normal
    }
}

impl ClapPlugin for Tubeline {
    const CLAP_ID: &'static str = "audio.tubeline.tubeline";
    const CLAP_DESCRIPTION: Option<&'static str> =
        Some("Calibrated analog chain: passive DI, tube mic preamp, headphone amp");
    const CLAP_MANUAL_URL: Option<&'static str> = None;
    const CLAP_SUPPORT_URL: Option<&'static str> = None;
    const CLAP_FEATURES: &'static [ClapFeature] = &[
        ClapFeature::AudioEffect,
        ClapFeature::Stereo,
        ClapFeature::Mono,
        ClapFeature::Distortion,
    ];
}

impl Vst3Plugin for Tubeline {
    const VST3_CLASS_ID: [u8; 16] = *b"TubelineChain001";
    const VST3_SUBCATEGORIES: &'static [Vst3SubCategory] =
        &[Vst3SubCategory::Fx, Vst3SubCategory::Distortion];
}

nice_export_clap!(Tubeline);
nice_export_vst3!(Tubeline);
