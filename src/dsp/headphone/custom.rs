//! Measured (custom) headphone loads: minimum-phase FIR design of
//! |Z/(Z+Zo)| on a measured curve (read and checked in `curve.rs`) and a
//! zero-latency partitioned convolution.
//!
//! Design (`design_custom`, allocates, off the audio thread): the curve is
//! interpolated (ln|Z| and phase linear in ln f, held flat outside the
//! measured range) onto an FFT grid of N >= 0.8 fs points (~1 Hz or finer),
//! |H| = |Z/(Z+Zo)| is made minimum phase with the real-cepstrum method
//! (realfft), and the impulse response is truncated where its remaining
//! energy is below -100 dB (at most 0.2 s).
//!
//! Run time (`Convolver`, no allocation after `prepare`): the first
//! `PART` taps run as a direct FIR, the rest as uniformly partitioned
//! overlap-save FFT convolution with partitions of `PART` samples, whose
//! one-block delay is exactly covered by the direct head, so the latency
//! is zero and the output does not depend on the host block size.

use num_complex::Complex;
use realfft::RealFftPlanner;
use std::f64::consts::PI;

use super::curve::ImpedanceCurve;

type C64 = Complex<f64>;

/// Partition length of the convolution (and length of the direct head).
const PART: usize = 128;
/// FFT length of one partition (overlap-save: two partitions).
const FFT_LEN: usize = 2 * PART;
/// Spectrum bins kept for a real signal.
const BINS: usize = PART + 1;
/// Longest custom filter, seconds.
const MAX_FILTER_S: f64 = 0.2;

/// A minimum-phase FIR for one (curve, Zo, rate), split for the
/// partitioned convolution. Made by `design_custom` (allocates).
#[derive(Clone, Debug, Default)]
pub struct CustomFilter {
    /// Sample rate it was designed for, Hz (0 for the empty filter).
    pub sample_rate: f64,
    /// Output impedance it was designed for, ohms.
    pub zo_ohms: f64,
    /// First `PART` taps (direct FIR). Empty = flat unity filter.
    head: Vec<f64>,
    /// Spectra of the following partitions, `BINS` bins each.
    parts: Vec<C64>,
    /// Complete impulse response (for `response`).
    taps: Vec<f64>,
}

impl CustomFilter {
    /// The empty (flat, unity-gain) filter; does not allocate.
    pub fn empty() -> Self {
        CustomFilter::default()
    }

    /// True for the empty filter.
    pub fn is_empty(&self) -> bool {
        self.head.is_empty()
    }

    /// Number of FIR taps.
    pub fn len(&self) -> usize {
        self.taps.len()
    }

    fn n_parts(&self) -> usize {
        self.parts.len() / BINS
    }

    /// Frequency response of the FIR at `freq_hz` (direct DFT, O(taps)).
    pub fn response(&self, freq_hz: f64) -> C64 {
        if self.is_empty() {
            return C64::new(1.0, 0.0);
        }
        let w = -2.0 * PI * freq_hz / self.sample_rate;
        let step = C64::from_polar(1.0, w);
        let mut ph = C64::new(1.0, 0.0);
        let mut acc = C64::new(0.0, 0.0);
        for (n, h) in self.taps.iter().enumerate() {
            if n % 256 == 0 {
                ph = C64::from_polar(1.0, w * n as f64);
            }
            acc += ph * *h;
            ph *= step;
        }
        acc
    }
}

