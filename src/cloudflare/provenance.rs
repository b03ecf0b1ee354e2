//! Where a live version came from, parsed from the two version responses
//! `fetch_live` already reads (no request of its own): `metadata` of
//! `…/workers/scripts/{s}/versions/{id}`, and `source`, `annotations` and
//! `package_dependencies` of the beta `…/workers/workers/{s}/versions/{id}`.

use std::sync::Arc;

use serde_json::Value;

use super::error::ApiError;

/// One npm package the version was built with, as the beta versions API
/// reports it (`package_dependencies[]`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PackageDependency {
    pub name: String,
    /// The constraint written in package.json (`packageJsonVersion`).
    pub package_json_version: Option<String>,
    /// What the package manager installed (`installedVersion`).
    pub installed_version: String,
}

/// What the API says about a version's dependencies.
#[derive(Debug, Clone, PartialEq)]
pub enum Dependencies {
    /// `package_dependencies`, sorted by name. An empty list says the
    /// version bundles no npm package (a Worker without runtime
    /// dependencies): there is nothing to disagree with the lockfile.
    Reported(Vec<PackageDependency>),
    /// The beta answer has no `package_dependencies`.
    NotReported,
    /// The beta endpoint was not read (script download) or failed; why.
    Unavailable(String),
}

/// A version's provenance.
#[derive(Debug, Clone, PartialEq)]
pub struct Provenance {
    /// `metadata.source` (else the beta `source`); `None`: neither says.
    pub source: Option<String>,
    pub author_email: Option<String>,
    pub author_id: Option<String>,
    pub created_on: Option<String>,
    /// `annotations["workers/message"]` (beta endpoint).
    pub message: Option<String>,
    /// `annotations["workers/tag"]`.
    pub tag: Option<String>,
    /// `annotations["workers/triggered_by"]`.
    pub triggered_by: Option<String>,
    /// Whether the beta answer (and so the annotations) was read.
    pub annotations_read: bool,
    pub dependencies: Dependencies,
}

fn shape(url: &str, problem: impl Into<String>) -> ApiError {
    ApiError::Shape {
        url: url.to_owned(),
        problem: problem.into(),
    }
}

/// An optional string field: absent or null is `None`, anything but a
/// string is a shape error naming it.
fn opt_str(
    url: &str,
    parent: &Value,
    field: &str,
    shown: &str,
) -> Result<Option<String>, ApiError> {
    match parent.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(shape(url, format!("`{shown}` is not a string"))),
    }
}

/// An optional object field: absent or null is `None`.
fn opt_object<'a>(
    url: &str,
    parent: &'a Value,
    field: &str,
) -> Result<Option<&'a Value>, ApiError> {
    match parent.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Object(_)) => Ok(Some(v)),
        Some(_) => Err(shape(url, format!("`{field}` is not an object"))),
    }
}

fn dependencies(url: &str, beta: &Value) -> Result<Dependencies, ApiError> {
    let list = match beta.get("package_dependencies") {
        None | Some(Value::Null) => return Ok(Dependencies::NotReported),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(shape(url, "`package_dependencies` is not a list")),
    };
    let mut out = Vec::new();
    for (i, d) in list.iter().enumerate() {
        if !d.is_object() {
            return Err(shape(
                url,
                format!("`package_dependencies[{i}]` is not an object"),
            ));
        }
        let name = opt_str(url, d, "name", &format!("package_dependencies[{i}].name"))?
            .filter(|n| !n.is_empty())
            .ok_or_else(|| shape(url, format!("`package_dependencies[{i}]` has no `name`")))?;
        let installed_version = opt_str(
            url,
            d,
            "installedVersion",
            &format!("package_dependencies[{i}].installedVersion"),
        )?
        .ok_or_else(|| {
            shape(
                url,
                format!("`package_dependencies[{i}]` (`{name}`) has no `installedVersion`"),
            )
        })?;
        let package_json_version = opt_str(
            url,
            d,
            "packageJsonVersion",
            &format!("package_dependencies[{i}].packageJsonVersion"),
        )?;
        if out.iter().any(|x: &PackageDependency| x.name == name) {
            return Err(shape(
                url,
                format!("`package_dependencies` lists `{name}` twice"),
            ));
        }
        out.push(PackageDependency {
            name,
            package_json_version,
            installed_version,
        });
    }
    out.sort();
    Ok(Dependencies::Reported(out))
}

