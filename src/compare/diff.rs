//! The first differing byte of two byte strings, and a diff of the region
//! around it that a person can read even when the module is one minified line.

use similar::TextDiff;

/// Bytes of context on each side of the first difference.
const WINDOW: usize = 160;
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

/// Line and column (1-based, columns in bytes) of a byte offset.
fn line_and_column(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
    (line, column)
}

/// A unified diff of the region around `offset` in `old` (rebuilt) and `new`
/// (deployed), tokenized so that a one-line bundle still reads as a few
/// short lines. `subject` names the module.
pub fn readable_diff(subject: &str, old: &[u8], new: &[u8], offset: usize) -> String {
    let start = offset.saturating_sub(WINDOW);
    let window = |bytes: &[u8]| {
        let end = (offset + WINDOW).min(bytes.len());
        let start = start.min(end);
        String::from_utf8_lossy(&bytes[start..end]).into_owned()
    };
    let (old_text, new_text) = (tokenize(&window(old)), tokenize(&window(new)));
    let (line, column) = line_and_column(old, offset);
    let diff = TextDiff::from_lines(&old_text, &new_text);
    let unified = diff
        .unified_diff()
        .context_radius(4)
        .header(
            &format!("rebuilt/{subject} (bytes {start}..)"),
            &format!("deployed/{subject} (bytes {start}..)"),
        )
        .to_string();
    format!(
        "first difference at byte {offset} (line {line}, column {column}); \
         one token per line, ⏎ marks a newline\n{unified}"
    )
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
    }
}
