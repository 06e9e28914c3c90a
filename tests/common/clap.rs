//! A minimal in-process CLAP host for the integration tests, built on
//! `clack-host`. It loads the crate's own `clap_entry` (no bundle needed),
//! talks to the plugin only through CLAP (params, state, latency and
//! audio-ports extensions, process calls with parameter events), and runs
//! the audio-thread calls on a thread of their own, as a real host does.
//!
//! Nothing in here knows about Tubeline's DSP: it is a host, not a model.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::ffi::CString;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clack_extensions::audio_ports::{AudioPortInfoBuffer, PluginAudioPorts};
use clack_extensions::latency::{HostLatency, HostLatencyImpl, PluginLatency};
use clack_extensions::params::{
    HostParams, HostParamsImplMainThread, HostParamsImplShared, ParamClearFlags, ParamInfoBuffer,
    ParamInfoFlags, ParamRescanFlags, PluginParams,
};
use clack_extensions::render::{PluginRender, RenderMode};
use clack_extensions::state::{HostState, HostStateImpl, PluginState, StateError};
use clack_host::events::event_types::ParamValueEvent;
use clack_host::prelude::*;

/// The plugin's CLAP ID (`ClapPlugin::CLAP_ID`).
pub const PLUGIN_ID: &std::ffi::CStr = c"audio.tubeline.tubeline";

/// nice-plug's CLAP parameter ID for a string ID (`hash_param_id` in
/// nice-plug's `wrapper/util.rs`): a Java-style string hash with the top bit
/// cleared (the top bit is reserved for host parameters in VST3).
pub fn param_hash(string_id: &str) -> u32 {
    let mut hash: u32 = 0;
    for b in string_id.bytes() {
        hash = hash.wrapping_mul(31).wrapping_add(u32::from(b));
    }
    hash & !(1 << 31)
}

/// The CLAP parameter ID of a string ID.
pub fn pid(string_id: &str) -> ClapId {
    ClapId::new(param_hash(string_id))
}

// ---------------------------------------------------------------------------
// Host handlers
// ---------------------------------------------------------------------------

/// Thread-safe host callbacks: only record what the plugin asked for.
#[derive(Default)]
pub struct Shared {
    pub restart_requested: AtomicBool,
    pub process_requested: AtomicBool,
    pub callback_requested: AtomicBool,
    pub flush_requested: AtomicBool,
    /// Between `start_processing` and `stop_processing` (set by the host's
    /// audio side, read by the main-thread handlers).
    pub processing: Arc<AtomicBool>,
}

impl SharedHandler<'_> for Shared {
    fn request_restart(&self) {
        self.restart_requested.store(true, Ordering::SeqCst);
    }
    fn request_process(&self) {
        self.process_requested.store(true, Ordering::SeqCst);
    }
    fn request_callback(&self) {
        self.callback_requested.store(true, Ordering::SeqCst);
    }
}

impl HostParamsImplShared for Shared {
    fn request_flush(&self) {
        self.flush_requested.store(true, Ordering::SeqCst);
    }
}

/// The host's view of the plugin when it called
/// `clap_host_latency::changed()`. CLAP allows the call only inside
/// `clap_plugin.activate()` ([main-thread & being-activated]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LatencyCall {
    /// Inside `clap_plugin.activate()`: the one allowed place.
    InsideActivate,
    /// Activated, between `start_processing` and `stop_processing`.
    ActiveProcessing,
    /// Activated, processing stopped.
    ActiveStopped,
    /// Deactivated (or never activated), not inside `activate`.
    Inactive,
}

/// Main-thread host callbacks: counters the tests can read.
#[derive(Default)]
pub struct MainThread {
    pub latency_changed: Cell<u32>,
    pub param_rescans: Cell<u32>,
    pub state_dirty: Cell<u32>,
    /// The host is inside `clap_plugin.activate()`.
    pub activating: Cell<bool>,
    /// The plugin is activated (between `activate` and `deactivate`).
    pub active: Cell<bool>,
    /// The shared handler's processing flag.
    pub processing: Arc<AtomicBool>,
    /// Where each `clap_host_latency::changed()` call happened, in order.
    pub latency_calls: RefCell<Vec<LatencyCall>>,
}

