use super::ProcessSpec;
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quality { Live, High }
pub struct Oversampler { q: Quality, f: usize, sr: f64 }
impl Oversampler {
    pub fn new() -> Self { Self { q: Quality::Live, f: 1, sr: 48000.0 } }
    pub fn prepare(&mut self, spec: &ProcessSpec) { self.sr = spec.sample_rate; }
    pub fn configure(&mut self, q: Quality, f: usize) { self.q = q; self.f = f; }
    pub fn reset(&mut self) {}
    pub fn latency_for(q: Quality, f: usize, _sr: f64) -> usize { match q { Quality::Live => f, Quality::High => 4 * f } }
}
