//! The stage meters: display ballistics for every level the audio thread
//! publishes ([`Ballistics`], written once for all of them) and the LED
//! ladder each stage panel shows ([`led_meter`]).
//!
//! Levels come from [`ChainMeters`] (see `src/dsp/meters.rs` for the tap
//! points): one per stage boundary (chain input, DI out, mic input, preamp
//! out, across the headphone, chain output). A reading arrives about 25
//! times a second while the editor is open and audio runs.

use egui::{Color32, Pos2, Rect, Response, Sense, Ui, Vec2};

use super::widgets::{CLIP_COLOUR, OK_COLOUR, WARN_COLOUR};
use crate::meters::{ChainMeters, LevelReading};

/// A peak falls back by at most this factor per reading (−3.1 dB, ≈ 77 dB/s
/// at 25 readings a second).
const PEAK_FALL: f64 = 0.7;
/// Readings a held peak stays lit before it follows the falling peak
/// (≈ 1.5 s at 25 readings a second).
const HOLD_READINGS: u32 = 38;

/// The level taps, in chain order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tap {
    /// Chain input (after calibration, source and input trim).
    Input,
    /// After the DI box.
    DiOut,
    /// What arrives at the preamp's mic input.
    PreampIn,
    /// After the preamp's auto-gain and output level.
    PreampOut,
    /// Across the headphone.
    Headphone,
    /// Chain output, before the output trim.
    Output,
}

impl Tap {
    /// Every tap.
    pub const ALL: [Tap; 6] = [
        Tap::Input,
        Tap::DiOut,
        Tap::PreampIn,
        Tap::PreampOut,
        Tap::Headphone,
        Tap::Output,
    ];

    /// This tap's level in a reading.
    pub fn of(self, m: &ChainMeters) -> &LevelReading {
        match self {
            Tap::Input => &m.input,
            Tap::DiOut => &m.di_out,
            Tap::PreampIn => &m.preamp_in,
            Tap::PreampOut => &m.preamp_out,
            Tap::Headphone => &m.headphone,
            Tap::Output => &m.output,
        }
    }

    fn of_mut(self, m: &mut ChainMeters) -> &mut LevelReading {
        match self {
            Tap::Input => &mut m.input,
            Tap::DiOut => &mut m.di_out,
            Tap::PreampIn => &mut m.preamp_in,
            Tap::PreampOut => &mut m.preamp_out,
            Tap::Headphone => &mut m.headphone,
            Tap::Output => &mut m.output,
        }
    }
}

/// A held peak.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Hold {
    /// The held peak, volts.
    volts: f64,
    /// Readings left before it falls with the peak.
    left: u32,
}

/// Meter ballistics over every tap: the peak jumps up at once and falls by
/// at most [`PEAK_FALL`] per reading; the held peak stays for
/// [`HOLD_READINGS`] readings, then follows the falling peak; the rms shows
/// each new reading (it already averages the ~40 ms since the last one).
/// Everything else in the reading is shown as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ballistics {
    /// The smoothed reading the panels and the advice read.
    display: ChainMeters,
    /// Held peaks, in [`Tap::ALL`] order.
    holds: [Hold; 6],
}

impl Ballistics {
    /// Take a new reading.
    pub fn update(&mut self, new: &ChainMeters) {
        let prev = self.display;
        self.display = *new;
        for (tap, hold) in Tap::ALL.into_iter().zip(&mut self.holds) {
            let n = tap.of(new);
            let peak = n.peak_volts.max(PEAK_FALL * tap.of(&prev).peak_volts);
            tap.of_mut(&mut self.display).peak_volts = peak;
            if peak >= hold.volts {
                *hold = Hold {
                    volts: peak,
                    left: HOLD_READINGS,
                };
            } else if hold.left > 0 {
                hold.left -= 1;
            } else {
                hold.volts = peak;
            }
        }
    }

    /// The smoothed reading.
    pub fn display(&self) -> &ChainMeters {
        &self.display
    }

    /// The held peak at `tap`, volts.
    pub fn held_peak_volts(&self, tap: Tap) -> f64 {
        let i = Tap::ALL.iter().position(|&t| t == tap).unwrap_or(0);
        self.holds[i].volts
    }
}

/// An LED ladder's scale, in dB: one LED per [`LED_STEP_DB`], so the
/// yellow and red LEDs start exactly at even levels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LedScale {
    /// The lowest and highest level shown (multiples of [`LED_STEP_DB`]).
    pub range_db: (f64, f64),
    /// LEDs above here are yellow.
    pub warn_db: f64,
    /// LEDs above here are red.
    pub clip_db: f64,
    /// Levels printed under the ladder.
    pub marks_db: &'static [f64],
}

impl LedScale {
    /// dB re full scale (dBFS, or the headphone amp's rails): −60 … +6,
    /// yellow above −6, red above 0.
    pub const FULL_SCALE: LedScale = LedScale {
        range_db: (-60.0, 6.0),
        warn_db: -6.0,
        clip_db: 0.0,
        marks_db: &[-48.0, -36.0, -24.0, -12.0, -6.0, 0.0],
    };
    /// dB re the DI core's saturation: −40 … +6.
    pub const SATURATION: LedScale = LedScale {
        range_db: (-40.0, 6.0),
        warn_db: -6.0,
        clip_db: 0.0,
        marks_db: &[-30.0, -20.0, -10.0, -6.0, 0.0],
    };

    /// Number of LEDs.
    fn leds(&self) -> usize {
        ((self.range_db.1 - self.range_db.0) / LED_STEP_DB).round() as usize
    }

    /// The level where LED `i` starts: it lights above that.
    fn led_db(&self, i: usize) -> f64 {
        self.range_db.0 + LED_STEP_DB * i as f64
    }

