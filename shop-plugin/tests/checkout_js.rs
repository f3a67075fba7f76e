//! The checkout protocol (docs/checkout-protocol.md) and the script that speaks it: the
//! JSON Schema accepts every valid sample message and refuses every invalid one (the same
//! samples checkout.js's own validator is tested on), checkout.js's node tests pass, and
//! the plugin serves the script.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn json_file(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("read JSON file");
    serde_json::from_str(&text).expect("JSON")
}

#[test]
fn the_schema_accepts_the_valid_samples_and_refuses_the_invalid_ones() {
    let schema = json_file(&repo().join("schema/checkout-protocol.schema.json"));
    let samples = json_file(&repo().join("schema/checkout-protocol.examples.json"));
    let v = jsonschema::draft202012::new(&schema).expect("the schema compiles");
    let valid = samples["valid"].as_array().expect("valid samples");
    let invalid = samples["invalid"].as_array().expect("invalid samples");
    assert!(valid.len() >= 10 && invalid.len() >= 10);
    for m in valid {
        let errors: Vec<String> = v.iter_errors(m).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{m}: {errors:?}");
    }
    for case in invalid {
        assert!(
            !v.is_valid(&case["message"]),
            "accepted, but {}: {}",
            case["why"],
            case["message"]
        );
    }
    // Every message type of both directions has a valid sample.
    for (from, ty) in [
        ("page", "hello"),
        ("page", "request"),
        ("page", "stop"),
        ("extension", "ack"),
        ("extension", "progress"),
        ("extension", "success"),
        ("extension", "failure"),
    ] {
        assert!(
            valid.iter().any(|m| m["from"] == from && m["type"] == ty),
            "no sample of {from} {ty}"
        );
    }
}

#[test]
fn checkout_js_passes_its_node_tests() {
    let out = Command::new("node")
        .arg("--test")
        .arg(repo().join("shop-plugin/assets/checkout.test.mjs"))
        .output()
        .expect("running node (install Node.js 18 or later: apt-get install nodejs)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "node --test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("# fail 0"), "{stdout}");
}

#[tokio::test]
async fn the_plugin_serves_checkout_js() {
    let p = support::Plugin::start("checkout-js").await;
    let (status, body) = p.request("GET", "/v1/checkout.js", None, &[]).await;
    assert_eq!(status, 200);
    let text = body.as_str().expect("script text");
    assert_eq!(text, shop_plugin::CHECKOUT_JS);
    assert!(text.contains("\"purse-checkout\""));
}