/// Parses the provenance of a version from the version detail answer
/// (`detail`: its URL and `result`) and the beta answer (`beta`: its URL and
/// `result`, or why it was not read).
pub fn parse_provenance(
    detail: (&str, &Value),
    beta: Result<(&str, &Value), String>,
) -> Result<Provenance, ApiError> {
    let (url, result) = detail;
    let metadata = opt_object(url, result, "metadata")?;
    let field = |name: &str| -> Result<Option<String>, ApiError> {
        match metadata {
            Some(m) => opt_str(url, m, name, &format!("metadata.{name}")),
            None => Ok(None),
        }
    };
    let mut provenance = Provenance {
        source: field("source")?,
        author_email: field("author_email")?,
        author_id: field("author_id")?,
        created_on: field("created_on")?,
        message: None,
        tag: None,
        triggered_by: None,
        annotations_read: false,
        dependencies: Dependencies::NotReported,
    };
    match beta {
        Err(why) => provenance.dependencies = Dependencies::Unavailable(why),
        Ok((url, beta)) => {
            let beta_source = opt_str(url, beta, "source", "source")?;
            if provenance.source.is_none() {
                provenance.source = beta_source;
            }
            if let Some(a) = opt_object(url, beta, "annotations")? {
                let get = |name: &str| opt_str(url, a, name, &format!("annotations.{name}"));
                provenance.message = get("workers/message")?;
                provenance.tag = get("workers/tag")?;
                provenance.triggered_by = get("workers/triggered_by")?;
            }
            provenance.annotations_read = true;
            provenance.dependencies = dependencies(url, beta)?;
        }
    }
    Ok(provenance)
}

/// [`parse_provenance`] over what `fetch_live` holds: a failed detail read
/// is the provenance's error too.
pub(super) fn provenance_of(
    detail: Result<(&str, &Value), &Arc<ApiError>>,
    beta: Result<(&str, &Value), String>,
) -> Result<Provenance, Arc<ApiError>> {
    match detail {
        Err(e) => Err(e.clone()),
        Ok(detail) => parse_provenance(detail, beta).map_err(Arc::new),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const U: &str = "https://api.test/versions/v1";
    const B: &str = "https://api.test/workers/versions/v1?include=modules";

    fn problem(e: ApiError) -> String {
        match e {
            ApiError::Shape { url, problem } => format!("{url}: {problem}"),
            other => panic!("not a shape error: {other}"),
        }
    }

    #[test]
    fn reads_the_documented_fields() {
        let detail = json!({"metadata": {"source": "quick_editor", "author_email": "a@b.example",
            "author_id": "id1", "created_on": "2026-11-20T09:14:01Z", "hasPreview": false}});
        let beta = json!({"source": "quick_editor", "annotations": {"workers/message": "hotfix",
            "workers/tag": "v2", "workers/triggered_by": "upload"},
            "package_dependencies": [
                {"name": "hono", "packageJsonVersion": "^4", "installedVersion": "4.13.19"},
                {"name": "better-auth", "packageJsonVersion": "1.7.25", "installedVersion": "1.7.25"}]});
        let p = parse_provenance((U, &detail), Ok((B, &beta))).unwrap();
        assert_eq!(p.source.as_deref(), Some("quick_editor"));
        assert_eq!(p.message.as_deref(), Some("hotfix"));
        assert_eq!(p.tag.as_deref(), Some("v2"));
        assert_eq!(p.triggered_by.as_deref(), Some("upload"));
        let Dependencies::Reported(d) = p.dependencies else {
            panic!("{:?}", p.dependencies)
        };
        assert_eq!(d[0].name, "better-auth");
        assert_eq!(d[1].installed_version, "4.13.19");
        assert_eq!(d[1].package_json_version.as_deref(), Some("^4"));
    }

    #[test]
    fn absent_fields_are_none_and_an_empty_list_reports_no_dependency() {
        let p = parse_provenance(
            (U, &json!({})),
            Ok((B, &json!({"package_dependencies": []}))),
        )
        .unwrap();
        assert_eq!(p.source, None);
        assert_eq!(p.dependencies, Dependencies::Reported(Vec::new()));
        let p = parse_provenance((U, &json!({})), Ok((B, &json!({})))).unwrap();
        assert_eq!(p.dependencies, Dependencies::NotReported);
        let p = parse_provenance((U, &json!({})), Err("download".into())).unwrap();
        assert_eq!(p.dependencies, Dependencies::Unavailable("download".into()));
        assert!(!p.annotations_read);
    }

    #[test]
    fn malformed_shapes_name_endpoint_and_field() {
        let cases = [
            (
                json!({"metadata": "x"}),
                json!({}),
                U,
                "`metadata` is not an object",
            ),
            (
                json!({"metadata": {"source": 3}}),
                json!({}),
                U,
                "`metadata.source`",
            ),
            (
                json!({}),
                json!({"annotations": []}),
                B,
                "`annotations` is not an object",
            ),
            (
                json!({}),
                json!({"annotations": {"workers/triggered_by": false}}),
                B,
                "`annotations.workers/triggered_by`",
            ),
            (
                json!({}),
                json!({"package_dependencies": {}}),
                B,
                "not a list",
            ),
            (
                json!({}),
                json!({"package_dependencies": [{"name": "hono"}]}),
                B,
                "(`hono`) has no `installedVersion`",
            ),
            (
                json!({}),
                json!({"package_dependencies": [{"installedVersion": "1"}]}),
                B,
                "`package_dependencies[0]` has no `name`",
            ),
            (
                json!({}),
                json!({"package_dependencies": [
                    {"name": "a", "installedVersion": "1"}, {"name": "a", "installedVersion": "2"}]}),
                B,
                "`a` twice",
            ),
        ];
        for (detail, beta, url, want) in cases {
            let got = problem(parse_provenance((U, &detail), Ok((B, &beta))).unwrap_err());
            assert!(got.starts_with(url), "{got}");
            assert!(got.contains(want), "{got} lacks {want}");
        }
    }
}
