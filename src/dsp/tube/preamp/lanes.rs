//! The preamp over the channels in its lanes ([`PreampLanes`]): one
//! [`Preamp`], or a [`StereoPreamp`] pair with one set of controls; the
//! public methods over the shared [`PreampCore`] and the lanes' state.

use super::{ChannelState, PreampCore};
use crate::dsp::fma::MulAdd;
use crate::dsp::simd::{Kernel, Lane, F2};
use crate::dsp::tube::{PreampPart, PreampSettings};
use crate::dsp::ProcessSpec;
use num_complex::Complex;

// ---------------------------------------------------------------------------
// The preamp over its lanes: the controls, shared
// ---------------------------------------------------------------------------

/// The tube mic preamp over the channels in the lanes of `L`: [`Preamp`]
/// is one channel (`f64`), [`StereoPreamp`] a stereo pair (`F2`, one set
/// of controls) at about the cost of one channel, each channel bit for bit
/// what a [`Preamp`] gives it. Runs at the oversampled rate.
///
/// Per-sample cost: see `kernel.rs`.
#[derive(Clone, Debug)]
pub struct PreampLanes<L: Lane> {
    /// Settings, tables, coefficients, gains (shared by every lane).
    pub(in crate::dsp::tube) core: PreampCore,
    /// Per-sample state, one channel per lane.
    state: ChannelState<L>,
}

/// The preamp for one channel.
pub type Preamp = PreampLanes<f64>;

/// The preamp for a stereo pair (lane 0 left, lane 1 right).
pub type StereoPreamp = PreampLanes<F2>;

impl<L: Lane> Default for PreampLanes<L> {
    fn default() -> Self {
        Self::new()
    }
}

impl<L: Lane> PreampLanes<L> {
    /// An unprepared preamp with default settings.
    pub fn new() -> Self {
        Self {
            core: PreampCore::new(),
            state: ChannelState::default(),
        }
    }

    /// Build tables (allocates, once: 63 curve tables, 6.2 MB) and set the
    /// rate; settles the operating point.
    pub fn prepare(&mut self, spec: &ProcessSpec) {
        self.core.prepare(spec);
        self.reset();
    }

    /// Recompute every rate-dependent coefficient without allocating: every
    /// part at `fs`.
    pub fn set_sample_rate(&mut self, fs: f64) {
        self.core.set_rates(fs, fs);
    }

    /// Run the stages at `fs` and the linear ends at `ends_fs` (the host
    /// rate around an oversampler; see [`PreampPart`]). Never allocates.
    pub fn set_rates(&mut self, fs: f64, ends_fs: f64) {
        self.core.set_rates(fs, ends_fs);
    }

    /// Whether stage 2's output capacitor's charge under drive moves its
    /// load line (on by default; the chain turns it off in Live, where it
    /// would cost about a fifth of the live chain's time: `cathode.rs`).
    /// Off, the charge is not followed either; turned on, it starts from
    /// rest (the chain resets a section whose quality changes before it
    /// runs it). Never allocates.
    pub fn set_output_charge(&mut self, on: bool) {
        if on && !self.core.output_charge {
            self.state.c2.rest_shift();
        }
        self.core.output_charge = on;
    }

    /// The settings in use.
    pub fn settings(&self) -> PreampSettings {
        self.core.settings
    }

    /// Apply settings; recomputes only what changed. Never allocates.
    pub fn set_settings(&mut self, s: PreampSettings) {
        self.core.apply_settings(s, false);
    }

    /// Apply settings with no internal gain smoothing (Gain, Level and the
    /// output divider jump to their targets): for an instance that a
    /// crossfade brings in, which is the smoothing. Never allocates.
    pub fn set_settings_at_once(&mut self, s: PreampSettings) {
        self.core.apply_settings(s, true);
    }

    /// Back to the settled operating point (silence in gives exactly zero
    /// out).
    pub fn reset(&mut self) {
        self.state = self.core.reset();
    }

    /// Linear small-signal gain from mic input to output at 1 kHz.
    pub fn small_signal_gain(&self) -> f64 {
        self.core.small_signal_response(1000.0).norm()
    }

    /// Small-signal response at `freq_hz` (filters, ADAA averaging and its
    /// pre-emphasis included).
    pub fn small_signal_response(&self, freq_hz: f64) -> Complex<f64> {
        self.core.small_signal_response(freq_hz)
    }

    /// Static transfer curve: output volts for a constant mic-input voltage
    /// (for plotting).
    pub fn transfer_curve(&self, v_in: f64) -> f64 {
        self.core.transfer_curve(v_in)
    }

    /// Operating points (Vk, Vp, Ip) of both stages at rest.
    pub fn operating_points(&self) -> [(f64, f64, f64); 2] {
        self.core.operating_points()
    }

    /// Restart the grid peaks.
    pub fn restart_grid_peaks(&mut self) {
        self.state.q_peak = Default::default();
    }
}

// ---------------------------------------------------------------------------
// One channel
// ---------------------------------------------------------------------------

impl Preamp {
    /// Channels carried (lanes of the state).
    pub const CHANNELS: usize = 1;

    /// Most positive grid-to-cathode voltage `[channel][stage]` since the
    /// last restart (or `reset`), in volts. Before any sample it reads the
    /// table's bottom (deep cut-off, far below the bias).
    pub fn grid_peak_volts(&self) -> [[f64; 2]; 1] {
        self.core.grid_peak_volts(&self.state)
    }

