//! What the `cel` crate cannot do for a MutatingAdmissionPolicy, bridged: typed
//! object literals rewritten as map literals, CEL values back to JSON, and the
//! JSON patch the API server applies.

use kube::core::cel::cel;
use serde_json::{json, Value};

/// Rewrites typed object literals (`Object.spec{requester: x}`, `JSONPatch{op: ..}`)
/// into map literals (`{'requester': x}`): same fields, same JSON, evaluable by the
/// `cel` crate.
pub fn struct_literals_as_maps(expr: &str) -> String {
    #[derive(PartialEq)]
    enum Open {
        Struct,
        Other,
    }
    let chars: Vec<char> = expr.chars().collect();
    let mut out = String::new();
    let mut stack: Vec<Open> = Vec::new();
    let mut field_next = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' || c == '"' {
            // Copy a string literal through unchanged.
            let quote = c;
            out.push(c);
            i += 1;
            while i < chars.len() && chars[i] != quote {
                if chars[i] == '\\' {
                    out.push(chars[i]);
                    i += 1;
                }
                out.push(chars[i]);
                i += 1;
            }
            out.push(quote);
            i += 1;
            field_next = false;
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut j = i;
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            let next = chars.get(j).copied();
            if (word == "Object" || word.starts_with("Object.") || word == "JSONPatch") && next == Some('{') {
                // A typed literal: drop the type name, keep the braces.
                stack.push(Open::Struct);
                out.push('{');
                i = j + 1;
                field_next = true;
            } else if field_next && next == Some(':') {
                out.push_str(&format!("'{word}'"));
                field_next = false;
            } else {
                out.push_str(&word);
                field_next = false;
            }
            continue;
        }
        match c {
            '{' | '[' | '(' => stack.push(Open::Other),
            '}' | ']' | ')' => {
                stack.pop();
            }
            ',' => field_next = stack.last() == Some(&Open::Struct),
            _ => {}
        }
        if !c.is_whitespace() && c != ',' {
            field_next = false;
        }
        out.push(c);
        i += 1;
    }
    out
}

pub fn cel_to_json(v: &cel::Value) -> Value {
    use cel::objects::Key;
    match v {
        cel::Value::Null => Value::Null,
        cel::Value::Bool(b) => json!(b),
        cel::Value::Int(i) => json!(i),
        cel::Value::UInt(u) => json!(u),
        cel::Value::Float(f) => json!(f),
        cel::Value::String(s) => json!(s.as_str()),
        cel::Value::List(items) => Value::Array(items.iter().map(cel_to_json).collect()),
        cel::Value::Map(m) => Value::Object(
            m.map
                .iter()
                .map(|(k, v)| {
                    let key = match k {
                        Key::String(s) => s.to_string(),
                        other => panic!("non-string key {other:?}"),
                    };
                    (key, cel_to_json(v))
                })
                .collect(),
        ),
        other => panic!("unexpected CEL value {other:?}"),
    }
}

/// Applies RFC 6902 operations as the API server does for a `JSONPatch`
/// mutation. Only what the shipped policies use (`add`, `replace`) is modelled.
pub fn json_patch(target: &mut Value, ops: &Value) -> Result<(), String> {
    for op in ops.as_array().ok_or("a JSON patch is a list")? {
        let path = op["path"].as_str().ok_or("op without path")?;
        let mut keys: Vec<String> = path
            .split('/')
            .skip(1)
            .map(|k| k.replace("~1", "/").replace("~0", "~"))
            .collect();
        let last = keys.pop().ok_or("empty path")?;
        let mut parent = &mut *target;
        for key in &keys {
            parent = parent
                .get_mut(key.as_str())
                .ok_or_else(|| format!("{path}: no {key}"))?;
        }
        let parent = parent
            .as_object_mut()
            .ok_or_else(|| format!("{path}: parent is not an object"))?;
        match op["op"].as_str() {
            // `add` creates or replaces the member; `replace` needs it to exist.
            Some("add") => {
                parent.insert(last, op["value"].clone());
            }
            Some("replace") if parent.contains_key(&last) => {
                parent.insert(last, op["value"].clone());
            }
            other => return Err(format!("{path}: op {other:?} is not modelled")),
        }
    }
    Ok(())
}
