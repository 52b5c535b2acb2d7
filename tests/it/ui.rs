//! The status page over real HTTP: its assets, and who may read `/ui/api/state`
//! (`[admin] ui_public`, public by default only on a loopback listener) while
//! `/v1` always needs the token.

use reqwest::blocking::Client;
use serde_json::Value;

use crate::harness::*;

/// 32 characters: the shortest token lbdns accepts.
pub const TOKEN: &str = "0123456789abcdef0123456789abcdef";

/// The example config with a token file, `extra` added to `[admin]`, and the
/// admin listener on `admin_ip`.
pub fn example_with_token(admin_ip: &str, extra: &str) -> Server {
    let config = example_config()
        .replace("listen = \"127.0.0.1:0\"", &format!("listen = \"{admin_ip}:0\"\n{extra}"))
        .replace("# token_file = \"admin.token\"", "token_file = \"admin.token\"");
    assert!(config.contains(&format!("{admin_ip}:0\"\n{extra}")), "the example's admin listener moved");
    Server::start(&config, &[("admin.token", &format!("{TOKEN}\n"))])
}

/// GET `path` on the admin listener (reached over loopback), with or without the token.
fn get(s: &Server, path: &str, token: Option<&str>) -> (u16, reqwest::header::HeaderMap, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let url = format!("http://127.0.0.1:{}{path}", s.admin.port());
    let mut req = Client::new().get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    (status, headers, r.text().unwrap())
}

fn pool_names(body: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(body).unwrap();
    v["pools"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_string()).collect()
}

#[test]
fn on_loopback_the_state_is_public_and_v1_still_needs_the_token() {
    let s = example_with_token("127.0.0.1", "");
    let (status, _, body) = get(&s, "/ui/api/state", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        pool_names(&body),
        ["www.example.test.", "api.example.test.", "db.example.test.", "geo.example.test.", "app.example.test."]
    );
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["zones"][0]["origin"], "example.test.");
    assert!(v["zones"][0]["serial"].as_u64().is_some(), "{body}");
    let www = &v["pools"][0];
    assert_eq!((www["policy"].as_str(), www["ttl"].as_u64()), (Some("round-robin"), Some(20)));
    assert_eq!(www["members"][0]["state"], "up", "a member of a pool without checks is up: {body}");
    let app = &v["pools"][4];
    let app_state = app["members"][0]["state"].as_str().unwrap();
    assert!(["unknown", "down"].contains(&app_state), "no backend: not probed yet or down: {body}");
    assert!(app["answers_per_second"].is_array());
    assert_eq!(app["members"][0]["votes"], Value::Null, "votes only with [cluster] health = \"quorum\": {body}");
    assert_eq!(
        (&www["all_down_since"], &v["reload"], &v["writes"]),
        (&Value::Null, &Value::Null, &serde_json::json!([]))
    );
    assert!(app["all_down_since"].is_string(), "no backend at all: the pool is all down from the start: {body}");
    assert_eq!(get(&s, "/v1/pools", None).0, 401);
    assert_eq!(get(&s, "/v1/pools", Some(TOKEN)).0, 200);
}

#[test]
fn with_ui_public_false_the_state_needs_the_token() {
    let s = example_with_token("127.0.0.1", "ui_public = false");
    let (status, headers, body) = get(&s, "/ui/api/state", None);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("bearer token"), "{body}");
    assert_eq!(headers["www-authenticate"], "Bearer");
    assert_eq!(get(&s, "/ui/api/state", Some("wrong-token-wrong-token-wrong-token")).0, 401);
    let (status, _, body) = get(&s, "/ui/api/state", Some(TOKEN));
    assert_eq!(status, 200, "{body}");
    assert_eq!(pool_names(&body).len(), 5);
    // The page itself holds no data and stays public.
    assert_eq!(get(&s, "/", None).0, 200);
}

