//! The first differing byte of two byte strings, and a bounded diff of the
//! regions where they differ that a person can read even when the module is
//! one minified line: the first [`MAX_DIFF_REGIONS`] regions in full, then a
//! count of the rest (as diffoscope's `--max-diff-block-lines` bounds its
//! output), so a large bundle with many scattered differences still yields a
//! short diff in one linear pass.

use std::ops::Range;

use similar::TextDiff;

/// Bytes of context on each side of a differing region.
const WINDOW: usize = 160;
/// Differing regions shown in full; the rest are counted.
pub const MAX_DIFF_REGIONS: usize = 10;
/// Differences at most this far apart are one region (their context
/// windows would overlap).
const MERGE_GAP: usize = 2 * WINDOW;
/// The most bytes of one region shown; a longer region (a shifted tail, a
/// rewritten block) shows its start and says how long it is.
const MAX_REGION_SHOWN: usize = 1024;
/// The longest token put on a line of its own in the readable diff.
const MAX_TOKEN: usize = 24;

/// The offset of the first byte where `a` and `b` differ; when one is a
/// prefix of the other, the length of the shorter; `None` when equal.
pub fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    if a == b {
        return None;
    }
    // Compare in chunks first: modules are megabytes, differences are rare.
    const CHUNK: usize = 4096;
    let common = a.len().min(b.len());
    let mut start = 0;
    while start < common {
        let end = (start + CHUNK).min(common);
        if a[start..end] != b[start..end] {
            let i = a[start..end]
                .iter()
                .zip(&b[start..end])
                .position(|(x, y)| x != y)
                .expect("chunks differ");
            return Some(start + i);
        }
        start = end;
    }
    Some(common)
}

