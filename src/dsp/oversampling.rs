//! Oversampler for the non-linear stages: 2^n x up, a closure at the high
//! rate, 2^n x down, with an exact integer latency at the host rate.
//!
//! # What it models
//! Nothing analog: it is the band-limiting that lets a static or dynamic
//! non-linearity (the triode stages) run at 2..16 times the host rate without
//! folding its harmonics back into the audio band. Signal in and out is in
//! volts at the host rate; the closure sees volts at the oversampled rate.
//!
//! # Structure
//! A factor 2^n is a cascade of n half-band 2x stages. Stage 1 sits next to
//! the host rate fs and is the steep one; stage k >= 2 only has to keep the
//! host band and reject what would fold into it (the transitions are in
//! `design.rs`). Upsampling runs stage 1, 2, ..., n; downsampling runs n,
//! ..., 2, 1. Two filter families ([`Quality`]):
//!
//! - live: polyphase elliptic IIR half-bands (low latency, the phase of an
//!   allpass), with the fractional part of their delay padded to a whole
//!   host sample by a first-order Thiran allpass;
//! - high: linear-phase Kaiser FIR half-bands (more latency and CPU).
//!
//! | file        | what                                                       |
//! |-------------|------------------------------------------------------------|
//! | `design.rs` | the half-band designs (elliptic IIR, Kaiser FIR), the transition of each stage, the latency plans |
//! | `iir.rs`    | the polyphase allpass cascade that runs the live stages    |
//! | `fir.rs`    | the symmetric FIR that runs the high-quality stages        |
//! | `thiran.rs` | the Thiran fractional-delay pad of the live quality        |
//! | (this file) | [`Oversampler`]: buffers, configuration, dispatch, guard   |
//!
//! # Latency
//! [`latency_for`] gives it per (quality, factor, host rate) before any
//! processing; factor 1 is an exact pass-through with latency 0. Host
//! samples, as designed here (factor 2 / 4 / 8 / 16):
//!
//! | host rate | live         | high             |
//! |-----------|--------------|------------------|
//! | 44.1 kHz  | 4 / 5 / 6 / 6 | 87 / 99 / 102 / 103 |
//! | 48 kHz    | 4 / 5 / 5 / 6 | 49 / 61 / 64 / 65   |
//! | 96 kHz    | 3 / 4 / 5 / 5 | 21 / 33 / 36 / 37   |
//!
//! Designs at 44.1 kHz: live stage 1 has 8 allpass coefficients (104 dB),
//! stages 2 / 3 / 4 have 4 / 4 / 2 (117 / 174 / 125 dB); at 48 kHz live
//! stage 1 has 6 (96 dB: the live target is 95 dB per stage, which keeps the
//! end-to-end aliasing of `tests/aliasing.rs` at 10 % THD at −147 dB, the
//! f32 output's floor, against the −90 dB requirement); high stage 1 has
//! 44 tap pairs (D = 87, 121 dB), stages 2 / 3 / 4 have 12 / 6 / 6 pairs.
//! The stopband of every stage is checked on a dense grid by the tests.
//!
//! # Real-time behaviour
//! `prepare` designs every stage and allocates every buffer for factor 16 and
//! both qualities, so `configure` only switches indices. Recursive state is
//! flushed to zero below 1e-30 at fixed positions of the absolute sample
//! count (so the output does not depend on the block partition): a live
//! stage's every 128 of its input samples (`IIR_FLUSH_PERIOD`), the Thiran
//! pad's every 64 host samples. FIR history is flushed as it is written. A non-finite sample in the output or
//! in the state resets every filter and zeroes the non-finite samples.

mod design;
mod fir;
mod iir;
#[cfg(test)]
mod tests;
mod thiran;

use super::fma::MulAdd;
use super::simd::{Isa, Kernel};
use super::ProcessSpec;
use design::{allpass1, high_plan, live_plan, stages_for, Designs};
use fir::FirStage;
use iir::{live_down4, live_down4_pair, live_up4, live_up4_pair, Fused4, IirStage};
use num_complex::Complex;
use std::f64::consts::PI;
use thiran::Thiran;