#[test]
fn off_loopback_the_state_needs_the_token_unless_ui_public() {
    let s = example_with_token("0.0.0.0", "");
    assert_eq!(get(&s, "/ui/api/state", None).0, 401, "default is private off loopback");
    assert_eq!(get(&s, "/ui/api/state", Some(TOKEN)).0, 200);
    drop(s);
    let s = example_with_token("0.0.0.0", "ui_public = true");
    assert_eq!(get(&s, "/ui/api/state", None).0, 200);
    assert_eq!(get(&s, "/v1/zones", None).0, 401, "/v1 needs the token whatever ui_public says");
}

#[test]
fn the_page_and_its_assets_are_served_small_and_self_contained() {
    let s = example_with_token("127.0.0.1", "");
    let mut total = 0;
    for (path, kind) in [("/", "text/html"), ("/ui/app.js", "text/javascript"), ("/ui/style.css", "text/css")] {
        let (status, headers, body) = get(&s, path, None);
        assert_eq!(status, 200, "{path}");
        assert!(headers["content-type"].to_str().unwrap().starts_with(kind), "{path}: {headers:?}");
        assert!(headers["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));
        assert!(!body.contains("http://") && !body.contains("https://"), "{path} loads nothing from elsewhere");
        total += body.len();
    }
    assert!(total < 100 * 1024, "assets are {total} bytes");
    let (status, _, body) = get(&s, "/ui/nothing.js", None);
    assert_eq!((status, body.contains("\"error\"")), (404, true));
}

/// 500 pools of two members, every 50th with its first member drained.
pub fn five_hundred_pools() -> Server {
    let mut config = String::from(
        "[dns]\nlisten=[\"127.0.0.1:0\"]\n[admin]\nlisten=\"127.0.0.1:0\"\n\
         [[zone]]\norigin=\"a.test.\"\nfile=\"a.zone\"\n",
    );
    for i in 0..500 {
        let drained = if i % 50 == 7 { "\nenabled = false" } else { "" };
        config.push_str(&format!(
            "[[pool]]\nname=\"p{i:03}.a.test.\"\n[[pool.member]]\naddress=\"192.0.2.{}\"{drained}\n\
             [[pool.member]]\naddress=\"198.51.100.{}\"\n",
            i % 250 + 1,
            i % 250 + 1
        ));
    }
    Server::start(&config, &[("a.zone", &small_zone(""))])
}

/// GET `path` without a token, saying `Accept-Encoding: gzip` or not: the status,
/// the `Content-Encoding` and the body as sent.
fn get_encoded(s: &Server, path: &str, gzip: bool) -> (u16, Option<String>, Vec<u8>) {
    let url = format!("http://127.0.0.1:{}{path}", s.admin.port());
    let mut req = Client::new().get(url);
    if gzip {
        req = req.header("Accept-Encoding", "gzip");
    }
    let r = req.send().unwrap();
    let encoding = r.headers().get("content-encoding").map(|v| v.to_str().unwrap().to_string());
    (r.status().as_u16(), encoding, r.bytes().unwrap().to_vec())
}

#[test]
fn the_state_is_gzipped_for_a_client_that_accepts_it_and_plain_otherwise() {
    use std::io::Read;
    let s = five_hundred_pools();
    let (status, encoding, plain) = get_encoded(&s, "/ui/api/state", false);
    assert_eq!((status, encoding), (200, None));
    let v: Value = serde_json::from_slice(&plain).expect("plain JSON without Accept-Encoding");
    assert_eq!(v["pools"].as_array().unwrap().len(), 500);

    let (status, encoding, zipped) = get_encoded(&s, "/ui/api/state", true);
    assert_eq!((status, encoding.as_deref()), (200, Some("gzip")));
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(&zipped[..]).read_to_end(&mut text).expect("a gzip stream");
    let z: Value = serde_json::from_slice(&text).unwrap();
    assert_eq!(z["pools"].as_array().unwrap().len(), 500);
    assert!(zipped.len() < plain.len(), "gzip {} bytes, plain {}", zipped.len(), plain.len());
    eprintln!("/ui/api/state at 500 pools: {} bytes plain, {} gzipped", plain.len(), zipped.len());

    let (_, encoding, _) = get_encoded(&s, "/ui/app.js", true);
    assert_eq!(encoding.as_deref(), Some("gzip"), "the assets too");
}
