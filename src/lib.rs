//! Tubeline: a calibrated analog chain as a VST3/CLAP plugin.
//!
//! This file is the thin wrapper: it maps parameters to the DSP core's
//! settings, calls [`dsp::chain::Chain::process`], reports latency and exports
//! the plugin. All signal processing lives in [`dsp`], which knows nothing of
//! the plugin framework.

use std::num::NonZeroU32;
use std::sync::Arc;

use nice_plug::prelude::*;

pub mod dsp;
pub mod params;
pub mod render;

use dsp::chain::Chain;
use params::TubelineParams;

/// The plugin instance.
pub struct Tubeline {
    /// Parameters shared with the host and the editor.
    params: Arc<TubelineParams>,
    /// The DSP core.
    chain: Chain,
    /// True while the host renders offline: quality is forced to High.
    offline: bool,
    /// Latency last reported to the host.
    reported_latency: u32,
}

impl Default for Tubeline {
    fn default() -> Self {
        Self {
            params: Arc::new(TubelineParams::default()),
            chain: Chain::new(),
            offline: false,
            reported_latency: 0,
        }
    }
}

impl Plugin for Tubeline {
    const NAME: &'static str = "Tubeline";
    const VENDOR: &'static str = "Tubeline";
    const URL: &'static str = "https://example.invalid/tubeline";
    const EMAIL: &'static str = "tubeline@example.invalid";
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

    type Editor = ();
    type SysExMessage = ();
    type BackgroundTask = ();

    fn params(&self) -> Arc<dyn Params> {
        self.params.clone()
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
        self.reported_latency = self.chain.latency_samples() as u32;
        context.set_latency_samples(self.reported_latency);
        true
    }

    fn reset(&mut self) {
        self.chain.reset();
    }

    fn process(
        &mut self,
        buffer: &mut Buffer,
        _aux: &mut AuxiliaryBuffers,
        context: &mut impl ProcessContext<Self>,
    ) -> ProcessStatus {
        self.chain.set_settings(self.params.snapshot(self.offline));
        let latency = self.chain.latency_samples() as u32;
        if latency != self.reported_latency {
            self.reported_latency = latency;
            context.set_latency_samples(latency);
        }
        self.chain.process(buffer.as_slice());
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
