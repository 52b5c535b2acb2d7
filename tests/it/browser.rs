//! The status page in a real browser: Debian's chromium driven through
//! chromedriver (started here on a free port) over WebDriver with fantoccini.
//! Skipped when chromedriver is missing, unless `CI=true` or
//! `LBDNS_REQUIRE_BROWSER=1`. With `LBDNS_SCREENSHOTS=DIR` it also saves the
//! README's screenshots there.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::backend::Backend;
use crate::harness::*;
use crate::ui::TOKEN;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver, killed on drop, with its own temporary directory (removed
/// after it): Chromium with `--disable-dev-shm-usage` keeps its shared memory
/// as files there, and would otherwise leave them in /tmp run after run.
pub struct Driver {
    child: Child,
    url: String,
    _tmp: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether the browser test can run here; panics when it must and cannot.
pub fn browser_available() -> bool {
    if std::path::Path::new(CHROMEDRIVER).exists() {
        return true;
    }
    let required = std::env::var("CI").is_ok_and(|v| v == "true")
        || std::env::var("LBDNS_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
    assert!(!required, "{CHROMEDRIVER} is missing (apt-get install chromium chromium-driver)");
    skipped("chromedriver is not installed (apt-get install chromium chromium-driver)");
    false
}

/// Starts chromedriver on a free port and waits until it says it is ready.
pub fn start_driver() -> Driver {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let tmp = tempfile::tempdir().unwrap();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .env("TMPDIR", tmp.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let driver = Driver { child, url: format!("http://127.0.0.1:{port}"), _tmp: tmp };
    let status = format!("{}/status", driver.url);
    wait_until(Duration::from_secs(20), "chromedriver ready", || {
        reqwest::blocking::get(&status)
            .ok()
            .and_then(|r| r.json::<Value>().ok())
            .is_some_and(|v| v["value"]["ready"] == true)
    });
    driver
}

fn wait_until(deadline: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < deadline, "{what}: not within {deadline:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub async fn browser(driver: &Driver) -> Client {
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
    ];
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".into(), json!({ "binary": "/usr/bin/chromium", "args": args }));
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector).capabilities(caps).connect(&driver.url).await.expect("WebDriver session")
}

/// Runs `script` in the page until it returns `want`, or fails after `deadline`.
pub async fn until_js(c: &Client, deadline: Duration, script: &str, want: Value) {
    let start = Instant::now();
    loop {
        let got = c.execute(script, vec![]).await.unwrap_or(Value::Null);
        if got == want {
            return;
        }
        assert!(start.elapsed() < deadline, "{script}: {got} after {deadline:?}, want {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn member_state_js(pool: &str, address: &str) -> String {
    format!(
        "const r = document.querySelector('tr.member[data-pool=\"{pool}\"][data-address=\"{address}\"] .state'); \
         return r ? r.textContent : null;"
    )
}

/// Focuses the input `css`, clears it and types `text`, again from the start
/// when a redraw replaced the element on the way (the page redraws every second
/// until an input in it has the focus).
async fn type_into(c: &Client, css: &str, text: &str) {
    let start = Instant::now();
    loop {
        let typed = async {
            let e = c.find(Locator::Css(css)).await?;
            e.click().await?;
            e.clear().await?;
            e.send_keys(text).await
        };
        if typed.await.is_ok() {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "could not type into {css}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Clicks what `css` finds, again if the page redrew it under the click.
async fn click(c: &Client, css: &str) {
    let start = Instant::now();
    loop {
        let clicked = match c.find(Locator::Css(css)).await {
            Ok(e) => e.click().await.is_ok(),
            Err(_) => false,
        };
        if clicked {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "could not click {css}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The A records `dig` gets for `name`, sorted.
fn dig_a(s: &Server, name: &str) -> Vec<String> {
    let out = Command::new("dig")
        .args(["@127.0.0.1", "-p", &s.dns.port().to_string(), "+short", "+norec", name, "A"])
        .output()
        .expect("dig");
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    v.sort();
    v
}

/// The example with a token, and its app pool probing two real backends
/// (127.0.0.1 and 127.0.0.2 on one port).
fn example_with_backends() -> (Server, Backend, Backend) {
    let first = Backend::http("127.0.0.1", 0);
    let port = first.addr.port();
    let second = Backend::http("127.0.0.2", port);
    for b in [&first, &second] {
        b.set_status(200);
    }
    let config = example_config()
        .replace("port = 8081", &format!("port = {port}"))
        .replace("# token_file = \"admin.token\"", "token_file = \"admin.token\"");
    (Server::start(&config, &[("admin.token", &format!("{TOKEN}\n"))]), first, second)
}

/// A picture of the page from the top, or from element `from` (CSS) on.
async fn screenshot(c: &Client, name: &str, width: u32, height: u32, from: Option<&str>) {
    let Ok(dir) = std::env::var("LBDNS_SCREENSHOTS") else { return };
    c.set_window_size(width, height).await.unwrap();
    let scroll = match from {
        Some(css) => format!("document.querySelector('{css}').scrollIntoView(); return null;"),
        None => "window.scrollTo(0, 0); return null;".into(),
    };
    c.execute(&scroll, vec![]).await.unwrap();
    // Let a redraw at the new size happen before the picture.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    std::fs::write(std::path::Path::new(&dir).join(name), c.screenshot().await.unwrap()).unwrap();
}

/// Queries at a changing rate until the www pool's sparkline has a few points
/// (the rates are sampled every 5 s), for the screenshots only.
async fn traffic_for_the_sparklines(c: &Client, s: &Server) {
    let points = "const p = document.querySelector('.pool[data-pool=\"www.example.test.\"] polyline'); \
                  return p ? p.points.length >= 4 : false;";
    let start = Instant::now();
    let mut round = 0u64;
    loop {
        for _ in 0..(20 + 15 * (round % 4)) {
            let _ = s.query("www.example.test.", hickory_proto::rr::RecordType::A);
            let _ = s.query("api.example.test.", hickory_proto::rr::RecordType::A);
        }
        round += 1;
        if c.execute(points, vec![]).await.unwrap_or(Value::Null) == json!(true) {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no sparkline after 60 s of traffic");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[test]
fn the_status_page_shows_health_live_and_drains_with_a_token() {
    if !browser_available() {
        return;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (s, first, second) = example_with_backends();
    let driver = start_driver();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let c = browser(&driver).await;
        c.set_window_size(1100, 900).await.unwrap();
        c.goto(&format!("http://127.0.0.1:{}/", s.admin.port())).await.unwrap();
        let names = "return [...document.querySelectorAll('.pool')].map(p => p.dataset.pool);";
        let example = json!([
            "www.example.test.",
            "api.example.test.",
            "db.example.test.",
            "geo.example.test.",
            "app.example.test."
        ]);
        until_js(&c, Duration::from_secs(10), names, example).await;
        let app2 = member_state_js("app.example.test.", "127.0.0.2");
        until_js(&c, Duration::from_secs(10), &app2, json!("up")).await;

        // Read-only without a token: no controls, and the API refuses a write.
        let controls = "return document.querySelectorAll('button[data-act], input.weight').length;";
        assert_eq!(c.execute(controls, vec![]).await.unwrap(), json!(0));
        // The write the page would send, without the token (blocking, so off this runtime).
        let url = format!("http://127.0.0.1:{}/v1/pools/db.example.test./members/192.0.2.40", s.admin.port());
        let put = std::thread::spawn(move || {
            reqwest::blocking::Client::new().put(url).body(r#"{"enabled":false}"#).send().unwrap().status().as_u16()
        });
        assert_eq!(put.join().unwrap(), 401);

        // A backend killed turns its member down on the page, without a reload
        // (the marker set in this page survives): fall = 2 probes 1 s apart.
        c.execute("window.lbdnsMarker = 'same page'; return null;", vec![]).await.unwrap();
        drop(second);
        until_js(&c, Duration::from_secs(8), &app2, json!("down")).await;
        assert_eq!(c.execute("return window.lbdnsMarker;", vec![]).await.unwrap(), json!("same page"));
        // The transition is in the history panel too, with the probe error.
        let newest = "const r = document.querySelector('#events tr.event'); \
                      return r ? [...r.cells].slice(1, 4).map(c => c.textContent.trim()) : null;";
        until_js(&c, Duration::from_secs(8), newest, json!(["app.example.test.", "127.0.0.2", "up → down"])).await;
        let reason = c.execute("return document.querySelector('#events tr.event').cells[4].textContent;", vec![]);
        assert!(
            reason.await.unwrap().as_str().is_some_and(|r| r.contains("127.0.0.2")),
            "the probe error names the backend"
        );

        // With the token typed in, the controls appear; draining changes the next answer.
        c.find(Locator::Id("token")).await.unwrap().send_keys(TOKEN).await.unwrap();
        click(&c, "#token-use").await;
        until_js(
            &c,
            Duration::from_secs(10),
            "return document.querySelectorAll('button[data-act=drain]').length > 0;",
            json!(true),
        )
        .await;
        assert_eq!(dig_a(&s, "db.example.test."), ["192.0.2.40"]);
        click(&c, "tr.member[data-pool='db.example.test.'][data-address='192.0.2.40'] button[data-act=drain]").await;
        until_js(&c, Duration::from_secs(10), &member_state_js("db.example.test.", "192.0.2.40"), json!("drained"))
            .await;
        assert_eq!(dig_a(&s, "db.example.test."), ["192.0.2.41"], "failover to the standby once drained");
        // The drain is listed with the last writes, as sent and with its result.
        let write = "const r = document.querySelector('#writes tr.write'); \
                     return r ? [...r.cells].slice(1).map(c => c.textContent) : null;";
        let drain = r#"PUT /v1/pools/db.example.test./members/192.0.2.40 {"enabled":false}"#;
        until_js(&c, Duration::from_secs(10), write, json!([drain, "ok"])).await;

        // A weight typed into the page (Enter sends it) is the one in effect.
        let row = "tr.member[data-pool='api.example.test.'][data-address='192.0.2.21']";
        type_into(&c, &format!("{row} input.weight"), "5\u{E007}").await;
        let weight = format!("return document.querySelector(\"{row} td[data-label=weight]\").textContent;");
        until_js(&c, Duration::from_secs(10), &weight, json!("5")).await;
        let weight_write = r#"PUT /v1/pools/api.example.test./members/192.0.2.21 {"weight":5}"#;
        until_js(&c, Duration::from_secs(10), write, json!([weight_write, "ok"])).await;

        // Both app backends gone: the pool is marked all down (fall = 2 probes 1 s
        // apart), and the history has the pool's own item.
        let no_votes = "return [...document.querySelectorAll('th')].some(t => t.textContent === 'Votes');";
        assert_eq!(c.execute(no_votes, vec![]).await.unwrap(), json!(false), "no quorum, no Votes column");
        drop(first);
        let badge = "const b = document.querySelector('.pool[data-pool=\"app.example.test.\"] .down-badge'); \
                     return b ? b.textContent.replace(/\\s+/g, ' ').replace(/[0-9]+ s ago/, 'N s ago') : null;";
        let marked = "all down N s ago, answering all_down = serve-all";
        until_js(&c, Duration::from_secs(8), badge, json!(marked)).await;
        let pool_event = "const r = document.querySelector('#events tr.event'); \
                          return r ? [...r.cells].slice(1, 4).map(c => c.textContent.trim()) : null;";
        until_js(&c, Duration::from_secs(8), pool_event, json!(["app.example.test.", "whole pool", "up → all-down"]))
            .await;

        if std::env::var("LBDNS_SCREENSHOTS").is_ok() {
            traffic_for_the_sparklines(&c, &s).await;
            screenshot(&c, "status-page.png", 1000, 1000, None).await;
            click(&c, "#not-up").await;
            screenshot(&c, "status-page-phone.png", 390, 760, Some("#pools-section")).await;
            click(&c, "#not-up").await;
        }

        // Weight 0 is refused on the page, as the API would refuse it: nothing is
        // sent. (After the screenshots, so that they show no error message.)
        type_into(&c, &format!("{row} input.weight"), "0\u{E007}").await;
        let message = "return document.getElementById('message').textContent;";
        until_js(&c, Duration::from_secs(10), message, json!("the weight must be a whole number, 1 or more")).await;
        assert_eq!(c.execute(write, vec![]).await.unwrap(), json!([weight_write, "ok"]), "no write was sent");
        click(&c, "tr.member[data-pool='db.example.test.'][data-address='192.0.2.40'] button[data-act=undrain]").await;
        until_js(&c, Duration::from_secs(10), &member_state_js("db.example.test.", "192.0.2.40"), json!("up")).await;
        assert_eq!(dig_a(&s, "db.example.test."), ["192.0.2.40"]);
        c.close().await.unwrap();
    });
    let url = format!("http://127.0.0.1:{}/v1/pools/api.example.test.", s.admin.port());
    let pool: Value = reqwest::blocking::Client::new().get(url).bearer_auth(TOKEN).send().unwrap().json().unwrap();
    assert_eq!(pool["members"][1]["weight"], 5, "{pool}");
}

#[test]
fn five_hundred_pools_page_search_and_filter() {
    if !browser_available() {
        return;
    }
    let s = crate::ui::five_hundred_pools();
    let driver = start_driver();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let c = browser(&driver).await;
        c.goto(&format!("http://127.0.0.1:{}/", s.admin.port())).await.unwrap();
        let summary = "const cards = [...document.querySelectorAll('.pool')]; \
                       return [document.getElementById('pool-count').textContent, \
                               document.getElementById('page').textContent, cards.length, \
                               cards.length ? cards[0].dataset.pool : null];";
        let ten_s = Duration::from_secs(10);
        until_js(&c, ten_s, summary, json!(["(500 of 500)", "1 / 10", 50, "p000.a.test."])).await;
        click(&c, "#next").await;
        until_js(&c, ten_s, summary, json!(["(500 of 500)", "2 / 10", 50, "p050.a.test."])).await;

        c.find(Locator::Id("search")).await.unwrap().send_keys("p417").await.unwrap();
        until_js(&c, ten_s, summary, json!(["(1 of 500)", "1 / 1", 1, "p417.a.test."])).await;
        c.find(Locator::Id("search")).await.unwrap().clear().await.unwrap();
        // Clearing by WebDriver fires no input event: type an address instead.
        c.find(Locator::Id("search")).await.unwrap().send_keys("198.51.100.250").await.unwrap();
        until_js(&c, ten_s, summary, json!(["(2 of 500)", "1 / 1", 2, "p249.a.test."])).await;
        c.find(Locator::Id("search")).await.unwrap().clear().await.unwrap();
        c.find(Locator::Id("search")).await.unwrap().send_keys("a.test").await.unwrap();

        click(&c, "#not-up").await;
        until_js(&c, ten_s, summary, json!(["(10 of 500)", "1 / 1", 10, "p007.a.test."])).await;
        let rows = "return [...document.querySelectorAll('tr.member')].map(r => r.dataset.address + ' ' + \
                    r.querySelector('.state').textContent).slice(0, 2);";
        assert_eq!(c.execute(rows, vec![]).await.unwrap(), json!(["192.0.2.8 drained", "192.0.2.58 drained"]));
        c.close().await.unwrap();
    });
}

#[test]
fn with_ui_public_false_the_page_asks_for_the_token_then_shows_the_state() {
    if !browser_available() {
        return;
    }
    let s = crate::ui::example_with_token("127.0.0.1", "ui_public = false");
    let driver = start_driver();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let c = browser(&driver).await;
        c.goto(&format!("http://127.0.0.1:{}/", s.admin.port())).await.unwrap();
        let seen =
            "return [document.getElementById('updated').textContent, document.querySelectorAll('.pool').length];";
        let ten_s = Duration::from_secs(10);
        until_js(&c, ten_s, seen, json!(["this page needs the admin token to show the state", 0])).await;
        // The field says the token is needed to see anything, not only for changes.
        let placeholder = "return document.getElementById('token').placeholder;";
        until_js(&c, ten_s, placeholder, json!("admin token (needed to see the state)")).await;
        c.find(Locator::Id("token")).await.unwrap().send_keys("not-the-token").await.unwrap();
        click(&c, "#token-use").await;
        let message = "return document.getElementById('message').textContent;";
        until_js(&c, ten_s, message, json!("token not accepted: missing or wrong bearer token")).await;
        c.find(Locator::Id("token")).await.unwrap().clear().await.unwrap();
        c.find(Locator::Id("token")).await.unwrap().send_keys(TOKEN).await.unwrap();
        click(&c, "#token-use").await;
        let pools = "return document.querySelectorAll('.pool').length;";
        until_js(&c, ten_s, pools, json!(5)).await;
        c.close().await.unwrap();
    });
}

#[test]
fn a_reload_refused_after_sighup_shows_its_error_on_the_page() {
    if !browser_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("lbdns.toml");
    write(
        &cfg,
        "[dns]\nlisten=[\"127.0.0.1:0\"]\n[admin]\nlisten=\"127.0.0.1:0\"\n\
         [[zone]]\norigin=\"r.test.\"\nfile=\"r.zone\"\n",
    );
    write(&dir.path().join("r.zone"), &small_zone(""));
    let r = crate::cli::spawn(&cfg);
    let driver = start_driver();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let c = browser(&driver).await;
        c.goto(&format!("http://{}/", r.admin)).await.unwrap();
        let reload = "return document.getElementById('reload').textContent.replace(/[0-9]+ s ago/, 'N s ago');";
        let ten_s = Duration::from_secs(10);
        until_js(&c, ten_s, reload, json!("No reload since the start, N s ago.")).await;

        write(&dir.path().join("r.zone"), &small_zone("bad IN A 192.0.2.300\n"));
        let pid = r.child.id().to_string();
        assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
        let error = "const p = document.querySelector('#reload pre'); return p ? p.textContent : null;";
        let want = format!("{}:5: invalid A data: \"192.0.2.300\"", dir.path().join("r.zone").display());
        let start = Instant::now();
        loop {
            let got = c.execute(error, vec![]).await.unwrap();
            if got.as_str().is_some_and(|e| e.starts_with(&want)) {
                break;
            }
            assert!(start.elapsed() < ten_s, "the page shows {got}, want {want}…");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let head = "return document.getElementById('reload').firstChild.textContent;";
        assert_eq!(c.execute(head, vec![]).await.unwrap(), json!("Last reload "));
        let refused = "return document.querySelector('#reload b').textContent;";
        assert_eq!(c.execute(refused, vec![]).await.unwrap(), json!("refused, the previous state is kept"));
        // The old zone still answers.
        assert_eq!(udp(r.dns, &msg("ns1.r.test.", hickory_proto::rr::RecordType::A)).answers.len(), 1);
        c.close().await.unwrap();
    });
}