impl MainThreadHandler<'_> for MainThread {}

impl HostLatencyImpl for MainThread {
    fn changed(&self) {
        self.latency_changed.set(self.latency_changed.get() + 1);
        let call = if self.activating.get() {
            LatencyCall::InsideActivate
        } else if !self.active.get() {
            LatencyCall::Inactive
        } else if self.processing.load(Ordering::SeqCst) {
            LatencyCall::ActiveProcessing
        } else {
            LatencyCall::ActiveStopped
        };
        self.latency_calls.borrow_mut().push(call);
    }
}

impl HostParamsImplMainThread for MainThread {
    fn rescan(&self, _flags: ParamRescanFlags) {
        self.param_rescans.set(self.param_rescans.get() + 1);
    }
    fn clear(&self, _param_id: ClapId, _flags: ParamClearFlags) {}
}

impl HostStateImpl for MainThread {
    fn mark_dirty(&self) {
        self.state_dirty.set(self.state_dirty.get() + 1);
    }
}

/// The host type.
pub struct TestHost;

impl HostHandlers for TestHost {
    type Shared<'a> = Shared;
    type MainThread<'a> = MainThread;
    type AudioProcessor<'a> = ();

    fn declare_extensions(builder: &mut HostExtensions<Self>, _shared: &Self::Shared<'_>) {
        builder
            .register::<HostLatency>()
            .register::<HostParams>()
            .register::<HostState>();
    }
}

// ---------------------------------------------------------------------------
// Main-thread side
// ---------------------------------------------------------------------------

/// One parameter as the host sees it through the params extension.
#[derive(Clone, Debug)]
pub struct ParamDesc {
    pub id: u32,
    pub name: String,
    pub module: String,
    pub flags: ParamInfoFlags,
    pub min: f64,
    pub max: f64,
    pub default: f64,
}

/// A plugin instance, owned by the (test's) main thread.
pub struct Plugin {
    // Field order: the instance must be dropped before the entry.
    instance: PluginInstance<TestHost>,
    _entry: PluginEntry,
}

impl Default for Plugin {
    fn default() -> Self {
        Self::new()
    }
}

impl Plugin {
    /// Load the crate's own CLAP entry and create one instance.
    pub fn new() -> Self {
        // SAFETY: `clap_entry` is the plugin's real, 'static CLAP entry point.
        let entry = unsafe { PluginEntry::load_from_raw(&tubeline::clap_entry, c"tubeline.clap") }
            .expect("loading the crate's clap_entry");
        let host_info = HostInfo::new(
            "tubeline-clap-tests",
            "Tubeline",
            "https://example.invalid",
            "0.1.0",
        )
        .unwrap();
        let instance = PluginInstance::<TestHost>::new(
            |_| Shared::default(),
            |shared| MainThread {
                processing: shared.processing.clone(),
                ..MainThread::default()
            },
            &entry,
            PLUGIN_ID,
            &host_info,
        )
        .expect("creating a plugin instance");
        Self {
            instance,
            _entry: entry,
        }
    }

    /// A new instance with every stage switched out and a pro-line source,
    /// loaded through the plugin's own state format: the chain is then an
    /// exact identity (delayed by its latency), which many tests build on.
    /// (The plugin's own defaults put the tube preamp in, for use on insert.)
    pub fn all_stages_out() -> Self {
        let params = tubeline::params::TubelineParams::default();
        for (id, value) in [
            ("pre_on", "off"),
            ("di_on", "off"),
            ("hp_on", "off"),
            ("source", "pro_line"),
        ] {
            params.set_from_text(id, value).unwrap();
        }
        // nice-plug's CLAP state: the JSON's length (u64, little-endian), then the JSON.
        let json = serde_json::to_vec(&params.to_state()).unwrap();
        let mut state = (json.len() as u64).to_le_bytes().to_vec();
        state.extend_from_slice(&json);
        let mut p = Self::new();
        p.load_state(&state)
            .expect("loading an all-stages-out state");
        p
    }

