//! Importers: front ends that read another trust system, verify it on its own
//! terms, and write an ordinary warrant repository through the library
//! (issue #16). Nothing in the foreign dialect reaches warrant's verify path.

pub mod notary;
