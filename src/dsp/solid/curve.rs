//! The static curve of an op-amp stage at its rails ([`RailCurve`]): exactly
//! linear up to a knee, a parabolic knee into the output swing, flat beyond;
//! its antiderivative in closed form, and the first-order ADAA step over it
//! (derivation in the module header of `solid.rs`).

/// Where the knee starts, as a fraction of the output swing: the curve is
/// exactly the identity below it (a sine whose peak stays under it, up to
/// 0.92 dB under the clip level, comes out with no distortion at all).
pub(super) const KNEE_START: f64 = 0.9;

/// Below this step between two samples (volts at the curve's input) the
/// ADAA quotient would lose digits, and the curve at the mid-point of the
/// step is used instead. The two errors balance there: the quotient's
/// rounding is about 3·ulp(F)/Δ ≈ 1e-13/Δ V (F ≈ 160 V² at the knee), the
/// mid-point's error f''·Δ²/24 ≤ 0.016·Δ² V (|f''| = 1/w, w = 2.66 V);
/// both are under 1e-9 V (−200 dB re the swing) at Δ = 1e-4 V.
pub(super) const ADAA_MIN_STEP_VOLTS: f64 = 1e-4;

/// One op-amp stage's output against its ideal (unclipped) output, in volts:
/// `f(x) = x` for |x| ≤ a; in the knee a < |x| < b, with `t = (|x| − a)/w`,
/// `f = sgn(x)·(a + w·(t − t²/2))`; `f = sgn(x)·V` for |x| ≥ b.
/// V is the output swing, a = [`KNEE_START`]·V, w = 2(V − a), b = a + w.
/// f is odd, rises monotonically and is C¹: its slope `f' = 1 − t` falls
/// from 1 to 0 across the knee at the constant curvature −1/w, the least
/// curvature that turns the slope from 1 to 0 within a rise of V − a.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct RailCurve {
    /// Output swing V (the flat top), volts.
    swing: f64,
    /// Start of the knee a, volts.
    knee: f64,
    /// Width of the knee w = 2(V − a), volts.
    width: f64,
    /// End of the knee b = a + w (the input that reaches the swing), volts.
    limit: f64,
    /// The antiderivative at b: a²/2 + a·w + w²/3.
    big_f_limit: f64,
}

impl RailCurve {
    /// The curve of a stage whose output swings to ±`swing_volts`.
    pub(super) fn new(swing_volts: f64) -> Self {
        let knee = KNEE_START * swing_volts;
        let width = 2.0 * (swing_volts - knee);
        Self {
            swing: swing_volts,
            knee,
            width,
            limit: knee + width,
            big_f_limit: 0.5 * knee * knee + knee * width + width * width / 3.0,
        }
    }

    /// Where the knee starts (a), volts.
    pub(super) fn knee(&self) -> f64 {
        self.knee
    }

    /// The curve f(x).
    #[inline(always)]
    pub(super) fn value(&self, x: f64) -> f64 {
        let u = x.abs();
        let y = if u <= self.knee {
            u
        } else if u < self.limit {
            let t = (u - self.knee) / self.width;
            self.knee + self.width * t * (1.0 - 0.5 * t)
        } else {
            self.swing
        };
        y.copysign(x)
    }

    /// The antiderivative F(x) = ∫₀ˣ f (even): x²/2 below the knee;
    /// `a²/2 + a·w·t + w²·(t²/2 − t³/6)` in it; `F(b) + V·(|x| − b)`
    /// beyond.
    #[inline(always)]
    pub(super) fn antiderivative(&self, x: f64) -> f64 {
        let u = x.abs();
        if u <= self.knee {
            0.5 * u * u
        } else if u < self.limit {
            let (a, w) = (self.knee, self.width);
            let t = (u - a) / w;
            0.5 * a * a + w * (a * t + w * t * t * (0.5 - t / 6.0))
        } else {
            self.big_f_limit + self.swing * (u - self.limit)
        }
    }

    /// First-order ADAA from the previous input `x_prev` (whose
    /// antiderivative is `big_f_prev`) to `x`: the curve averaged over the
    /// straight line between them, `(F(x) − F(x_prev))/(x − x_prev)`.
    /// Returns it with F(x). Both ends below the knee: the exact average
    /// `(x + x_prev)/2` (what the quotient is there, without its rounding);
    /// both on the same flat top: ±V; a step of at most
    /// [`ADAA_MIN_STEP_VOLTS`]: the curve at the mid-point. The result is
    /// clamped to ±V, the range of any average of f, which also turns a NaN
    /// into a finite value.
    #[inline(always)]
    pub(super) fn adaa(&self, x: f64, x_prev: f64, big_f_prev: f64) -> (f64, f64) {
        let big_f = self.antiderivative(x);
        let (a, b) = (self.knee, self.limit);
        let y = if x.abs() <= a && x_prev.abs() <= a {
            0.5 * (x + x_prev)
        } else if (x >= b && x_prev >= b) || (x <= -b && x_prev <= -b) {
            self.swing.copysign(x)
        } else {
            let dx = x - x_prev;
            if dx.abs() <= ADAA_MIN_STEP_VOLTS {
                self.value(0.5 * (x + x_prev))
            } else {
                (big_f - big_f_prev) / dx
            }
        };
        (y.max(-self.swing).min(self.swing), big_f)
    }
}