    fn params_ext(&mut self) -> PluginParams {
        self.instance
            .plugin_handle()
            .get_extension::<PluginParams>()
            .expect("the plugin offers the params extension")
    }

    /// Every parameter, in the plugin's order.
    pub fn param_descs(&mut self) -> Vec<ParamDesc> {
        let ext = self.params_ext();
        let handle = self.instance.plugin_handle();
        let count = ext.count(&handle);
        let mut buf = ParamInfoBuffer::new();
        (0..count)
            .map(|i| {
                let info = ext
                    .get_info(&handle, i, &mut buf)
                    .unwrap_or_else(|| panic!("get_info({i}) failed"));
                ParamDesc {
                    id: info.id.get(),
                    name: String::from_utf8_lossy(info.name).into_owned(),
                    module: String::from_utf8_lossy(info.module).into_owned(),
                    flags: info.flags,
                    min: info.min_value,
                    max: info.max_value,
                    default: info.default_value,
                }
            })
            .collect()
    }

    /// The current CLAP value of a parameter (normalized for continuous
    /// parameters, the step index for stepped ones).
    pub fn value(&mut self, string_id: &str) -> f64 {
        let ext = self.params_ext();
        ext.get_value(&self.instance.plugin_handle(), pid(string_id))
            .unwrap_or_else(|| panic!("get_value({string_id}) failed"))
    }

    /// The plugin's display text for a CLAP value.
    pub fn value_to_text(&mut self, string_id: &str, value: f64) -> String {
        let ext = self.params_ext();
        let mut buf = [0u8; 256];
        let text = ext
            .value_to_text(
                &self.instance.plugin_handle(),
                pid(string_id),
                value,
                &mut buf,
            )
            .unwrap_or_else(|_| panic!("value_to_text({string_id}, {value}) failed"));
        String::from_utf8_lossy(text).into_owned()
    }

    /// `value_to_text` into a caller's buffer: no allocation on the host side
    /// (so an allocation counted around this call is the plugin's).
    /// Returns the text length.
    pub fn value_to_text_into(&mut self, string_id: &str, value: f64, buf: &mut [u8]) -> usize {
        let ext = self.params_ext();
        ext.value_to_text(&self.instance.plugin_handle(), pid(string_id), value, buf)
            .map(|text| text.len())
            .unwrap_or(0)
    }

    /// The CLAP value for a display text, if the plugin can parse it.
    pub fn text_to_value(&mut self, string_id: &str, text: &str) -> Option<f64> {
        let ext = self.params_ext();
        let text = CString::new(text).unwrap();
        ext.text_to_value(&self.instance.plugin_handle(), pid(string_id), &text)
    }

    /// The plugin's display text for a CLAP value, by CLAP ID.
    pub fn text_by_id(&mut self, id: ClapId, value: f64) -> String {
        let ext = self.params_ext();
        let mut buf = [0u8; 256];
        let text = ext
            .value_to_text(&self.instance.plugin_handle(), id, value, &mut buf)
            .unwrap_or_else(|_| panic!("value_to_text({id:?}, {value}) failed"));
        String::from_utf8_lossy(text).into_owned()
    }

    /// Set parameters through `clap_plugin_params::flush` while the plugin
    /// is inactive (what a host does to set values before activating).
    /// Panics if the instance is active.
    pub fn flush_params(&mut self, changes: &[(ClapId, f64)]) {
        let ext = self.params_ext();
        let events: Vec<ParamValueEvent> = changes
            .iter()
            .map(|&(id, value)| ParamValueEvent::new(0, id, Pckn::match_all(), value))
            .collect();
        let input = InputEvents::from_buffer(&events);
        let mut handle = self
            .instance
            .inactive_plugin_handle()
            .expect("flush_params: the instance must be inactive");
        ext.flush(&mut handle, &input, &mut OutputEvents::void());
    }