/// Splits text into short tokens, one per line: a token ends after
/// punctuation that separates statements or arguments, at whitespace, or
/// after [`MAX_TOKEN`] characters. Newlines inside the text are shown as `⏎`.
fn tokenize(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    let mut len = 0;
    for c in text.chars() {
        match c {
            '\n' => out.push('⏎'),
            '\r' => out.push('␍'),
            c => out.push(c),
        }
        len += 1;
        if matches!(
            c,
            ';' | ',' | '{' | '}' | '(' | ')' | '[' | ']' | ' ' | '\n'
        ) || len >= MAX_TOKEN
        {
            out.push('\n');
            len = 0;
        }
    }
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// Where `a` and `b` differ, compared position by position (a byte past
/// the end of the shorter differs): the first `keep` regions (differences
/// at most [`MERGE_GAP`] apart joined, each `start..end`) and how many
/// regions there are in all. One pass; memory independent of the lengths.
pub fn differing_regions(a: &[u8], b: &[u8], keep: usize) -> (Vec<Range<usize>>, usize) {
    const CHUNK: usize = 4096;
    let mut kept = Vec::new();
    let mut total = 0;
    let mut current: Option<Range<usize>> = None;
    let mut note = |at: usize, end: usize, current: &mut Option<Range<usize>>| match current {
        Some(r) if at <= r.end + MERGE_GAP => r.end = end,
        _ => {
            if let Some(done) = current.take() {
                if kept.len() < keep {
                    kept.push(done);
                }
                total += 1;
            }
            *current = Some(at..end);
        }
    };
    let common = a.len().min(b.len());
    let mut start = 0;
    while start < common {
        let end = (start + CHUNK).min(common);
        if a[start..end] != b[start..end] {
            for (i, (x, y)) in a[start..end].iter().zip(&b[start..end]).enumerate() {
                if x != y {
                    note(start + i, start + i + 1, &mut current);
                }
            }
        }
        start = end;
    }
    if a.len() != b.len() {
        note(common, a.len().max(b.len()), &mut current);
    }
    if let Some(done) = current {
        if kept.len() < keep {
            kept.push(done);
        }
        total += 1;
    }
    (kept, total)
}

/// Line and column (1-based, columns in bytes) of ascending offsets, in
/// one pass over `bytes`.
fn lines_and_columns(bytes: &[u8], offsets: &[usize]) -> Vec<(usize, usize)> {
    let (mut pos, mut line, mut line_start) = (0, 1, 0);
    offsets
        .iter()
        .map(|&offset| {
            let offset = offset.min(bytes.len()).max(pos);
            for (i, &b) in bytes[pos..offset].iter().enumerate() {
                if b == b'\n' {
                    line += 1;
                    line_start = pos + i + 1;
                }
            }
            pos = offset;
            (line, offset - line_start + 1)
        })
        .collect()
}

/// A tokenized unified diff of `old[start..]` and `new[start..]` up to
/// `end` in each (clamped to its length).
fn region_diff(subject: &str, old: &[u8], new: &[u8], start: usize, end: usize) -> String {
    let window = |bytes: &[u8]| {
        let end = end.min(bytes.len());
        let start = start.min(end);
        String::from_utf8_lossy(&bytes[start..end]).into_owned()
    };
    let (old_text, new_text) = (tokenize(&window(old)), tokenize(&window(new)));
    let diff = TextDiff::from_lines(&old_text, &new_text);
    diff.unified_diff()
        .context_radius(4)
        .header(
            &format!("rebuilt/{subject} (bytes {start}..)"),
            &format!("deployed/{subject} (bytes {start}..)"),
        )
        .to_string()
}

/// A bounded, readable diff of `old` (rebuilt) and `new` (deployed), whose
/// first difference is at `offset`: the first [`MAX_DIFF_REGIONS`]
/// differing regions each as a unified diff with [`WINDOW`] bytes of
/// context (at most [`MAX_REGION_SHOWN`] bytes of a long region),
/// tokenized so that a one-line bundle still reads as a few short lines,
/// then how many regions were not shown. `subject` names the module.
pub fn readable_diff(subject: &str, old: &[u8], new: &[u8], offset: usize) -> String {
    readable_diff_bounded(subject, old, new, offset, MAX_DIFF_REGIONS)
}

/// [`readable_diff`] showing at most `max_regions` regions in full.
pub fn readable_diff_bounded(
    subject: &str,
    old: &[u8],
    new: &[u8],
    offset: usize,
    max_regions: usize,
) -> String {
    let (mut regions, total) = differing_regions(old, new, max_regions);
    if total == 0 {
        // Equal inputs: the caller's offset is all there is to show.
        regions.push(offset..offset);
    }
    let mut at: Vec<usize> = vec![offset];
    at.extend(regions.iter().map(|r| r.start));
    at.sort_unstable();
    let places = lines_and_columns(old, &at);
    let place = |o: usize| places[at.iter().position(|&x| x == o).unwrap_or(0)];
    let (line, column) = place(offset);
    let mut out = format!(
        "first difference at byte {offset} (line {line}, column {column})\n\
         {total} differing region{} (bytes compared by position), {} in full; \
         one token per line, ⏎ marks a newline\n",
        if total == 1 { "" } else { "s" },
        if total > regions.len() {
            format!("the first {}", regions.len())
        } else {
            "all".to_owned()
        }
    );
    for (i, r) in regions.iter().enumerate() {
        let (line, column) = place(r.start);
        let shown_end = r.end.min(r.start + MAX_REGION_SHOWN);
        let long = if shown_end < r.end {
            format!(", its first {MAX_REGION_SHOWN} shown")
        } else {
            String::new()
        };
        out.push_str(&format!(
            "region {} of {total}: bytes {}..{} ({} bytes{long}), line {line}, column {column}\n",
            i + 1,
            r.start,
            r.end,
            r.end - r.start
        ));
        out.push_str(&region_diff(
            subject,
            old,
            new,
            r.start.saturating_sub(WINDOW),
            shown_end + WINDOW,
        ));
    }
    if total > regions.len() {
        out.push_str(&format!(
            "… and {} more differing region{} not shown (the first {} are)\n",
            total - regions.len(),
            if total - regions.len() == 1 { "" } else { "s" },
            regions.len()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_difference_finds_changes_prefixes_and_equality() {
        assert_eq!(first_difference(b"abc", b"abc"), None);
        assert_eq!(first_difference(b"abc", b"abd"), Some(2));
        assert_eq!(first_difference(b"abc", b"abcd"), Some(3));
        assert_eq!(first_difference(b"", b"x"), Some(0));
        let mut big = vec![b'x'; 10_000];
        let orig = big.clone();
        big[9_001] = b'y';
        assert_eq!(first_difference(&orig, &big), Some(9_001));
    }

    #[test]
    fn the_diff_of_a_minified_line_is_short_lines_around_the_change() {
        let old = "function a(){return fetch(x,{method:\"GET\"})};".repeat(40);
        let mut new = old.clone().into_bytes();
        let at = 1000 + old[1000..].find("GET").unwrap();
        new[at..at + 3].copy_from_slice(b"PUT");
        let text = readable_diff("worker.js", old.as_bytes(), &new, at);
        assert!(
            text.contains(&format!("first difference at byte {at}")),
            "{text}"
        );
        assert!(
            text.contains("-{method:\"GET\"")
                || text
                    .lines()
                    .any(|l| l.starts_with('-') && l.contains("GET")),
            "{text}"
        );
        assert!(
            text.lines()
                .any(|l| l.starts_with('+') && l.contains("PUT")),
            "{text}"
        );
        assert!(text.lines().all(|l| l.chars().count() < 120), "{text}");
    }

    /// A body of `len` bytes of minified-looking text with a one-byte
    /// change at each of `at`.
    fn scattered(len: usize, at: &[usize]) -> (Vec<u8>, Vec<u8>) {
        let old: Vec<u8> = "function a(b){return b+1};"
            .bytes()
            .cycle()
            .take(len)
            .collect();
        let mut new = old.clone();
        for &i in at {
            new[i] = if new[i] == b'#' { b'%' } else { b'#' };
        }
        (old, new)
    }

    #[test]
    fn the_first_n_regions_are_shown_in_full_and_the_rest_counted() {
        // 25 one-byte changes 10 000 bytes apart: 25 regions.
        let at: Vec<usize> = (0..25).map(|i| 5_000 + i * 10_000).collect();
        let (old, new) = scattered(260_000, &at);
        let (kept, total) = differing_regions(&old, &new, 10);
        assert_eq!(total, 25);
        assert_eq!(kept, at[..10].iter().map(|&i| i..i + 1).collect::<Vec<_>>());
        let text = readable_diff("worker.js", &old, &new, at[0]);
        assert!(
            text.starts_with(
                "first difference at byte 5000 (line 1, column 5001)\n25 differing regions"
            ),
            "{text}"
        );
        for (i, &offset) in at[..10].iter().enumerate() {
            let header = format!("region {} of 25: bytes {offset}..{}", i + 1, offset + 1);
            assert!(text.contains(&header), "{header} missing: {text}");
        }
        assert!(!text.contains("region 11 of 25"), "{text}");
        assert!(
            text.contains("… and 15 more differing regions not shown (the first 10 are)"),
            "{text}"
        );
        // Every shown region has its change as a `+` line.
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with('+') && l.contains('#'))
                .count(),
            10,
            "{text}"
        );
        // Changes closer than two windows are one region; an appended tail
        // is one more.
        let (old, mut new) = scattered(5_000, &[100, 300, 4_000]);
        new.extend_from_slice(b"tail");
        let (kept, total) = differing_regions(&old, &new, 10);
        assert_eq!(kept, vec![100..301, 4_000..4_001, 5_000..5_004]);
        assert_eq!(total, 3);
        let text = readable_diff("w.js", &old, &new, 100);
        assert!(
            text.contains("3 differing regions (bytes compared by position), all in full"),
            "{text}"
        );
        assert!(!text.contains("more differing"), "{text}");
    }

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// The first difference agrees with a byte-by-byte scan, and the
        /// readable diff of any two byte strings (invalid UTF-8 cut at the
        /// window's edges included) is produced without a panic.
        #[test]
        fn any_two_modules_diff_without_panic(
            a in proptest::collection::vec(any::<u8>(), 0..9000),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
            tail in proptest::collection::vec(any::<u8>(), 0..4),
            subject in "\\PC{0,20}",
        ) {
            let mut b = a.clone();
            for (i, byte) in edits {
                if !b.is_empty() {
                    let at = i.index(b.len());
                    b[at] = byte;
                }
            }
            b.extend(tail);
            let naive = a.iter().zip(&b).position(|(x, y)| x != y)
                .or_else(|| (a.len() != b.len()).then(|| a.len().min(b.len())));
            prop_assert_eq!(first_difference(&a, &b), naive);
            if let Some(at) = naive {
                let text = readable_diff(&subject, &a, &b, at);
                let want = format!("first difference at byte {at}");
                prop_assert!(text.contains(&want));
            }
        }

        /// For any inputs and any bound: at most `max` regions are shown,
        /// each in a bounded number of bytes, the count of regions is that
        /// of a naive scan, and shown + counted = all.
        #[test]
        fn the_diff_is_bounded_for_any_inputs(
            a in proptest::collection::vec(prop::sample::select(b"ab;{ \n".to_vec()), 0..6000),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..40),
            tail in proptest::collection::vec(any::<u8>(), 0..3),
            cut in 0usize..3,
            max in 0usize..6,
        ) {
            let mut b = a.clone();
            for (i, byte) in edits {
                if !b.is_empty() {
                    let at = i.index(b.len());
                    b[at] = byte;
                }
            }
            b.truncate(b.len().saturating_sub(cut));
            b.extend(tail);
            // Naive: every differing position, joined when at most
            // MERGE_GAP apart.
            let longest = a.len().max(b.len());
            let differs: Vec<usize> = (0..longest).filter(|&i| a.get(i) != b.get(i)).collect();
            let mut naive: Vec<Range<usize>> = Vec::new();
            for i in differs {
                match naive.last_mut() {
                    Some(r) if i <= r.end + MERGE_GAP => r.end = i + 1,
                    _ => naive.push(i..i + 1),
                }
            }
            let (kept, total) = differing_regions(&a, &b, max);
            prop_assert_eq!(total, naive.len());
            prop_assert_eq!(&kept[..], &naive[..max.min(naive.len())]);
            if let Some(first) = naive.first() {
                let text = readable_diff_bounded("m", &a, &b, first.start, max);
                let shown = text.lines().filter(|l| l.starts_with("region ")).count();
                prop_assert_eq!(shown, max.min(total));
                if total > max {
                    let counted = format!("… and {} more differing region", total - max);
                    prop_assert!(text.contains(&counted), "{}", text);
                }
                // Each region's diff covers at most MAX_REGION_SHOWN + 2 ×
                // WINDOW bytes of each side, tokenized (≤ 2 bytes a char
                // more, and a newline a token), plus headers.
                let per_region = 4 * 3 * (MAX_REGION_SHOWN + 2 * WINDOW) + 400;
                prop_assert!(text.len() <= 400 + max.min(total) * per_region, "{} bytes", text.len());
            }
        }
    }
}
