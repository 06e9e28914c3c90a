//! `tubeline`: the plugin as a standalone app (nice-plug's standalone
//! wrapper). Build with `cargo build --features standalone --bin tubeline`;
//! run with `--backend jack`, `--backend alsa`, or `--backend dummy` when
//! there is no audio device (`tubeline --help` lists every option: sample
//! rate, period size, input and output devices, MIDI).

fn main() {
    nice_plug::prelude::nice_export_standalone::<tubeline::Tubeline>();
}