    /// `clap_plugin_render.set()` (main thread): from now on the host
    /// renders offline (a bounce, an export) or in real time. Panics if the
    /// plugin refuses.
    pub fn set_render_mode(&mut self, offline: bool) {
        let ext = self
            .instance
            .plugin_handle()
            .get_extension::<PluginRender>()
            .expect("the plugin offers the render extension");
        let mode = if offline {
            RenderMode::Offline
        } else {
            RenderMode::Realtime
        };
        ext.set(&self.instance.plugin_handle(), mode)
            .expect("render.set()");
    }

    /// The latency the plugin reports through the latency extension.
    pub fn latency(&mut self) -> u32 {
        let ext = self
            .instance
            .plugin_handle()
            .get_extension::<PluginLatency>()
            .expect("the plugin offers the latency extension");
        ext.get(&self.instance.plugin_handle())
    }

    /// (input, output) channel counts of the first audio port of each direction.
    pub fn main_port_channels(&mut self) -> (u32, u32) {
        let ext = self
            .instance
            .plugin_handle()
            .get_extension::<PluginAudioPorts>()
            .expect("the plugin offers the audio-ports extension");
        let handle = self.instance.plugin_handle();
        assert_eq!(ext.count(&handle, true), 1, "one input port");
        assert_eq!(ext.count(&handle, false), 1, "one output port");
        let mut buf = AudioPortInfoBuffer::new();
        let input = ext.get(&handle, 0, true, &mut buf).unwrap().channel_count;
        let output = ext.get(&handle, 0, false, &mut buf).unwrap().channel_count;
        (input, output)
    }

    /// Save the plugin's state through the state extension.
    pub fn save_state(&mut self) -> Vec<u8> {
        let ext = self
            .instance
            .plugin_handle()
            .get_extension::<PluginState>()
            .expect("the plugin offers the state extension");
        let mut out = Vec::new();
        ext.save(&self.instance.plugin_handle(), &mut out)
            .expect("saving state");
        out
    }

    /// Load a state through the state extension.
    pub fn load_state(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        let ext = self
            .instance
            .plugin_handle()
            .get_extension::<PluginState>()
            .expect("the plugin offers the state extension");
        let mut reader = bytes;
        ext.load(&self.instance.plugin_handle(), &mut reader)
    }

    /// Activate for `channels`-channel processing at `sample_rate` with
    /// blocks of 1 … `max_block` samples. Processing is not started yet
    /// (that is an audio-thread call: [`Processor::start`]).
    pub fn activate(&mut self, sample_rate: f64, channels: usize, max_block: usize) -> Processor {
        let config = PluginAudioConfiguration {
            sample_rate,
            min_frames_count: 1,
            max_frames_count: max_block as u32,
        };
        self.instance.access_handler(|m| m.activating.set(true));
        let stopped = self.instance.activate(|_, _| (), config);
        self.instance.access_handler(|m| {
            m.activating.set(false);
            m.active.set(stopped.is_ok());
        });
        let stopped = stopped.expect("activating the plugin");
        Processor::new(stopped.into(), channels, max_block)
    }

    /// Deactivate (stops processing first if the processor is still started).
    pub fn deactivate(&mut self, processor: Processor) {
        self.instance.deactivate(processor.processor.into_stopped());
        self.instance.access_handler(|m| {
            m.active.set(false);
            m.processing.store(false, Ordering::SeqCst);
        });
    }

    /// Where each `clap_host_latency::changed()` call so far happened.
    pub fn latency_calls(&self) -> Vec<LatencyCall> {
        self.instance
            .access_handler(|m| m.latency_calls.borrow().clone())
    }

    /// `clap_plugin_params.flush()` from the main thread while the plugin
    /// is deactivated: parameter events (time 0) without processing.
    pub fn flush_inactive(&mut self, events: &[(&str, f64)]) {
        let ext = self.params_ext();
        let events: Vec<ParamValueEvent> = events
            .iter()
            .map(|&(id, value)| ParamValueEvent::new(0, pid(id), Pckn::match_all(), value))
            .collect();
        let mut handle = self
            .instance
            .inactive_plugin_handle()
            .expect("flush_inactive() while the plugin is active");
        ext.flush(
            &mut handle,
            &InputEvents::from_buffer(&events),
            &mut OutputEvents::void(),
        );
    }