/// Designs the minimum-phase FIR of |Z/(Z+Zo)| for `curve` at
/// `sample_rate`. Allocates and takes a few ms: call it off the audio
/// thread, then hand the result over with `HeadphoneAmp::swap_custom`.
/// Zo is baked in: when Zo changes with a custom load, design again
/// (debounced) and swap; the stage crossfades.
pub fn design_custom(curve: &ImpedanceCurve, zo_ohms: f64, sample_rate: f64) -> CustomFilter {
    let fs = sample_rate;
    let zo = if zo_ohms.is_finite() {
        zo_ohms.max(0.0)
    } else {
        0.0
    };
    let max_len = max_taps(fs);
    let n = (4 * max_len).next_power_of_two().max(1 << 12);
    let mut planner = RealFftPlanner::<f64>::new();
    let fwd = planner.plan_fft_forward(n);
    let inv = planner.plan_fft_inverse(n);
    let mut spec = fwd.make_output_vec();
    for (k, b) in spec.iter_mut().enumerate() {
        let f = k as f64 * fs / n as f64;
        let z = curve.impedance(f);
        let h = (z / (z + zo)).norm().max(1e-12);
        *b = C64::new(h.ln(), 0.0);
    }
    // Real cepstrum.
    let mut cep = inv.make_output_vec();
    let _ = inv.process(&mut spec, &mut cep);
    let scale = 1.0 / n as f64;
    for (i, c) in cep.iter_mut().enumerate() {
        let fold = if i == 0 || i == n / 2 {
            1.0
        } else if i < n / 2 {
            2.0
        } else {
            0.0
        };
        *c *= scale * fold;
    }
    let mut logspec = fwd.make_output_vec();
    let _ = fwd.process(&mut cep, &mut logspec);
    for b in logspec.iter_mut() {
        *b = b.exp();
    }
    logspec[0].im = 0.0;
    if let Some(last) = logspec.last_mut() {
        last.im = 0.0;
    }
    let mut h = inv.make_output_vec();
    let _ = inv.process(&mut logspec, &mut h);
    h.iter_mut().for_each(|x| *x *= scale);
    // Truncate where the remaining energy is below -100 dB.
    let total: f64 = h[..max_len].iter().map(|x| x * x).sum();
    let mut tail = 0.0;
    let mut len = max_len;
    for i in (0..max_len).rev() {
        tail += h[i] * h[i];
        if tail > total * 1e-10 {
            len = i + 1;
            break;
        }
    }
    let len = len.div_ceil(PART).max(1) * PART;
    let taps: Vec<f64> = h[..len].to_vec();
    // Partition spectra.
    let pf = planner.plan_fft_forward(FFT_LEN);
    let n_parts = len / PART - 1;
    let mut parts = Vec::with_capacity(n_parts * BINS);
    let mut buf = vec![0.0; FFT_LEN];
    let mut out = pf.make_output_vec();
    for k in 0..n_parts {
        buf.iter_mut().for_each(|x| *x = 0.0);
        buf[..PART].copy_from_slice(&taps[PART * (k + 1)..PART * (k + 2)]);
        let _ = pf.process(&mut buf, &mut out);
        parts.extend_from_slice(&out);
    }
    CustomFilter {
        sample_rate: fs,
        zo_ohms: zo,
        head: taps[..PART].to_vec(),
        parts,
        taps,
    }
}

fn max_taps(fs: f64) -> usize {
    ((MAX_FILTER_S * fs) as usize).div_ceil(PART).max(2) * PART
}

/// Radix-2 complex FFT of fixed length `FFT_LEN` (tables made once).
struct Fft {
    /// e^{-2 pi i k / FFT_LEN} for k < FFT_LEN / 2.
    twiddle: Vec<C64>,
    /// Bit-reversal permutation.
    bitrev: Vec<usize>,
}

impl Fft {
    fn new() -> Self {
        let bits = FFT_LEN.trailing_zeros();
        Fft {
            twiddle: (0..FFT_LEN / 2)
                .map(|k| C64::from_polar(1.0, -2.0 * PI * k as f64 / FFT_LEN as f64))
                .collect(),
            bitrev: (0..FFT_LEN)
                .map(|i| i.reverse_bits() >> (usize::BITS - bits))
                .collect(),
        }
    }

