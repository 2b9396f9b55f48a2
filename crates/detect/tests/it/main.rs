//! Integration tests for `detect`: the shared detection vectors, the labelled corpus bars, properties over
//! arbitrary input, and the public API.

mod accuracy;
mod api;
mod properties;
mod vectors;