/// Which filter family the oversampler uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quality {
    /// Polyphase IIR half-bands: low latency, non-linear phase.
    Live,
    /// Linear-phase FIR half-bands: more latency and CPU, no phase distortion.
    High,
}

/// Largest supported oversampling factor.
pub const MAX_FACTOR: usize = 16;
/// Number of 2x stages needed for `MAX_FACTOR`.
const MAX_STAGES: usize = 4;
/// State magnitudes below this are set to zero (denormal protection).
const FLUSH_BELOW: f64 = 1e-30;

/// Sets a value to zero when it is too small to matter (denormal guard).
#[inline(always)]
fn flush(v: f64) -> f64 {
    if v.abs() < FLUSH_BELOW {
        0.0
    } else {
        v
    }
}

/// Latency in host samples of a configuration, before any processing.
///
/// Designs the filters for `sample_rate_hz` (no allocation, about a
/// millisecond), so call it when the configuration changes, not per block.
pub fn latency_for(quality: Quality, factor: usize, sample_rate_hz: f64) -> usize {
    let stages = stages_for(factor);
    if stages == 0 {
        return 0;
    }
    let designs = Designs::new(sample_rate_hz);
    match quality {
        Quality::Live => live_plan(&designs.iir, stages).0,
        Quality::High => high_plan(&designs.fir, stages).0,
    }
}

/// Per-channel 2^n x oversampler around a closure (see the module header).
#[derive(Clone, Debug)]
pub struct Oversampler {
    /// Host sample rate the filters were designed for, Hz.
    sample_rate_hz: f64,
    /// Largest host block `process` handles in one piece.
    max_block: usize,
    /// Filter family in use.
    quality: Quality,
    /// Oversampling factor in use (1, 2, 4, 8 or 16).
    factor: usize,
    /// log2 of `factor`: how many 2x stages run.
    stages: usize,
    /// Latency of the current configuration in host samples.
    latency: usize,
    /// The designs for `sample_rate_hz` (kept for `response` and re-planning).
    designs: Designs,
    /// Live stages, index 0 next to the host rate.
    iir: [IirStage; MAX_STAGES],
    /// High-quality stages, index 0 next to the host rate.
    fir: [FirStage; MAX_STAGES],
    /// Live-mode fractional-delay pad at the host rate.
    thiran: Thiran,
    /// The fused 4x live kernel for the designed section counts of stages 1
    /// and 2, if there is one (else live 4x runs stage by stage).
    fused4: Option<Fused4>,
    /// The build the loops run in (from `prepare`'s spec): in the AVX2 +
    /// FMA build the fused 4x live kernels use fused multiply-adds (see
    /// `super::fma`); the other paths compute the same either way.
    isa: Isa,
    /// Ping-pong buffer for the intermediate and oversampled signal.
    buf_a: Vec<f64>,
    /// The other ping-pong buffer.
    buf_b: Vec<f64>,
    /// Host samples of the last `upsample`.
    up_len: usize,
    /// The last `upsample` left its signal in `buf_b` (else `buf_a`).
    up_in_b: bool,
}

impl Default for Oversampler {
    fn default() -> Self {
        Self::new()
    }
}

impl Oversampler {
    /// An oversampler prepared for 48 kHz and blocks of up to 512 samples,
    /// configured as factor 1 (pass-through). Call `prepare` before use.
    pub fn new() -> Self {
        let spec = ProcessSpec::new(48_000.0, 512);
        let designs = Designs::new(spec.sample_rate);
        let mut os = Oversampler {
            sample_rate_hz: spec.sample_rate,
            max_block: 1,
            quality: Quality::Live,
            factor: 1,
            stages: 0,
            latency: 0,
            designs,
            iir: std::array::from_fn(|i| IirStage::new(&designs.iir[i])),
            fir: std::array::from_fn(|i| FirStage::new(&designs.fir[i], 1)),
            thiran: Thiran::new(1.0),
            fused4: None,
            isa: Isa::portable(),
            buf_a: Vec::new(),
            buf_b: Vec::new(),
            up_len: 0,
            up_in_b: false,
        };
        os.prepare(&spec);
        os
    }

