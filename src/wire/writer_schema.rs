//! Checks on a container's writer schema before apache-avro parses or decodes with it.

use super::schema::NAMESPACE;
use apache_avro::Schema;
use serde_json::Value as Json;

/// The name a writer schema declares for its record.
pub(crate) struct DeclaredName {
    /// In our namespace.
    pub(crate) ours: bool,
    /// Bare when ours, full otherwise.
    pub(crate) name: String,
}

/// The record name of a writer schema; `Err` describes a schema that is not a record.
pub(crate) fn record_name(json: &Json) -> Result<DeclaredName, String> {
    let Json::Object(object) = json else {
        return Err(format!("a {} schema", json_kind(json)));
    };
    let kind = object.get("type").and_then(Json::as_str);
    let name = object.get("name").and_then(Json::as_str);
    let (Some("record" | "error"), Some(name)) = (kind, name) else {
        return Err(format!("a {} schema", kind.unwrap_or("malformed")));
    };
    // A dotted name carries its namespace and overrides the "namespace" attribute.
    let (namespace, short) = match name.rsplit_once('.') {
        Some((namespace, short)) => (namespace, short),
        None => (
            object.get("namespace").and_then(Json::as_str).unwrap_or(""),
            name,
        ),
    };
    let ours = namespace == NAMESPACE;
    let name = if ours || namespace.is_empty() {
        short.to_owned()
    } else {
        format!("{namespace}.{short}")
    };
    // Foreign names only go into messages; keep a hostile one short.
    let name = if ours {
        name
    } else {
        name.chars().take(128).collect()
    };
    Ok(DeclaredName { ours, name })
}

fn json_kind(json: &Json) -> &'static str {
    match json {
        Json::Array(_) => "union",
        Json::String(_) => "primitive or named",
        _ => "malformed",
    }
}

/// Rejects names apache-avro would panic on (it `unwrap`s name parsing in places).
/// Default values are data, not schema, and are skipped.
pub(crate) fn vet_names(json: &Json) -> Result<(), String> {
    match json {
        Json::String(name) => check_fullname(name),
        Json::Array(items) => items.iter().try_for_each(vet_names),
        Json::Object(object) => {
            for (key, value) in object {
                match (key.as_str(), value) {
                    ("default", _) => {}
                    ("name" | "type", Json::String(name)) => check_fullname(name)?,
                    ("namespace", Json::String(ns)) if !ns.is_empty() => check_fullname(ns)?,
                    ("aliases", Json::Array(aliases)) => {
                        for alias in aliases {
                            match alias {
                                Json::String(alias) => check_fullname(alias)?,
                                _ => return Err("alias is not a string".into()),
                            }
                        }
                    }
                    (_, Json::Array(_) | Json::Object(_)) => vet_names(value)?,
                    _ => {}
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// `[A-Za-z_][A-Za-z0-9_]*` parts joined by dots.
fn check_fullname(name: &str) -> Result<(), String> {
    let ok = name.split('.').all(|part| {
        let mut chars = part.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    });
    if ok {
        Ok(())
    } else {
        let shown: String = name.chars().take(40).collect();
        Err(format!("invalid Avro name {shown:?}"))
    }
}

/// Rejects types the block check does not walk: references (possible recursion) and
/// the decimal and duration logical types. None of them can resolve to our records.
pub(crate) fn check_supported(schema: &Schema) -> Result<(), String> {
    match schema {
        Schema::Array(array) => check_supported(&array.items),
        Schema::Map(map) => check_supported(&map.types),
        Schema::Union(union) => union.variants().iter().try_for_each(check_supported),
        Schema::Record(record) => record
            .fields
            .iter()
            .try_for_each(|field| check_supported(&field.schema)),
        Schema::Ref { name } => Err(format!("reference to {}", name.fullname(None))),
        Schema::Decimal(_) | Schema::BigDecimal | Schema::Duration => Err(format!(
            "{:?} type",
            apache_avro::schema::SchemaKind::from(schema)
        )),
        _ => Ok(()),
    }
}
