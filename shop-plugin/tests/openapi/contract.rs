//! The contract: `schema/openapi.yaml` loaded, replies checked against it, and the
//! record of which (operation, status) pairs were seen.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use bytes::Bytes;
use jsonschema::Validator;
use serde_json::{json, Value};

use crate::support::{Http, Reply};

/// Documented answers no test here can cause for real.
const NOT_CAUSED: &[(&str, &str)] = &[
    ("POST /v1/payments", "503"),
    ("POST /v1/payments/{id}/cancel", "503"),
    ("POST /v1/checkout/payments/{id}/initialize", "503"),
    ("POST /v1/checkout/payments/{id}/answer", "503"),
    ("POST /v1/checkout/payments/{id}/tick", "503"),
    ("POST /v1/checkout/payments/{id}/stop", "503"),
    ("POST /v1/checkout/recoveries", "503"),
    ("POST /v1/checkout/recoveries/{id}", "503"),
];

/// A JSON pointer token (RFC 6901).
fn esc(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

pub struct Contract {
    doc: Value,
    validators: HashMap<String, Validator>,
    seen: BTreeSet<(String, String)>,
}

impl Contract {
    pub fn load() -> Contract {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema/openapi.yaml");
        let text = std::fs::read_to_string(&path).expect("schema/openapi.yaml");
        let doc: Value = serde_yaml::from_str(&text).expect("openapi.yaml is YAML");
        assert_eq!(doc["openapi"], "3.1.0");
        Contract {
            doc,
            validators: HashMap::new(),
            seen: BTreeSet::new(),
        }
    }

    /// The value at a pointer of the document.
    fn at(&self, pointer: &str) -> &Value {
        self.doc
            .pointer(pointer)
            .unwrap_or_else(|| panic!("openapi.yaml has nothing at {pointer}"))
    }

    /// Follows a `$ref` (within the document) if `pointer` holds one.
    fn deref(&self, pointer: String) -> String {
        match self.at(&pointer)["$ref"].as_str() {
            Some(r) => {
                let target = r.strip_prefix('#').expect("a local $ref").to_string();
                self.deref(target)
            }
            None => pointer,
        }
    }

    /// Validates `instance` against the schema at `pointer`: the whole document is the
    /// root, so `#/components/…` references resolve.
    pub fn validate(&mut self, pointer: &str, instance: &Value) -> Vec<String> {
        if !self.validators.contains_key(pointer) {
            let mut root = self.doc.clone();
            // A URI fragment: the braces of path templates are percent-encoded.
            let fragment = pointer.replace('{', "%7B").replace('}', "%7D");
            root["$ref"] = json!(format!("#{fragment}"));
            let v = jsonschema::draft202012::new(&root)
                .unwrap_or_else(|e| panic!("the schema at {pointer} does not compile: {e}"));
            self.validators.insert(pointer.to_string(), v);
        }
        self.validators[pointer]
            .iter_errors(instance)
            .map(|e| format!("{} at {}", e, e.instance_path))
            .collect()
    }

    /// One request to a documented operation; the reply is checked against the document.
    pub async fn call(
        &mut self,
        http: &Http,
        method: &str,
        template: &str,
        path: &str,
        body: Option<Bytes>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let op_key = format!("{method} {template}");
        let op_ptr = format!("/paths/{}/{}", esc(template), method.to_lowercase());
        assert!(
            self.doc.pointer(&op_ptr).is_some(),
            "undocumented operation {op_key}"
        );
        let bare = path.split('?').next().unwrap_or(path);
        let (a, b): (Vec<&str>, Vec<&str>) =
            (template.split('/').collect(), bare.split('/').collect());
        assert!(
            a.len() == b.len() && a.iter().zip(&b).all(|(t, p)| t == p || t.starts_with('{')),
            "{path} is not an instance of {template}"
        );
        let sent = body.clone().unwrap_or_default();
        let reply = http.send(method, path, sent.clone(), headers).await;
        let status = reply.status.to_string();
        let context = format!("{op_key} -> {status}: {}", reply.body);
        let resp_ptr = format!("{op_ptr}/responses/{status}");
        assert!(
            self.doc.pointer(&resp_ptr).is_some(),
            "undocumented status: {context}"
        );
        let resp_ptr = self.deref(resp_ptr);
        let resp = self.at(&resp_ptr).clone();
        match resp.get("content") {
            None => assert_eq!(reply.body, Value::Null, "no body documented: {context}"),
            Some(content) => {
                let ct = reply
                    .headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .to_string();
                let media = content
                    .get(&ct)
                    .unwrap_or_else(|| panic!("undocumented content type {ct:?}: {context}"));
                if ct == "application/json" {
                    let schema_ptr = format!("{resp_ptr}/content/{}/schema", esc(&ct));
                    let errors = self.validate(&schema_ptr, &reply.body);
                    assert!(errors.is_empty(), "{context}\n{}", errors.join("\n"));
                    if let Some(codes) = media.get("x-codes") {
                        let code = &reply.body["error"]["code"];
                        assert!(
                            codes.as_array().expect("x-codes").contains(code),
                            "code {code} is not among {codes}: {context}"
                        );
                    }
                } else {
                    assert!(reply.body.is_string(), "{context}");
                }
            }
        }
        if resp["headers"].get("Access-Control-Allow-Origin").is_some() {
            if let Some((_, o)) = headers.iter().find(|(k, _)| *k == "origin") {
                assert_eq!(
                    reply
                        .headers
                        .get("access-control-allow-origin")
                        .and_then(|v| v.to_str().ok()),
                    Some(*o),
                    "CORS: {context}"
                );
            }
        }
        // A request the server took must be one the document describes.
        if reply.status < 300 && !sent.is_empty() {
            let req_ptr = format!("{op_ptr}/requestBody/content/application~1json/schema");
            let req: Value = serde_json::from_slice(&sent).expect("a JSON request");
            let errors = self.validate(&req_ptr, &req);
            assert!(
                errors.is_empty(),
                "request of {op_key}: {req}\n{}",
                errors.join("\n")
            );
        }
        self.seen.insert((op_key, status));
        reply
    }

    /// Every documented answer was seen (but the allow-listed), and every allow-listed
    /// one is documented.
    pub fn assert_complete(&self) {
        let mut missing = Vec::new();
        for (path, item) in self.doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                let Some(responses) = op.get("responses").and_then(Value::as_object) else {
                    continue; // `parameters` of the path item
                };
                for status in responses.keys() {
                    let key = (format!("{} {path}", method.to_uppercase()), status.clone());
                    let allowed = NOT_CAUSED.iter().any(|(o, s)| *o == key.0 && *s == key.1);
                    if !self.seen.contains(&key) && !allowed {
                        missing.push(format!("{} {}", key.0, key.1));
                    }
                }
            }
        }
        assert!(
            missing.is_empty(),
            "documented but never seen: {missing:#?}"
        );
        for (op, status) in NOT_CAUSED {
            let (method, path) = op.split_once(' ').expect("METHOD path");
            let p = format!(
                "/paths/{}/{}/responses/{status}",
                esc(path),
                method.to_lowercase()
            );
            assert!(
                self.doc.pointer(&p).is_some(),
                "{op} {status} is not documented"
            );
        }
    }
}