    /// Designs every stage for `spec.sample_rate` and allocates every buffer
    /// for `spec.max_block` host samples at factor 16, for both qualities.
    /// Keeps the current quality and factor; clears all state.
    pub fn prepare(&mut self, spec: &ProcessSpec) {
        self.isa = spec.isa;
        let max_block = spec.max_block.max(1);
        self.sample_rate_hz = spec.sample_rate;
        self.max_block = max_block;
        self.designs = Designs::new(spec.sample_rate);
        let designs = self.designs;
        self.iir = std::array::from_fn(|i| IirStage::new(&designs.iir[i]));
        self.fused4 = Fused4::for_stages(&self.iir[0], &self.iir[1]);
        // Stage k (0-based) takes max_block * 2^k samples in (upsampler) and
        // gives as many out (decimator).
        self.fir = std::array::from_fn(|i| FirStage::new(&designs.fir[i], max_block << i));
        self.buf_a = vec![0.0; max_block * MAX_FACTOR];
        self.buf_b = vec![0.0; max_block * MAX_FACTOR];
        self.apply_config();
        self.reset();
    }

    /// Chooses the quality and the factor (1, 2, 4, 8, 16; other values are
    /// rounded up to the next power of two, at most 16). Allocation-free.
    /// A change clears the filter state (the latency changes too).
    pub fn configure(&mut self, quality: Quality, factor: usize) {
        let stages = stages_for(factor);
        if quality == self.quality && stages == self.stages {
            return;
        }
        self.quality = quality;
        self.stages = stages;
        self.apply_config();
        self.reset();
    }

    /// Recomputes latency, Thiran pad and last-decimator delay.
    fn apply_config(&mut self) {
        self.factor = 1 << self.stages;
        let (live_latency, frac) = live_plan(&self.designs.iir, self.stages);
        let (high_latency, last_delay) = high_plan(&self.designs.fir, self.stages);
        self.thiran = Thiran::new(if self.stages == 0 { 1.0 } else { frac });
        for f in self.fir.iter_mut() {
            f.down_delay = f.half_length();
        }
        if self.stages > 0 {
            self.fir[self.stages - 1].down_delay = last_delay;
        }
        self.latency = match self.quality {
            Quality::Live => live_latency,
            Quality::High => high_latency,
        };
    }

    /// Oversampling factor in use.
    pub fn factor(&self) -> usize {
        self.factor
    }

    /// Quality in use.
    pub fn quality(&self) -> Quality {
        self.quality
    }

    /// Latency in host samples (exact: the delay of low frequencies).
    pub fn latency_samples(&self) -> usize {
        self.latency
    }

    /// Clears all filter state.
    pub fn reset(&mut self) {
        for s in self.iir.iter_mut() {
            s.reset();
        }
        for s in self.fir.iter_mut() {
            s.reset();
        }
        self.thiran.reset();
    }

    /// Linear response (identity closure) at `freq_hz`, including the delay.
    /// Ignores the aliased components, which are below the stopband target.
    pub fn response(&self, freq_hz: f64) -> Complex<f64> {
        let w = 2.0 * PI * freq_hz / self.sample_rate_hz;
        if self.stages == 0 {
            return Complex::new(1.0, 0.0);
        }
        match self.quality {
            Quality::Live => {
                let mut h = allpass1(self.thiran.c, w);
                for (k, d) in self.designs.iir[..self.stages].iter().enumerate() {
                    let theta = w / (1usize << k) as f64;
                    for &a in &d.coefs[..d.count] {
                        h *= allpass1(a, theta);
                    }
                }
                h
            }
            Quality::High => {
                let mut g = 1.0;
                for (k, d) in self.designs.fir[..self.stages].iter().enumerate() {
                    let a = d.amplitude(w / (2usize << k) as f64);
                    g *= a * a;
                }
                Complex::from_polar(g, -w * self.latency as f64)
            }
        }
    }