    /// Run the plugin's main-thread callback if it asked for one (what a
    /// host's event loop does after `request_callback`).
    pub fn pump(&mut self) {
        let requested = self
            .instance
            .access_shared_handler(|s| s.callback_requested.swap(false, Ordering::SeqCst));
        if requested {
            self.instance.call_on_main_thread_callback();
        }
    }

    /// True if the plugin asked for a restart since the last call.
    pub fn take_restart_request(&self) -> bool {
        self.instance
            .access_shared_handler(|s| s.restart_requested.swap(false, Ordering::SeqCst))
    }

    /// How often the plugin called `clap_host_latency::changed`.
    pub fn latency_changed_calls(&self) -> u32 {
        self.instance.access_handler(|m| m.latency_changed.get())
    }

    /// How often the plugin asked the host to rescan parameters.
    pub fn param_rescans(&self) -> u32 {
        self.instance.access_handler(|m| m.param_rescans.get())
    }
}

// ---------------------------------------------------------------------------
// Audio-thread side
// ---------------------------------------------------------------------------

/// A parameter change at an absolute sample position of a run.
#[derive(Clone, Copy, Debug)]
pub struct Automation {
    /// Sample index from the start of the run.
    pub time: usize,
    /// CLAP parameter ID.
    pub id: ClapId,
    /// CLAP value (normalized, or the step index for stepped parameters).
    pub value: f64,
}

/// A parameter change by string ID.
pub fn at(time: usize, string_id: &str, value: f64) -> Automation {
    Automation {
        time,
        id: pid(string_id),
        value,
    }
}

/// Most events one block may carry; the scratch list is allocated once.
const MAX_EVENTS_PER_BLOCK: usize = 256;

/// The per-block event list. `ParamValueEvent` holds a (null) cookie
/// pointer, which makes it neither `Send` nor `Sync`.
struct EventScratch(Vec<ParamValueEvent>);
// SAFETY: the only pointer inside is the event cookie, always null here.
unsafe impl Send for EventScratch {}

/// The audio-thread half of an active instance, with preallocated host
/// buffers: processing a block allocates nothing on the host side.
pub struct Processor {
    processor: PluginAudioProcessor<TestHost>,
    channels: usize,
    max_block: usize,
    input: Vec<Vec<f32>>,
    output: Vec<Vec<f32>>,
    input_ports: AudioPorts,
    output_ports: AudioPorts,
    events: EventScratch,
    steady_time: u64,
}

impl Processor {
    fn new(processor: PluginAudioProcessor<TestHost>, channels: usize, max_block: usize) -> Self {
        Self {
            processor,
            channels,
            max_block,
            input: vec![vec![0.0; max_block]; channels],
            output: vec![vec![0.0; max_block]; channels],
            input_ports: AudioPorts::with_capacity(channels, 1),
            output_ports: AudioPorts::with_capacity(channels, 1),
            events: EventScratch(Vec::with_capacity(MAX_EVENTS_PER_BLOCK)),
            steady_time: 0,
        }
    }

    /// True between [`Self::start`] and [`Self::stop`].
    pub fn is_started(&self) -> bool {
        self.processor.is_started()
    }

    /// `clap_plugin::start_processing` (audio thread).
    pub fn start(&mut self) {
        self.processor.start_processing().expect("start_processing");
        self.processor
            .access_shared_handler(|s| s.processing.store(true, Ordering::SeqCst));
    }

    /// `clap_plugin::stop_processing` (audio thread).
    pub fn stop(&mut self) {
        self.processor.stop_processing().expect("stop_processing");
        self.processor
            .access_shared_handler(|s| s.processing.store(false, Ordering::SeqCst));
    }

    /// `clap_plugin_params.flush()` on the audio thread of an active
    /// instance whose processing is stopped (CLAP: [active ? audio-thread :
    /// main-thread], and only when not processing).
    pub fn flush(&mut self, events: &[Automation]) {
        let ext = self
            .processor
            .shared_plugin_handle()
            .get_extension::<PluginParams>()
            .expect("the plugin offers the params extension");
        let events: Vec<ParamValueEvent> = events
            .iter()
            .map(|e| ParamValueEvent::new(0, e.id, Pckn::match_all(), e.value))
            .collect();
        ext.flush_active(
            &mut self.processor.plugin_handle(),
            &InputEvents::from_buffer(&events),
            &mut OutputEvents::void(),
        );
    }