    /// [`Self::grid_peak_volts`], then restart them.
    pub fn take_grid_peak_volts(&mut self) -> [[f64; 2]; 1] {
        let peaks = self.grid_peak_volts();
        self.restart_grid_peaks();
        peaks
    }

    /// Grid bias shift of each stage caused by grid current (0 V at rest).
    pub fn grid_bias_volts(&self) -> [f64; 2] {
        [
            -self.state.s1.vc * self.core.stage1.kth,
            -self.state.s2.vc * self.core.stage2.kth,
        ]
    }

    /// Cathode voltage of each stage (its operating point plus what drive
    /// has moved it, `cathode.rs`).
    pub fn cathode_volts(&self) -> [f64; 2] {
        [
            self.core.stage1.operating_point().0 + self.state.s1.vk,
            self.core.stage2.operating_point().0 + self.state.s2.vk,
        ]
    }

    /// Process one channel in place: mic-input volts in, output volts out.
    pub fn process(&mut self, block: &mut [f64]) {
        self.process_part(PreampPart::Whole, block);
    }

    /// Run one part of the preamp over one channel in place.
    pub fn process_part(&mut self, part: PreampPart, block: &mut [f64]) {
        struct Run<'a>(&'a mut Preamp, PreampPart, &'a mut [f64]);
        impl Kernel for Run<'_> {
            type Output = ();
            #[inline(always)]
            fn run<M: MulAdd>(self) {
                self.0.process_any::<M>(self.1, self.2);
            }
        }
        self.core.isa.run(Run(self, part, block));
    }

    #[inline(always)]
    fn process_any<M: MulAdd>(&mut self, part: PreampPart, block: &mut [f64]) {
        if !self.core.prepared() {
            block.fill(0.0);
            return;
        }
        let len = block.len();
        let dst = std::cell::Cell::from_mut(block).as_slice_of_cells();
        self.core.run::<f64, M>(
            part,
            &mut self.state,
            len,
            |i, v| {
                for (d, s) in v.iter_mut().zip(&dst[i..]) {
                    *d = s.get();
                }
            },
            |i, v| {
                for (d, s) in dst[i..].iter().zip(v) {
                    d.set(*s);
                }
            },
        );
    }
}

// ---------------------------------------------------------------------------
// A stereo pair in SIMD lanes
// ---------------------------------------------------------------------------

impl StereoPreamp {
    /// Channels carried (lanes of the state).
    pub const CHANNELS: usize = 2;

    /// As [`Preamp::grid_peak_volts`], per channel.
    pub fn grid_peak_volts(&self) -> [[f64; 2]; 2] {
        self.core.grid_peak_volts(&self.state)
    }

    /// As [`Preamp::take_grid_peak_volts`], per channel.
    pub fn take_grid_peak_volts(&mut self) -> [[f64; 2]; 2] {
        let peaks = self.grid_peak_volts();
        self.restart_grid_peaks();
        peaks
    }

    /// Grid bias shift `[channel][stage]` caused by grid current (0 V at rest).
    pub fn grid_bias_volts(&self) -> [[f64; 2]; 2] {
        let (k1, k2) = (self.core.stage1.kth, self.core.stage2.kth);
        std::array::from_fn(|c| [-self.state.s1.vc.0[c] * k1, -self.state.s2.vc.0[c] * k2])
    }

    /// Process both channels in place (same length; the shorter length is
    /// processed if they differ).
    pub fn process_stereo(&mut self, left: &mut [f64], right: &mut [f64]) {
        self.process_stereo_part(PreampPart::Whole, left, right);
    }

    /// Run one part of the preamp over both channels in place.
    pub fn process_stereo_part(&mut self, part: PreampPart, left: &mut [f64], right: &mut [f64]) {
        struct Run<'a>(
            &'a mut StereoPreamp,
            PreampPart,
            &'a mut [f64],
            &'a mut [f64],
        );
        impl Kernel for Run<'_> {
            type Output = ();
            #[inline(always)]
            fn run<M: MulAdd>(self) {
                self.0.process_stereo_any::<M>(self.1, self.2, self.3);
            }
        }
        self.core.isa.run(Run(self, part, left, right));
    }

    #[inline(always)]
    fn process_stereo_any<M: MulAdd>(
        &mut self,
        part: PreampPart,
        left: &mut [f64],
        right: &mut [f64],
    ) {
        if !self.core.prepared() {
            left.fill(0.0);
            right.fill(0.0);
            return;
        }
        let len = left.len().min(right.len());
        let (l, r) = (&mut left[..len], &mut right[..len]);
        let (lc, rc) = (
            std::cell::Cell::from_mut(l).as_slice_of_cells(),
            std::cell::Cell::from_mut(r).as_slice_of_cells(),
        );
        self.core.run::<F2, M>(
            part,
            &mut self.state,
            len,
            |i, v: &mut [F2]| {
                for (d, (l, r)) in v.iter_mut().zip(lc[i..].iter().zip(&rc[i..])) {
                    *d = F2([l.get(), r.get()]);
                }
            },
            |i, v: &[F2]| {
                for (s, (l, r)) in v.iter().zip(lc[i..].iter().zip(&rc[i..])) {
                    l.set(s.0[0]);
                    r.set(s.0[1]);
                }
            },
        );
    }
}
