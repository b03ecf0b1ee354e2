//! The script download (`content/v2`): `multipart/form-data`, one part per
//! module, the entry module named by the `cf-entrypoint` response header.

use bytes::Bytes;

use crate::compare::{Bundle, Module};

#[derive(Debug, thiserror::Error)]
pub enum MultipartError {
    #[error("the content type `{0}` is not multipart/form-data with a boundary")]
    NotMultipart(String),
    #[error("read part {index} (malformed or truncated body)")]
    Part {
        index: usize,
        #[source]
        source: multer::Error,
    },
    #[error("part {index} has no name")]
    Unnamed { index: usize },
    #[error("module `{0}` appears twice")]
    Duplicate(String),
    #[error("the download holds no module")]
    Empty,
    #[error("the `cf-entrypoint` header is missing")]
    NoEntrypoint,
    #[error("the entry module `{0}` is not among the parts")]
    UnknownEntrypoint(String),
}

/// Parses a script download into a bundle. `content_type` is the response's
/// `Content-Type`, `entrypoint` its `cf-entrypoint` header. A truncated or
/// malformed body is an error, never a partial bundle.
pub async fn parse(
    content_type: &str,
    entrypoint: Option<&str>,
    body: Bytes,
) -> Result<Bundle, MultipartError> {
    let boundary = multer::parse_boundary(content_type)
        .map_err(|_| MultipartError::NotMultipart(content_type.to_owned()))?;
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut modules: Vec<Module> = Vec::new();
    let mut index = 0;
    loop {
        let field = multipart
            .next_field()
            .await
            .map_err(|source| MultipartError::Part { index, source })?;
        let Some(field) = field else { break };
        let name = field
            .name()
            .or(field.file_name())
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .ok_or(MultipartError::Unnamed { index })?;
        let part_type = field.content_type().map(|m| m.to_string());
        let bytes = field
            .bytes()
            .await
            .map_err(|source| MultipartError::Part { index, source })?;
        if modules.iter().any(|m| m.name == name) {
            return Err(MultipartError::Duplicate(name));
        }
        modules.push(Module::new(name, part_type.as_deref(), bytes.to_vec()));
        index += 1;
    }
    if modules.is_empty() {
        return Err(MultipartError::Empty);
    }
    let entry = entrypoint.ok_or(MultipartError::NoEntrypoint)?;
    if !modules.iter().any(|m| m.name == entry) {
        return Err(MultipartError::UnknownEntrypoint(entry.to_owned()));
    }
    Ok(Bundle::new(Some(entry.to_owned()), modules))
}

/// Encodes a bundle the way the download serves it; returns the
/// `Content-Type` (with its boundary) and the body. The boundary is derived
/// from the content and checked not to occur in it.
pub fn encode(bundle: &Bundle) -> (String, Vec<u8>) {
    let mut seed = bundle.aggregate_sha256();
    let boundary = loop {
        let candidate = format!("flareproof-{}", &seed[..32]);
        let needle = candidate.as_bytes();
        let clash = bundle
            .modules()
            .iter()
            .any(|m| m.bytes.windows(needle.len()).any(|w| w == needle));
        if !clash {
            break candidate;
        }
        seed = crate::compare::sha256_hex(seed.as_bytes());
    };
    let mut body = Vec::new();
    for module in bundle.modules() {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        body.extend_from_slice(
            format!(
                "Content-Disposition: form-data; name=\"{0}\"; filename=\"{0}\"\r\n",
                module.name
            )
            .as_bytes(),
        );
        if let Some(ct) = &module.content_type {
            body.extend_from_slice(format!("Content-Type: {ct}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(&module.bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    fn sample() -> Bundle {
        Bundle::new(
            Some("worker.js".into()),
            vec![
                Module::new(
                    "worker.js",
                    Some("application/javascript+module"),
                    b"import x from './lib/x.mjs';\r\n--not-a-boundary\r\n".to_vec(),
                ),
                Module::new("lib/x.mjs", Some("application/javascript+module"), vec![]),
                Module::new(
                    "data.bin",
                    Some("application/octet-stream"),
                    vec![0, 255, 13, 10],
                ),
            ],
        )
    }

    #[test]
    fn round_trip() {
        let bundle = sample();
        let (ct, body) = encode(&bundle);
        let parsed = rt()
            .block_on(parse(&ct, Some("worker.js"), body.into()))
            .unwrap();
        assert_eq!(parsed, bundle);
    }

    #[test]
    fn truncated_or_headerless_downloads_are_errors() {
        let (ct, body) = encode(&sample());
        let rt = rt();
        for cut in [body.len() - 3, body.len() / 2, 10] {
            let err = rt
                .block_on(parse(
                    &ct,
                    Some("worker.js"),
                    Bytes::copy_from_slice(&body[..cut]),
                ))
                .unwrap_err();
            assert!(matches!(err, MultipartError::Part { .. }), "{cut}: {err:?}");
        }
        let err = rt
            .block_on(parse(&ct, None, body.clone().into()))
            .unwrap_err();
        assert!(matches!(err, MultipartError::NoEntrypoint));
        let err = rt
            .block_on(parse("application/json", Some("worker.js"), body.into()))
            .unwrap_err();
        assert!(matches!(err, MultipartError::NotMultipart(_)));
    }

    use proptest::prelude::*;

    /// A module name the download can carry: no quote, CR or LF.
    fn names() -> impl Strategy<Value = String> {
        "[A-Za-z0-9_./-]{1,24}"
    }

    fn bundles() -> impl Strategy<Value = Bundle> {
        proptest::collection::btree_map(
            names(),
            (
                proptest::option::of(prop_oneof![
                    Just("application/javascript+module"),
                    Just("text/plain"),
                    Just("application/wasm"),
                ]),
                proptest::collection::vec(any::<u8>(), 0..300),
            ),
            1..5,
        )
        .prop_map(|modules| {
            let entry = modules.keys().next().cloned();
            Bundle::new(
                entry,
                modules
                    .into_iter()
                    .map(|(name, (ct, bytes))| Module::new(name, ct, bytes))
                    .collect(),
            )
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever the API sends, the parser answers (a bundle or an
        /// error), never a panic.
        #[test]
        fn any_download_parses_or_is_an_error(
            content_type in "\\PC{0,60}",
            entry in proptest::option::of("\\PC{0,12}"),
            body in proptest::collection::vec(any::<u8>(), 0..600),
        ) {
            let _ = rt().block_on(parse(&content_type, entry.as_deref(), body.into()));
        }

        /// Every bundle round-trips; a truncated body is an error (or, cut
        /// in the epilogue, the same bundle), never a partial bundle; a
        /// flipped byte anywhere parses or fails without a panic.
        #[test]
        fn bundles_round_trip_and_truncation_is_never_partial(
            bundle in bundles(),
            cut in any::<prop::sample::Index>(),
            flip in any::<prop::sample::Index>(),
        ) {
            let (ct, body) = encode(&bundle);
            let entry = bundle.main_module.clone();
            let rt = rt();
            let parsed = rt.block_on(parse(&ct, entry.as_deref(), body.clone().into())).unwrap();
            prop_assert_eq!(&parsed, &bundle);
            let at = cut.index(body.len());
            if let Ok(partial) = rt.block_on(parse(&ct, entry.as_deref(), body[..at].to_vec().into())) {
                prop_assert_eq!(partial, bundle, "a body cut at {} of {} parsed", at, body.len());
            }
            let mut damaged = body;
            let at = flip.index(damaged.len());
            damaged[at] ^= 0x01;
            let _ = rt.block_on(parse(&ct, entry.as_deref(), damaged.into()));
        }
    }
}