    /// In-place forward transform (unnormalised, e^{-i}).
    fn forward(&self, x: &mut [C64]) {
        for i in 0..FFT_LEN {
            let j = self.bitrev[i];
            if j > i {
                x.swap(i, j);
            }
        }
        let mut len = 2;
        while len <= FFT_LEN {
            let half = len / 2;
            let stride = FFT_LEN / len;
            for start in (0..FFT_LEN).step_by(len) {
                for k in 0..half {
                    let t = x[start + k + half] * self.twiddle[k * stride];
                    let u = x[start + k];
                    x[start + k] = u + t;
                    x[start + k + half] = u - t;
                }
            }
            len *= 2;
        }
    }
}

/// Zero-latency partitioned convolution state for the custom load.
pub(super) struct Convolver {
    /// Rate the stage runs at.
    fs: f64,
    /// Current filter.
    cur: CustomFilter,
    /// Filter being faded out after a swap (or empty).
    old: CustomFilter,
    /// Samples left in the crossfade.
    fade_left: usize,
    /// Crossfade length, samples.
    fade_len: usize,
    /// Previous and current input partition: [prev | cur].
    lin: Vec<f64>,
    /// Position inside the current partition.
    pos: usize,
    /// Ring of input spectra, `BINS` each, newest at `ring_head`.
    fdl: Vec<C64>,
    /// Number of spectra the ring holds.
    ring_len: usize,
    /// Index of the newest spectrum.
    ring_head: usize,
    /// Tail output of the current filter for the current partition.
    tail_cur: Vec<f64>,
    /// Same for the old filter.
    tail_old: Vec<f64>,
    /// FFT tables.
    fft: Option<Fft>,
    /// FFT work buffer.
    work: Vec<C64>,
    /// Spectrum accumulator.
    acc: Vec<C64>,
}

impl Convolver {
    pub fn new() -> Self {
        Convolver {
            fs: 0.0,
            cur: CustomFilter::empty(),
            old: CustomFilter::empty(),
            fade_left: 0,
            fade_len: 1,
            lin: Vec::new(),
            pos: 0,
            fdl: Vec::new(),
            ring_len: 0,
            ring_head: 0,
            tail_cur: Vec::new(),
            tail_old: Vec::new(),
            fft: None,
            work: Vec::new(),
            acc: Vec::new(),
        }
    }

    pub fn prepare(&mut self, fs: f64) {
        self.fs = fs;
        self.fade_len = ((0.02 * fs) as usize).max(1);
        self.lin = vec![0.0; 2 * PART];
        self.ring_len = max_taps(fs) / PART;
        self.fdl = vec![C64::new(0.0, 0.0); self.ring_len * BINS];
        self.tail_cur = vec![0.0; PART];
        self.tail_old = vec![0.0; PART];
        self.work = vec![C64::new(0.0, 0.0); FFT_LEN];
        self.acc = vec![C64::new(0.0, 0.0); FFT_LEN];
        if self.fft.is_none() {
            self.fft = Some(Fft::new());
        }
        self.reset();
    }

    pub fn reset(&mut self) {
        self.lin.iter_mut().for_each(|x| *x = 0.0);
        self.fdl.iter_mut().for_each(|x| *x = C64::new(0.0, 0.0));
        self.tail_cur.iter_mut().for_each(|x| *x = 0.0);
        self.tail_old.iter_mut().for_each(|x| *x = 0.0);
        self.pos = 0;
        self.ring_head = 0;
        self.fade_left = 0;
    }

    fn usable(&self, f: &CustomFilter) -> bool {
        !f.is_empty() && f.sample_rate == self.fs && !self.lin.is_empty()
    }

    /// Response of the current filter (unity when none or wrong rate).
    pub fn response_current(&self, freq_hz: f64) -> C64 {
        if self.usable(&self.cur) {
            self.cur.response(freq_hz)
        } else {
            C64::new(1.0, 0.0)
        }
    }

