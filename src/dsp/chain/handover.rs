//! The auto-gain's hand-over from one section to the next (see "The
//! auto-gain in motion" in the module header): what the static
//! compensation cannot know (how much the tubes compress at this drive,
//! what the DI does to the spectrum the loudness is weighed in) is the slow
//! loudness correction's, and a change of section hands it over. The new
//! section's pre-roll is weighed against the track, K-weighted like the
//! auto-gain, and the new section comes in, and stays, at the correction
//! that matches it to the track. A restarting auto-gain learns the last
//! [`PRE_ROLL_S`](super::PRE_ROLL_S) first.

/// The auto-gain's hand-over to a new section: the factor on its
/// correction, `√(track / new)` from the K-weighted energies of the track
/// (in the present correction's units) and of the new section's output on
/// the same samples (1 while either is silent; within ±60 dB: a source
/// change moves the drive by up to 54 dB, and at the top of that range the
/// correction makes up for 40 dB of clipping).
pub(super) fn handover_ratio([old, new]: [f64; 2]) -> f64 {
    if old > 1e-30 && new > 1e-30 {
        (old / new).sqrt().clamp(1e-3, 1e3)
    } else {
        1.0
    }
}
