use super::*;

fn origin() -> Name {
    Name::from_ascii("example.test.").unwrap()
}

fn wire(rtype: RecordType, text: &str) -> Vec<u8> {
    encode(&parse_text(rtype, text, &origin()).unwrap_or_else(|e| panic!("{rtype} {text}: {e}"))).unwrap()
}

#[test]
fn escapes_are_decimal_octets() {
    // RFC 1035 5.1; the bytes Knot 3.2 serves for the same lines.
    assert_eq!(wire(RecordType::TXT, r#""\065""#), b"\x01A");
    assert_eq!(wire(RecordType::TXT, r#""\010""#), b"\x01\n");
    assert_eq!(wire(RecordType::TXT, r"\065"), b"\x01A");
    assert_eq!(wire(RecordType::TXT, r#""a\"b""#), b"\x03a\"b");
    assert_eq!(wire(RecordType::TXT, r#""a\\b""#), b"\x03a\\b");
    assert_eq!(wire(RecordType::TXT, r#""\255\000""#), b"\x02\xff\x00");
    assert!(parse_text(RecordType::TXT, r#""\256""#, &origin()).is_err());
    assert!(parse_text(RecordType::TXT, r#""\06""#, &origin()).is_err());
    assert_eq!(wire(RecordType::CNAME, r"a\065\.b"), b"\x04aA.b\x07example\x04test\x00");
}

#[test]
fn strings_and_quotes() {
    assert_eq!(wire(RecordType::TXT, r#""v=spf1 mx -all""#), b"\x0ev=spf1 mx -all");
    assert_eq!(wire(RecordType::TXT, "v=spf1 mx -all"), b"\x06v=spf1\x02mx\x04-all");
    assert_eq!(wire(RecordType::TXT, r#""a" "b""#), b"\x01a\x01b");
    assert_eq!(wire(RecordType::TXT, r#""""#), b"\x00");
    assert_eq!(render(&parse_text(RecordType::TXT, "v=spf1 mx -all", &origin()).unwrap()), r#""v=spf1" "mx" "-all""#);
}

#[test]
fn limits_name_the_field() {
    let long = "x".repeat(300);
    let e = parse_text(RecordType::TXT, &format!("ok \"{long}\""), &origin()).unwrap_err();
    assert_eq!(e.to_string(), "TXT string 2 is 300 octets; the limit is 255");
    let e = parse_text(RecordType::HINFO, &format!("{long} x"), &origin()).unwrap_err();
    assert_eq!(e.to_string(), "HINFO CPU is 300 octets; the limit is 255");
    let big = "y".repeat(70_000);
    let e = parse_text(RecordType::CAA, &format!("0 issue \"{big}\""), &origin()).unwrap_err();
    assert_eq!(e.to_string(), format!("record data is over 65535 octets; the limit is {MAX_RDATA}"));
    let e = parse_text(RecordType::CAA, &format!("0 issue \"{}\"", &big[..65_520]), &origin()).unwrap_err();
    assert_eq!(e.to_string(), format!("record data is 65527 octets; the limit is {MAX_RDATA}"));
    // The largest that fits.
    let fits = "z".repeat(MAX_RDATA - 7);
    assert_eq!(wire(RecordType::CAA, &format!("0 issue \"{fits}\"")).len(), MAX_RDATA);
}

#[test]
fn errors_quote_only_a_short_prefix() {
    let e = parse_text(RecordType::CNAME, "root:*:20228:0:99999:7:::\u{7}x..y", &origin()).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("\"root:*:20228…\""), "{msg}");
    assert!(!msg.contains("99999"), "{msg}");
}

/// Every type the server accepts: render(parse(x)) parses back to the same wire form.
#[test]
fn render_round_trips() {
    let cases: &[(RecordType, &str)] = &[
        (RecordType::A, "192.0.2.1"),
        (RecordType::AAAA, "2001:db8::1"),
        (RecordType::CNAME, "www"),
        (RecordType::CNAME, r#"we\.ird\032n\\ame\"x\;y\@\$."#),
        (RecordType::NS, "ns1.example.test."),
        (RecordType::PTR, "host.example.test."),
        (RecordType::ANAME, "target.example.test."),
        (RecordType::MX, "10 mail"),
        (RecordType::SRV, "0 5 5060 sip.example.test."),
        (RecordType::SOA, "ns1 hostmaster 2024010101 7200 3600 1209600 300"),
        (RecordType::TXT, r#""v=spf1 mx -all""#),
        (RecordType::TXT, r#""a" "b" "" "\000\255\"\\;()" "h\195\169llo""#),
        (RecordType::TXT, "héllo wörld"),
        (RecordType::HINFO, r#""INTEL-386" "Linux 6""#),
        (RecordType::NAPTR, r#"100 10 "U" "E2U+sip" "!^.*$!sip:info@example.test!" ."#),
        (RecordType::NAPTR, r#"100 10 "s" "SIP+D2U" "" _sip._udp"#),
        (RecordType::CAA, r#"0 issue "letsencrypt.org""#),
        (RecordType::CAA, r#"128 iodef "mailto:security@example.test""#),
        (RecordType::CAA, r#"0 tbs "Unknown \"value\" \007""#),
        (RecordType::SSHFP, "1 1 0123456789abcdef0123456789abcdef01234567"),
        (RecordType::TLSA, "3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
        (RecordType::SMIMEA, "3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
        (RecordType::OPENPGPKEY, "AQIDBAUGBwgJ"),
        (RecordType::CERT, "1 0 0 AQIDBAUGBwgJ"),
        (RecordType::CSYNC, "66 3 A NS AAAA"),
        (RecordType::SVCB, r#"1 svc.example.test. alpn="h2,h3" port=8443"#),
        (RecordType::HTTPS, "1 . alpn=h2 ipv4hint=192.0.2.1"),
        (RecordType::HTTPS, "1 @ alpn=h2"),
        (RecordType::Unknown(65400), r"\# 4 0a000001"),
        (RecordType::Unknown(65401), r"\# 0"),
    ];
    for (rtype, text) in cases {
        let first = parse_text(*rtype, text, &origin()).unwrap_or_else(|e| panic!("{rtype} {text}: {e}"));
        let shown = render(&first);
        let again = parse_text(*rtype, &shown, &origin()).unwrap_or_else(|e| panic!("{rtype} {shown}: {e}"));
        assert_eq!(encode(&first).unwrap(), encode(&again).unwrap(), "{rtype} {text} -> {shown}");
        assert_eq!(render(&again), shown, "{rtype} {text}");
    }
}