    pub fn swap(&mut self, new: CustomFilter, fade_len: usize) -> CustomFilter {
        let evicted = std::mem::replace(&mut self.old, std::mem::replace(&mut self.cur, new));
        self.fade_len = fade_len.max(1);
        self.fade_left = self.fade_len;
        std::mem::swap(&mut self.tail_old, &mut self.tail_cur);
        // The new filter's tail for the partition in progress, from the
        // input spectra already in the ring.
        let mut tail = std::mem::take(&mut self.tail_cur);
        self.compute_tail(true, &mut tail);
        self.tail_cur = tail;
        evicted
    }

    /// Sum over partitions of X_{b-k} H_k, inverse FFT, second half.
    fn compute_tail(&mut self, current: bool, out: &mut [f64]) {
        let f = if current { &self.cur } else { &self.old };
        if f.is_empty() || f.sample_rate != self.fs || self.fft.is_none() || out.len() < PART {
            return;
        }
        let kmax = f.n_parts().min(self.ring_len);
        self.acc.iter_mut().for_each(|x| *x = C64::new(0.0, 0.0));
        for k in 0..kmax {
            let slot = (self.ring_head + self.ring_len - k) % self.ring_len;
            let x = &self.fdl[slot * BINS..(slot + 1) * BINS];
            let h = &f.parts[k * BINS..(k + 1) * BINS];
            for ((a, xv), hv) in self.acc[..BINS].iter_mut().zip(x).zip(h) {
                *a += xv * hv;
            }
        }
        // Inverse via conjugation: x = conj(FFT(conj(X))) / N.
        for i in 0..BINS {
            self.work[i] = self.acc[i].conj();
        }
        for i in BINS..FFT_LEN {
            self.work[i] = self.acc[FFT_LEN - i];
        }
        if let Some(fft) = &self.fft {
            fft.forward(&mut self.work);
        }
        let s = 1.0 / FFT_LEN as f64;
        for (o, w) in out[..PART].iter_mut().zip(&self.work[PART..]) {
            *o = w.re * s;
        }
    }

    fn head_out(&self, f: &CustomFilter) -> f64 {
        let p = self.pos + PART;
        let mut acc = 0.0;
        for (j, h) in f.head.iter().enumerate() {
            acc += h * self.lin[p - j];
        }
        acc
    }

    /// One sample in, one sample out.
    #[inline]
    pub fn tick(&mut self, x: f64) -> f64 {
        if self.lin.is_empty() {
            return x;
        }
        self.lin[PART + self.pos] = x;
        let y_cur = if self.usable(&self.cur) {
            self.head_out(&self.cur) + self.tail_cur[self.pos]
        } else {
            x
        };
        let mut y = y_cur;
        if self.fade_left > 0 {
            let y_old = if self.usable(&self.old) {
                self.head_out(&self.old) + self.tail_old[self.pos]
            } else {
                x
            };
            let t = self.fade_left as f64 / self.fade_len as f64;
            y += t * (y_old - y);
            self.fade_left -= 1;
        }
        self.pos += 1;
        if self.pos == PART {
            self.end_of_partition();
        }
        y
    }

    fn end_of_partition(&mut self) {
        self.pos = 0;
        // Spectrum of [prev | cur] into the ring.
        for (w, v) in self.work.iter_mut().zip(&self.lin) {
            *w = C64::new(*v, 0.0);
        }
        if let Some(fft) = &self.fft {
            fft.forward(&mut self.work);
        }
        self.ring_head = (self.ring_head + 1) % self.ring_len;
        let slot = self.ring_head;
        self.fdl[slot * BINS..(slot + 1) * BINS].copy_from_slice(&self.work[..BINS]);
        self.lin.copy_within(PART.., 0);
        let mut t = std::mem::take(&mut self.tail_cur);
        self.compute_tail(true, &mut t);
        self.tail_cur = t;
        if self.fade_left > 0 {
            let mut t = std::mem::take(&mut self.tail_old);
            self.compute_tail(false, &mut t);
            self.tail_old = t;
        }
        // Flush denormals in the input history.
        for v in self.lin.iter_mut() {
            if v.abs() < 1e-30 {
                *v = 0.0;
            }
        }
    }
}
