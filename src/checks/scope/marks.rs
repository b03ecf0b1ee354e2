//! Whose data an answer holds, judged by value: another owner's rows are
//! found wherever the answer puts them (any key, any nesting), by the owner
//! they name under any owner key and by values learned from that owner's own
//! answers, not only under `rows`/`posts` with an `author_id`.
//!
//! What counts, so that the caller's own data and common values never do:
//! - a row: an object that names an owner (see [`OWNER_KEYS`]) and is an
//!   element of an array or has an `id` (a request echoed back, such as
//!   `{"author_id": B}`, is neither);
//! - a distinctive value alone (at least [`DISTINCTIVE_LEN`] characters: the
//!   other user's id, their rows' ids such as UUIDs), as or inside a JSON
//!   string, or equal to a JSON number, unless the request itself carried
//!   it ([`Marks::without`]);
//! - a row's id and title together in one object, whatever their keys and
//!   however short (`7` and `"b's"` alone are too common to mean anything).

use serde_json::Value;

/// The keys a row may name its owner under (`owner` may also hold an object
/// with an `id`).
pub(super) const OWNER_KEYS: [&str; 8] = [
    "author_id",
    "authorId",
    "user_id",
    "userId",
    "owner_id",
    "ownerId",
    "owner",
    "author",
];

/// The shortest value that identifies its owner alone.
pub(super) const DISTINCTIVE_LEN: usize = 8;

/// Findings listed in one problem at most (the rest are counted).
const SHOWN: usize = 4;

/// A scalar as text: a string as it is, a number in its JSON form.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn distinctive(value: &str) -> bool {
    value.chars().count() >= DISTINCTIVE_LEN
}

/// The owner a row names, under the first owner key it has.
pub(super) fn owner_of(row: &Value) -> Option<String> {
    let row = row.as_object()?;
    OWNER_KEYS.iter().find_map(|key| {
        let value = row.get(*key)?;
        text(value).or_else(|| value.get("id").and_then(text))
    })
}

/// Calls `visit(path, value, in_array)` on every value of `body`.
fn walk<'v>(body: &'v Value, visit: &mut impl FnMut(&str, &'v Value, bool)) {
    fn go<'v>(
        path: &str,
        value: &'v Value,
        in_array: bool,
        visit: &mut impl FnMut(&str, &'v Value, bool),
    ) {
        visit(path, value, in_array);
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    let path = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    go(&path, child, false, visit);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    go(&format!("{path}[{i}]"), child, true, visit);
                }
            }
            _ => {}
        }
    }
    // serde_json refuses documents nested deeper than 128, so this recursion
    // is bounded whatever the target sends.
    go("", body, false, visit);
}

fn place(path: &str) -> String {
    if path.is_empty() {
        "the body".to_owned()
    } else {
        path.to_owned()
    }
}

/// Every row in `body` (see the module doc) and the owner it names, with
/// where it is.
pub(super) fn owned_rows(body: &Value) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    walk(body, &mut |path, value, in_array| {
        if (in_array || value.get("id").is_some())
            && let Some(owner) = owner_of(value)
        {
            rows.push((place(path), owner));
        }
    });
    rows
}

/// The rows in `body` that name an owner other than `owner`, described.
pub(super) fn rows_not_of(body: &Value, owner: &str) -> Vec<String> {
    owned_rows(body)
        .into_iter()
        .filter(|(_, o)| o != owner)
        .map(|(path, o)| format!("{path} is a row of owner {o:?}"))
        .collect()
}

/// One problem from findings: the first few and how many more.
pub(super) fn listed(findings: &[String]) -> String {
    let mut shown = findings[..findings.len().min(SHOWN)].join(", ");
    if findings.len() > SHOWN {
        shown.push_str(&format!(" and {} more", findings.len() - SHOWN));
    }
    shown
}

/// One owner's data as a leak of it would show: who they are, and values of
/// their rows learned from answers that were theirs.
#[derive(Debug, Clone, Default)]
pub(super) struct Marks {
    /// (owner id, whose): a row naming it is theirs.
    owners: Vec<(String, String)>,
    /// (value, what it is): distinctive enough to be theirs anywhere.
    values: Vec<(String, String)>,
    /// (id, title, whose): an object holding both is that row.
    rows: Vec<(String, String, String)>,
}

impl Marks {
    /// `whose` ("B's") data, owner `id`.
    pub(super) fn of(whose: &str, id: &str) -> Marks {
        let mut marks = Marks {
            owners: vec![(id.to_owned(), whose.to_owned())],
            ..Marks::default()
        };
        if distinctive(id) {
            marks
                .values
                .push((id.to_owned(), format!("{whose} user id")));
        }
        marks
    }

    /// Adds the values of `rows`, rows of this owner.
    pub(super) fn with_rows(mut self, rows: &[Value]) -> Marks {
        let whose = self
            .owners
            .first()
            .map(|(_, w)| w.clone())
            .unwrap_or_default();
        for row in rows {
            let id = row.get("id").and_then(text);
            let title = row.get("title").and_then(text);
            if let Some(id) = &id
                && distinctive(id)
            {
                self.values
                    .push((id.clone(), format!("the id of {whose} row {id}")));
            }
            if let (Some(id), Some(title)) = (id, title)
                && !title.is_empty()
            {
                self.rows.push((id, title, whose.clone()));
            }
        }
        self
    }

