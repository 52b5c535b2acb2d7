//! `lbdns explain NAME TYPE --client IP [--ecs CIDR]`: why a client gets the
//! answer it gets (`GET /v1/explain`), as a summary, the pool's members with
//! their eligibility, and the answer records.

use comfy_table::Cell;
use serde_json::Value;

use super::render::Output;

/// A JSON value as table text: strings bare, `null` as `-`.
fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The lines above the tables: the question, where it was found, the result.
fn summary(v: &Value) -> String {
    let mut s = format!("{} {} for client {}", text(&v["name"]), text(&v["type"]), text(&v["client"]));
    if !v["ecs"].is_null() {
        s.push_str(&format!(" (ECS {})", text(&v["ecs"])));
    }
    s.push('\n');
    s.push_str(&format!("zone     {}\n", text(&v["zone"])));
    if !v["node"].is_null() {
        s.push_str(&format!("node     {} ({})\n", text(&v["node"]["name"]), text(&v["node"]["match"])));
    }
    if let Some(chain) = v["cname_chain"].as_array().filter(|c| !c.is_empty()) {
        let names: Vec<String> = chain.iter().map(text).collect();
        s.push_str(&format!("cname    {} -> {}\n", text(&v["name"]), names.join(" -> ")));
    }
    s.push_str(&format!("result   {} ({}): {}\n", text(&v["result"]), text(&v["rcode"]), text(&v["reason"])));
    s
}

/// The pool's lines: policy, client key, location and region order.
fn pool_summary(p: &Value, ecs_scope: &Value) -> String {
    let mut s = format!("pool     {}  policy {}", text(&p["name"]), text(&p["policy"]));
    if p["sample"] == true {
        s.push_str("  (the answer is one sample of this policy's draws)");
    }
    s.push('\n');
    if !p["client_key"].is_null() {
        s.push_str(&format!("key      {} (from the {})\n", text(&p["client_key"]), text(&p["client_key_from"])));
    }
    if !p["region_order"].is_null() {
        let regions: Vec<String> = p["region_order"]["regions"].as_array().into_iter().flatten().map(text).collect();
        s.push_str(&format!(
            "location country {} continent {}: regions {} ([regions] {})\n",
            text(&p["country"]),
            text(&p["continent"]),
            regions.join(", "),
            text(&p["region_order"]["key"]),
        ));
    }
    if !ecs_scope.is_null() {
        s.push_str(&format!("scope    /{}\n", text(ecs_scope)));
    }
    if p["all_down"] == true {
        s.push_str(&format!("all down: no member is eligible, all_down = {}\n", text(&p["all_down_policy"])));
    }
    s
}

/// A member's weight: the configured one, or the effective one and where it
/// comes from (`7.5 (reported)`, `0.4 (slow-start)`).
fn weight(m: &Value) -> String {
    match m["weight_source"].as_str() {
        Some(source) if source != "config" => format!("{} ({source})", text(&m["effective_weight"])),
        _ => text(&m["weight"]),
    }
}

/// `lbdns explain`.
pub fn render(out: &Output, v: &Value) -> String {
    let mut s = summary(v);
    if let Some(p) = v.get("pool").filter(|p| !p.is_null()) {
        s.push_str(&pool_summary(p, &v["ecs_scope"]));
        let mut t =
            out.table(&["ADDRESS", "ELIGIBLE", "REASON", "ANSWERED", "WEIGHT", "REGION", "SINCE", "LAST ERROR"]);
        for m in p["members"].as_array().into_iter().flatten() {
            let answered = m["answered"].as_u64().map_or_else(|| "-".to_string(), |i| format!("#{}", i + 1));
            t.add_row(vec![
                Cell::new(text(&m["address"])),
                Cell::new(if m["eligible"] == true { "yes" } else { "no" }),
                Cell::new(text(&m["reason"])),
                Cell::new(answered),
                Cell::new(weight(m)),
                Cell::new(text(&m["region"])),
                Cell::new(text(&m["since"])),
                Cell::new(text(&m["last_error"])),
            ]);
        }
        s.push('\n');
        s.push_str(&out.finish(&t));
    }
    for (section, title) in [("answer", "ANSWER"), ("authority", "AUTHORITY")] {
        let records = v[section].as_array().into_iter().flatten();
        let mut t = out.table(&[title, "TTL", "TYPE", "DATA"]);
        let mut any = false;
        for r in records {
            any = true;
            t.add_row(vec![
                Cell::new(text(&r["name"])),
                Cell::new(text(&r["ttl"])),
                Cell::new(text(&r["type"])),
                Cell::new(text(&r["data"])),
            ]);
        }
        if any {
            s.push('\n');
            s.push_str(&out.finish(&t));
        }
    }
    s
}