    /// Upsamples `block`, calls `f` once on the oversampled signal (length
    /// `block.len() * factor()`), and decimates the result back into `block`.
    /// Blocks longer than the prepared `max_block` are split (then `f` runs
    /// once per piece).
    pub fn process<F: FnMut(&mut [f64])>(&mut self, block: &mut [f64], mut f: F) {
        if self.stages == 0 {
            // Non-finite samples are zeroed here as the up-sampler does.
            for s in block.iter_mut() {
                if !s.is_finite() {
                    *s = 0.0;
                }
            }
            f(block);
            return;
        }
        for piece in block.chunks_mut(self.max_block) {
            self.upsample(piece);
            f(self.oversampled());
            self.downsample(piece);
        }
    }

    /// The first half of [`Self::process`], for callers that run several
    /// channels' oversampled signals together: upsamples `block` (at most
    /// the prepared `max_block` samples; longer blocks are cut there) into
    /// the oversampler's buffer, which [`Self::oversampled`] then lends out
    /// and [`Self::downsample`] decimates.
    pub fn upsample(&mut self, block: &[f64]) {
        struct Up<'a>(&'a mut Oversampler, &'a [f64]);
        impl Kernel for Up<'_> {
            type Output = ();
            #[inline(always)]
            fn run<M: MulAdd>(self) {
                self.0.upsample_any::<M>(self.1);
            }
        }
        self.isa.run(Up(self, block));
    }

    #[inline(always)]
    fn upsample_any<F: MulAdd>(&mut self, block: &[f64]) {
        let len = block.len().min(self.max_block);
        let block = &block[..len];
        self.up_len = len;
        self.up_in_b = false;
        let n = self.stages;
        if n == 0 {
            self.buf_a[..len].copy_from_slice(block);
            return;
        }
        let (a, b) = (&mut self.buf_a, &mut self.buf_b);
        match (self.quality, self.fused4) {
            (Quality::Live, Some(kernel)) if n == 2 => {
                live_up4::<F>(kernel, &mut self.iir, block, &mut a[..4 * len]);
            }
            (Quality::Live, _) => {
                self.iir[0].up(block, &mut a[..2 * len]);
                for k in 1..n {
                    let (src, dst) = if self.up_in_b {
                        (&*b, &mut *a)
                    } else {
                        (&*a, &mut *b)
                    };
                    self.iir[k].up(&src[..len << k], &mut dst[..len << (k + 1)]);
                    self.up_in_b = !self.up_in_b;
                }
            }
            (Quality::High, _) => {
                self.fir[0].up(block, &mut a[..2 * len]);
                for k in 1..n {
                    let (src, dst) = if self.up_in_b {
                        (&*b, &mut *a)
                    } else {
                        (&*a, &mut *b)
                    };
                    self.fir[k].up(&src[..len << k], &mut dst[..len << (k + 1)]);
                    self.up_in_b = !self.up_in_b;
                }
            }
        }
    }

    /// The oversampled signal of the last [`Self::upsample`]
    /// (`len · factor()` samples), to process in place.
    pub fn oversampled(&mut self) -> &mut [f64] {
        let n = self.up_len << self.stages;
        if self.up_in_b {
            &mut self.buf_b[..n]
        } else {
            &mut self.buf_a[..n]
        }
    }

    /// The second half of [`Self::process`]: decimates the oversampled
    /// buffer into `block` (the length given to the last `upsample`; a
    /// longer `block` is written only that far).
    pub fn downsample(&mut self, block: &mut [f64]) {
        struct Down<'a>(&'a mut Oversampler, &'a mut [f64]);
        impl Kernel for Down<'_> {
            type Output = ();
            #[inline(always)]
            fn run<M: MulAdd>(self) {
                self.0.downsample_any::<M>(self.1);
            }
        }
        self.isa.run(Down(self, block));
    }

    #[inline(always)]
    fn downsample_any<F: MulAdd>(&mut self, block: &mut [f64]) {
        let len = self.up_len.min(block.len());
        let block = &mut block[..len];
        let n = self.stages;
        if n == 0 {
            block.copy_from_slice(&self.buf_a[..len]);
            return;
        }
        let mut in_b = self.up_in_b;
        let (a, b) = (&mut self.buf_a, &mut self.buf_b);
        match (self.quality, self.fused4) {
            (Quality::Live, Some(kernel)) if n == 2 => {
                live_down4::<F>(
                    kernel,
                    &mut self.iir,
                    &mut self.thiran,
                    &a[..4 * len],
                    block,
                );
            }
            (Quality::Live, _) => {
                for k in (1..n).rev() {
                    let (src, dst) = if in_b { (&*b, &mut *a) } else { (&*a, &mut *b) };
                    self.iir[k].down(&src[..len << (k + 1)], &mut dst[..len << k]);
                    in_b = !in_b;
                }
                let src = if in_b { &*b } else { &*a };
                self.iir[0].down(&src[..2 * len], block);
                self.thiran.process(block);
            }
            (Quality::High, _) => {
                for k in (1..n).rev() {
                    let (src, dst) = if in_b { (&*b, &mut *a) } else { (&*a, &mut *b) };
                    self.fir[k].down(&src[..len << (k + 1)], &mut dst[..len << k]);
                    in_b = !in_b;
                }
                let src = if in_b { &*b } else { &*a };
                self.fir[0].down(&src[..2 * len], block);
            }
        }
        self.guard(block);
    }

    /// The fused live 4x kernel `a` and `b` can run as one pair, if they
    /// can: same design, same configuration, same flush phases (true for
    /// the two channels of a chain, which are reset and fed together).
    fn pair_kernel(a: &Oversampler, b: &Oversampler) -> Option<Fused4> {
        let live4 = |o: &Oversampler| o.quality == Quality::Live && o.stages == 2;
        let alike = live4(a)
            && live4(b)
            && a.fused4 == b.fused4
            && a.iir[0].sections == b.iir[0].sections
            && a.iir[1].sections == b.iir[1].sections
            && a.iir[0].up_coefs == b.iir[0].up_coefs
            && a.iir[1].up_coefs == b.iir[1].up_coefs
            && a.thiran.c == b.thiran.c
            && a.iir[0].up.phase == b.iir[0].up.phase
            && a.iir[1].up.phase == b.iir[1].up.phase
            && a.iir[0].down.phase == b.iir[0].down.phase
            && a.iir[1].down.phase == b.iir[1].down.phase
            && a.thiran.phase == b.thiran.phase;
        a.fused4.filter(|_| alike)
    }

    /// [`Self::upsample`] of two channels at once (a stereo pair): the same
    /// result per channel, with the live 4x recursions of both channels in
    /// one loop when the two are configured alike (else one after the other).
    pub fn upsample_pair(a: &mut Oversampler, b: &mut Oversampler, in_a: &[f64], in_b: &[f64]) {
        struct UpPair<'a>(
            &'a mut Oversampler,
            &'a mut Oversampler,
            &'a [f64],
            &'a [f64],
        );
        impl Kernel for UpPair<'_> {
            type Output = ();
            #[inline(always)]
            fn run<M: MulAdd>(self) {
                Oversampler::upsample_pair_any::<M>(self.0, self.1, self.2, self.3);
            }
        }
        a.isa.run(UpPair(a, b, in_a, in_b));
    }

    #[inline(always)]
    fn upsample_pair_any<F: MulAdd>(
        a: &mut Oversampler,
        b: &mut Oversampler,
        in_a: &[f64],
        in_b: &[f64],
    ) {
        let len = in_a.len().min(a.max_block);
        let kernel = Self::pair_kernel(a, b).filter(|_| len == in_b.len().min(b.max_block));
        let Some(kernel) = kernel else {
            a.upsample(in_a);
            b.upsample(in_b);
            return;
        };
        for o in [&mut *a, &mut *b] {
            o.up_len = len;
            o.up_in_b = false;
        }
        let (a1, a2) = a.iir.split_at_mut(1);
        let (b1, b2) = b.iir.split_at_mut(1);
        let (oa, ob) = (&mut a.buf_a[..4 * len], &mut b.buf_a[..4 * len]);
        let (ia, ib) = (&in_a[..len], &in_b[..len]);
        let (pa, pb) = (
            (&mut a1[0], &mut a2[0], ia, oa),
            (&mut b1[0], &mut b2[0], ib, ob),
        );
        live_up4_pair::<F>(kernel, pa, pb);
    }

    /// [`Self::downsample`] of two channels at once (see
    /// [`Self::upsample_pair`]).
    pub fn downsample_pair(
        a: &mut Oversampler,
        b: &mut Oversampler,
        out_a: &mut [f64],
        out_b: &mut [f64],
    ) {
        struct DownPair<'a>(
            &'a mut Oversampler,
            &'a mut Oversampler,
            &'a mut [f64],
            &'a mut [f64],
        );
        impl Kernel for DownPair<'_> {
            type Output = ();
            #[inline(always)]
            fn run<M: MulAdd>(self) {
                Oversampler::downsample_pair_any::<M>(self.0, self.1, self.2, self.3);
            }
        }
        a.isa.run(DownPair(a, b, out_a, out_b));
    }

    #[inline(always)]
    fn downsample_pair_any<F: MulAdd>(
        a: &mut Oversampler,
        b: &mut Oversampler,
        out_a: &mut [f64],
        out_b: &mut [f64],
    ) {
        let len = a.up_len.min(out_a.len());
        let fits = len == b.up_len.min(out_b.len()) && !a.up_in_b && !b.up_in_b;
        let Some(kernel) = Self::pair_kernel(a, b).filter(|_| fits) else {
            a.downsample(out_a);
            b.downsample(out_b);
            return;
        };
        let (out_a, out_b) = (&mut out_a[..len], &mut out_b[..len]);
        {
            let (a1, a2) = a.iir.split_at_mut(1);
            let (b1, b2) = b.iir.split_at_mut(1);
            let (ia, ib) = (&a.buf_a[..4 * len], &b.buf_a[..4 * len]);
            let pa = (&mut a1[0], &mut a2[0], &mut a.thiran, ia, &mut *out_a);
            let pb = (&mut b1[0], &mut b2[0], &mut b.thiran, ib, &mut *out_b);
            live_down4_pair::<F>(kernel, pa, pb);
        }
        a.guard(out_a);
        b.guard(out_b);
    }

    /// Resets every filter and zeroes non-finite output when the output or
    /// the recursive state holds NaN or infinity.
    fn guard(&mut self, block: &mut [f64]) {
        let mut acc = [0.0f64; 4];
        let mut chunks = block.chunks_exact(4);
        for c in &mut chunks {
            for j in 0..4 {
                acc[j] += c[j] * 0.0;
            }
        }
        let mut poison = acc[0] + acc[1] + acc[2] + acc[3];
        for &v in chunks.remainder() {
            poison += v * 0.0;
        }
        for s in &self.iir[..self.stages] {
            poison += s.up.poison() + s.down.poison();
        }
        poison += self.thiran.poison();
        if poison != 0.0 {
            self.reset();
            for v in block.iter_mut() {
                if !v.is_finite() {
                    *v = 0.0;
                }
            }
        }
    }
}