    /// The same, less the distinctive values the request itself carried:
    /// an answer that echoes a request shows nothing of anyone's data.
    pub(super) fn without(&self, sent: &[&str]) -> Marks {
        let mut marks = self.clone();
        marks.values.retain(|(v, _)| !sent.contains(&v.as_str()));
        marks
    }

    /// Both owners' marks.
    pub(super) fn and(&self, other: &Marks) -> Marks {
        let mut marks = self.clone();
        marks.owners.extend(other.owners.iter().cloned());
        marks.values.extend(other.values.iter().cloned());
        marks.rows.extend(other.rows.iter().cloned());
        marks
    }

    /// Where an answer's `body` holds this owner's data, described; empty
    /// when it holds none. A body that is not JSON is searched for the
    /// distinctive values only.
    pub(super) fn found_in(&self, body: &[u8]) -> Vec<String> {
        let mut found = Vec::new();
        let Ok(body) = serde_json::from_slice::<Value>(body) else {
            let raw = String::from_utf8_lossy(body);
            for (value, what) in &self.values {
                if raw.contains(value.as_str()) {
                    found.push(format!("the body holds {what}"));
                }
            }
            return found;
        };
        walk(&body, &mut |path, value, in_array| match value {
            Value::String(s) => {
                for (mark, what) in &self.values {
                    if s.contains(mark.as_str()) {
                        found.push(format!("{} holds {what}", place(path)));
                    }
                }
            }
            Value::Number(n) => {
                let n = n.to_string();
                for (mark, what) in &self.values {
                    if n == *mark {
                        found.push(format!("{} holds {what}", place(path)));
                    }
                }
            }
            Value::Object(map) => {
                let held: Vec<String> = map.values().filter_map(text).collect();
                for (id, title, whose) in &self.rows {
                    if held.contains(id) && held.contains(title) {
                        found.push(format!("{} is {whose} row {id}", place(path)));
                    }
                }
                if (in_array || map.contains_key("id"))
                    && let Some(owner) = owner_of(value)
                    && let Some((_, whose)) = self.owners.iter().find(|(id, _)| *id == owner)
                {
                    found.push(format!(
                        "{} is a row owned by {}",
                        place(path),
                        whose.trim_end_matches("'s")
                    ));
                }
            }
            _ => {}
        });
        found.dedup();
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn observed(body: Value) -> Vec<u8> {
        body.to_string().into_bytes()
    }

    fn b() -> Marks {
        Marks::of("B's", "b").with_rows(&[json!({ "id": 7, "title": "b's diary" })])
    }

    #[test]
    fn another_owners_rows_are_found_under_any_key_at_any_depth() {
        let found = b().found_in(&observed(json!({
            "posts": [],
            "data": { "items": [{ "id": 7, "title": "b's diary" }] },
            "extra": [{ "id": 1, "owner": { "id": "b" } }],
        })));
        assert!(
            found
                .iter()
                .any(|f| f.starts_with("data.items[0] is B's row 7")),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|f| f.starts_with("extra[0] is a row owned by B")),
            "{found:?}"
        );
    }

    #[test]
    fn common_values_and_echoes_are_not_a_leak() {
        // 7 alone, the title alone under another id, `b` echoed back.
        let found = b().found_in(&observed(json!({
            "count": 7,
            "posts": [{ "id": 3, "title": "b's diary", "author_id": "a" }],
            "query": { "author_id": "b" },
            "name": "b",
        })));
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn distinctive_values_count_alone_unless_the_request_sent_them() {
        let id = "u_8f3a9c2e1b7d";
        let post = "2b1f6c1e-0d6e-4e0a-9a51-6f7b1c2d3e4f";
        let marks = Marks::of("B's", id).with_rows(&[json!({ "id": post, "title": "t" })]);
        let answer = observed(json!({ "note": format!("by {id}"), "ref": post }));
        assert_eq!(marks.found_in(&answer).len(), 2);
        assert_eq!(marks.without(&[id, post]).found_in(&answer).len(), 0);
        // A numeric id is compared with numbers.
        let marks = Marks::of("B's", "12345678");
        assert_eq!(marks.found_in(&observed(json!({ "x": 12345678 }))).len(), 1);
    }

    #[test]
    fn owners_are_read_under_any_owner_key() {
        assert_eq!(owner_of(&json!({ "user_id": "b" })).as_deref(), Some("b"));
        assert_eq!(
            owner_of(&json!({ "owner": { "id": 5 } })).as_deref(),
            Some("5")
        );
        assert_eq!(owner_of(&json!({ "title": "x" })), None);
        let rows = rows_not_of(
            &json!({ "rows": [{ "userId": "a" }, { "userId": "b" }] }),
            "b",
        );
        assert_eq!(rows, ["rows[0] is a row of owner \"a\""]);
    }

    proptest::proptest! {
        /// Any JSON a target sends is judged without a panic.
        #[test]
        fn any_body_is_judged_without_panicking(body in "\\PC{0,200}") {
            let _ = b().found_in(body.as_bytes());
            if let Ok(v) = serde_json::from_str::<Value>(&body) {
                let _ = rows_not_of(&v, "a");
            }
        }
    }
}
