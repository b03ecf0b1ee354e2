//! `report.html`: one self-contained file a reviewer opens in a browser, with
//! no network access (no scripts, fonts or images from anywhere): the
//! verdict, charts drawn from the measurements as inline SVG (time to
//! refusal per trial and vantage against the bound; each rate-limit
//! bucket's requests, allowed or refused, against its limit), a table per
//! area, the evidence behind each failure, and verify's module table and
//! diffs.
//!
//! `page` lays out the document, `charts` draws the charts from the
//! structured evidence, `svg` is the small SVG toolkit both use.

mod charts;
mod page;
mod svg;

pub use page::render;

/// The pieces of the page that other pages (the diff's) reuse: the style,
/// a status badge, escaping, one check's charts, and the count the
/// rate-limit chart draws.
pub(crate) mod parts {
    pub(crate) use super::charts::{check_charts, most_allowed_in_a_window};
    pub(crate) use super::page::{STYLE, badge};
    pub(crate) use super::svg::esc;
}