    /// `clap_plugin::reset` (audio thread).
    pub fn reset(&mut self) {
        self.processor.reset();
    }

    /// Process `input[c][start .. start + len]` into `output[c][..]` at the
    /// same positions, as one CLAP process call. `events` (sorted by time,
    /// absolute times) inside the block are sent with block-relative times.
    /// Allocates nothing.
    pub fn process_block(
        &mut self,
        input: &[Vec<f32>],
        output: &mut [Vec<f32>],
        start: usize,
        len: usize,
        events: &[Automation],
    ) -> ProcessStatus {
        assert!(len >= 1 && len <= self.max_block, "block of {len} samples");
        assert_eq!(input.len(), self.channels);
        assert_eq!(output.len(), self.channels);
        let Self {
            processor,
            input: in_bufs,
            output: out_bufs,
            input_ports,
            output_ports,
            events: scratch,
            steady_time,
            ..
        } = self;

        for (buf, src) in in_bufs.iter_mut().zip(input) {
            buf[..len].copy_from_slice(&src[start..start + len]);
        }
        scratch.0.clear();
        for e in events
            .iter()
            .filter(|e| (start..start + len).contains(&e.time))
        {
            assert!(scratch.0.len() < MAX_EVENTS_PER_BLOCK, "too many events");
            scratch.0.push(ParamValueEvent::new(
                (e.time - start) as u32,
                e.id,
                Pckn::match_all(),
                e.value,
            ));
        }

        let audio_in = input_ports.with_input_buffers([AudioPortBuffer {
            latency: 0,
            channels: AudioPortBufferType::f32_input_only(
                in_bufs
                    .iter_mut()
                    .map(|b| InputChannel::variable(&mut b[..len])),
            ),
        }]);
        let mut audio_out = output_ports.with_output_buffers([AudioPortBuffer {
            latency: 0,
            channels: AudioPortBufferType::f32_output_only(
                out_bufs.iter_mut().map(|b| &mut b[..len]),
            ),
        }]);
        let events_in = InputEvents::from_buffer(&scratch.0);
        let status = processor
            .as_started_mut()
            .expect("process() before start()")
            .process(
                &audio_in,
                &mut audio_out,
                &events_in,
                &mut OutputEvents::void(),
                Some(*steady_time),
                None,
            )
            .expect("process() failed");
        *steady_time += len as u64;

        for (dst, buf) in output.iter_mut().zip(out_bufs.iter()) {
            dst[start..start + len].copy_from_slice(&buf[..len]);
        }
        status
    }

    /// Process all of `input` into `output`, in blocks whose sizes cycle
    /// through `blocks`, with the automation `events` (absolute times).
    /// Allocates nothing.
    pub fn run_into(
        &mut self,
        input: &[Vec<f32>],
        output: &mut [Vec<f32>],
        blocks: &[usize],
        events: &[Automation],
    ) {
        let total = input[0].len();
        let mut start = 0;
        let mut sizes = blocks.iter().cycle();
        while start < total {
            let len = (*sizes.next().unwrap()).min(total - start);
            self.process_block(input, output, start, len, events);
            start += len;
        }
    }

    /// [`Self::run_into`] into a new output buffer.
    pub fn run(
        &mut self,
        input: &[Vec<f32>],
        blocks: &[usize],
        events: &[Automation],
    ) -> Vec<Vec<f32>> {
        let mut output = vec![vec![f32::NAN; input[0].len()]; input.len()];
        self.run_into(input, &mut output, blocks, events);
        output
    }
}

/// Run `f` on a thread of its own (the "audio thread"), propagating panics.
pub fn on_audio_thread<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    std::thread::scope(|s| {
        let handle = std::thread::Builder::new()
            .name("audio".into())
            .spawn_scoped(s, f)
            .unwrap();
        match handle.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}
