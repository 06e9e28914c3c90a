//! Measured headphone curves in the plugin: the CSV is read, parsed and
//! turned into a filter off the audio thread; the filters reach the audio
//! thread through a lock-free queue, and the ones they displace travel back
//! through a second queue to be freed off the audio thread.

use rtrb::{Consumer, Producer, RingBuffer};

use crate::dsp::chain::Chain;
use crate::dsp::headphone::{design_custom, parse_impedance_csv, CustomFilter};

/// One filter per channel, designed together.
pub struct FilterSet {
    /// The filters, by channel.
    filters: Vec<CustomFilter>,
}

/// The background side: designs filters and sends them.
pub struct CurveSender {
    /// New filters to the audio thread.
    to_audio: Producer<FilterSet>,
    /// Displaced filters back from the audio thread, dropped here.
    trash: Consumer<FilterSet>,
}

/// The audio side: installs what arrives, sends back what it replaced.
pub struct CurveReceiver {
    /// New filters from the background.
    from_background: Consumer<FilterSet>,
    /// Displaced filters back to the background.
    trash: Producer<FilterSet>,
}

/// A pair of connected ends.
pub fn curve_channel() -> (CurveSender, CurveReceiver) {
    let (to_audio, from_background) = RingBuffer::new(4);
    let (trash_tx, trash_rx) = RingBuffer::new(8);
    (
        CurveSender {
            to_audio,
            trash: trash_rx,
        },
        CurveReceiver {
            from_background,
            trash: trash_tx,
        },
    )
}

impl CurveSender {
    /// Read, parse and design the curve at `path` for `channels` channels.
    /// On an error (the message names the file, and the line for a malformed
    /// CSV) nothing is sent, so the filter in use stays.
    pub fn load(
        &mut self,
        path: &str,
        zo_ohms: f64,
        sample_rate: f64,
        channels: usize,
    ) -> Result<(), String> {
        // Free what the audio thread sent back.
        while self.trash.pop().is_ok() {}
        if path.is_empty() {
            return Err("no impedance curve chosen".to_string());
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read impedance curve {path}: {e}"))?;
        let curve = parse_impedance_csv(&text).map_err(|e| format!("{path}: {e}"))?;
        let filter = design_custom(&curve, zo_ohms, sample_rate);
        let set = FilterSet {
            filters: vec![filter; channels],
        };
        self.to_audio
            .push(set)
            .map_err(|_| "the audio thread has not taken the previous curve yet".to_string())
    }
}

impl CurveReceiver {
    /// Install any newly designed filters into `chain`. Never allocates or
    /// frees: the displaced filters go back to the background. Returns
    /// whether anything was installed.
    pub fn install(&mut self, chain: &mut Chain) -> bool {
        let mut installed = false;
        while let Ok(mut set) = self.from_background.pop() {
            for (channel, slot) in set.filters.iter_mut().enumerate() {
                let new = std::mem::take(slot);
                if let Some(old) = chain.swap_headphone_custom(channel, new) {
                    *slot = old;
                }
            }
            // If the trash queue is full the set is dropped here; with a
            // capacity of 8 against 4 in flight this cannot happen.
            let _ = self.trash.push(set);
            installed = true;
        }
        installed
    }
}