    /// The highest LED a level lights (`None` at or below the lowest).
    fn led_index(&self, db: f64) -> Option<usize> {
        if db.is_nan() || db <= self.range_db.0 {
            return None;
        }
        let above = ((db - self.range_db.0) / LED_STEP_DB).ceil() as usize;
        Some(above.clamp(1, self.leds()) - 1)
    }
}

/// What an LED ladder shows, in dB on its scale.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LedLevels {
    /// LEDs are lit up to here.
    pub rms_db: f64,
    /// This LED is lit too.
    pub peak_db: f64,
    /// And this one (the held peak), if any.
    pub hold_db: Option<f64>,
}

/// Each LED covers this much.
pub const LED_STEP_DB: f64 = 2.0;
/// Height of an LED, points.
const LED_HEIGHT: f32 = 7.0;
/// Height of the printed scale under the LEDs.
const MARKS_HEIGHT: f32 = 10.0;

/// A horizontal LED ladder `width` points wide with its scale printed under
/// it: green, yellow above `warn_db`, red above `clip_db`; lit up to the rms
/// level, plus the peak's and the held peak's LEDs.
pub fn led_meter(ui: &mut Ui, width: f32, levels: LedLevels, scale: &LedScale) -> Response {
    let bezel_height = LED_HEIGHT + 4.0;
    let (rect, response) = ui.allocate_exact_size(
        Vec2::new(width, bezel_height + MARKS_HEIGHT),
        Sense::hover(),
    );
    if !ui.is_rect_visible(rect) {
        return response;
    }
    let painter = ui.painter();
    let bezel = Rect::from_min_size(rect.min, Vec2::new(width, bezel_height));
    painter.rect_filled(bezel, 2.0, Color32::from_rgb(0x10, 0x10, 0x12));
    let leds = scale.leds();
    let pitch = (width - 4.0) / leds as f32;
    let rms = scale.led_index(levels.rms_db);
    let singles =
        [Some(levels.peak_db), levels.hold_db].map(|db| db.and_then(|d| scale.led_index(d)));
    for i in 0..leds {
        let db = scale.led_db(i);
        let colour = if db >= scale.clip_db {
            CLIP_COLOUR
        } else if db >= scale.warn_db {
            WARN_COLOUR
        } else {
            OK_COLOUR
        };
        let on = rms.is_some_and(|r| i <= r) || singles.contains(&Some(i));
        let colour = if on {
            colour
        } else {
            colour.gamma_multiply(0.16)
        };
        let x = bezel.left() + 2.0 + pitch * i as f32;
        let led = Rect::from_min_max(
            Pos2::new(x + 0.5, bezel.top() + 2.0),
            Pos2::new(x + pitch - 0.5, bezel.bottom() - 2.0),
        );
        painter.rect_filled(led, 1.0, colour);
    }
    let (lo, hi) = scale.range_db;
    for &mark in scale.marks_db {
        let x = bezel.left() + 2.0 + (width - 4.0) * ((mark - lo) / (hi - lo)) as f32;
        painter.text(
            Pos2::new(x, bezel.bottom() + 1.0),
            egui::Align2::CENTER_TOP,
            format!("{mark:.0}"),
            egui::FontId::proportional(8.0),
            ui.visuals().weak_text_color(),
        );
    }
    response
}

/// Hover text of a stage meter.
pub const METER_HELP: &str = "LEDs light up to the rms level; the single LEDs above it are the peak (falling about 77 dB/s) and the peak held for 1.5 s. Yellow from −6, red from 0 on the scale printed under it.";

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(peak_volts: f64) -> ChainMeters {
        ChainMeters {
            preamp_out: LevelReading {
                peak_volts,
                rms_volts: peak_volts / 2.0,
            },
            samples: 1024,
            ..Default::default()
        }
    }

    #[test]
    fn peaks_jump_up_fall_back_slowly_and_the_hold_waits() {
        let mut b = Ballistics::default();
        b.update(&reading(1.0));
        assert_eq!(b.display().preamp_out.peak_volts, 1.0);
        b.update(&reading(0.0));
        assert_eq!(b.display().preamp_out.peak_volts, 0.7);
        assert_eq!(
            b.display().preamp_out.rms_volts,
            0.0,
            "rms shows the reading"
        );
        for _ in 0..HOLD_READINGS - 1 {
            b.update(&reading(0.0));
        }
        assert_eq!(b.held_peak_volts(Tap::PreampOut), 1.0, "still held");
        b.update(&reading(0.0));
        assert!(b.held_peak_volts(Tap::PreampOut) < 1e-5, "then it falls");
        // The other taps saw nothing.
        assert_eq!(b.held_peak_volts(Tap::Input), 0.0);
        b.update(&reading(2.0));
        assert_eq!(b.held_peak_volts(Tap::PreampOut), 2.0);
    }

    #[test]
    fn leds_light_above_their_start_and_red_means_over_0_dbfs() {
        let s = LedScale::FULL_SCALE;
        assert_eq!(s.leds(), 33);
        assert_eq!(s.led_index(-70.0), None);
        assert_eq!(s.led_index(-60.0), None);
        assert_eq!(s.led_index(f64::NEG_INFINITY), None);
        assert_eq!(s.led_index(f64::NAN), None);
        assert_eq!(s.led_index(-59.9), Some(0));
        assert_eq!(s.led_index(20.0), Some(32));
        // 0 dBFS lights the last yellow LED; anything over lights red.
        let zero = s.led_index(0.0).unwrap();
        assert!(s.led_db(zero) < s.clip_db && s.led_db(zero) >= s.warn_db);
        let over = s.led_index(0.1).unwrap();
        assert_eq!(s.led_db(over), s.clip_db);
        assert_eq!(LedScale::SATURATION.leds(), 23);
    }
}
