//! The workspace's root package: the tour (`cargo run --release`, in
//! `main.rs`) and the figures of the book (`cargo run --release --
//! figures`, the [`figures`] module here, a library so that its tests and
//! the book's can reach it).

pub mod figures;
