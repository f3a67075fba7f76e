//! Unit tests of request parsing: valid requests, and bad input to its error code.

use super::*;

fn ok(json: &str) -> (Option<Id>, Request) {
    let p = parse(json.as_bytes());
    (p.id, p.request.unwrap_or_else(|f| panic!("{json}: {f}")))
}

fn err(json: &[u8]) -> ErrorCode {
    parse(json).request.unwrap_err().code
}

#[test]
fn requests_parse_with_their_ids() {
    assert_eq!(
        ok(r#"{"type":"hello","id":1,"protocol":1,"client":"ext 0.1"}"#),
        (
            Some(Id::Number(1)),
            Request::Hello {
                protocol: 1,
                client: Some("ext 0.1".into())
            }
        )
    );
    assert_eq!(
        ok(r#"{"type":"status","id":"a"}"#).0,
        Some(Id::Text("a".into()))
    );
    assert_eq!(
        ok(r#"{"type":"card_history","reader":"R"}"#).1,
        Request::CardHistory {
            reader: Some("R".into())
        }
    );
    assert_eq!(
        ok(r#"{"type":"wait_card","timeout_ms":1500}"#).1,
        Request::WaitCard {
            reader: None,
            present: true,
            timeout: Duration::from_millis(1500)
        }
    );
    assert_eq!(
        ok(r#"{"type":"open_session","purpose":"payment","payment":{"mode":"time_cycle","unit_amount":200,"max_units":4,"currency":978,"period_seconds":30}}"#).1,
        Request::OpenSession {
            reader: None,
            purpose: Purpose::Payment(Confirmed {
                mode: Mode::TimeCycle,
                unit_amount: Amount(200),
                max_units: Units(4),
                currency: Currency::EUR,
                period: Period::from_secs(30).ok(),
            }),
            // At least the period and the margin; the default is longer.
            idle_timeout: DEFAULT_IDLE
        }
    );
    assert_eq!(
        ok(r#"{"type":"open_session","purpose":"recovery","recovery":{"nt":4294967295}}"#).1,
        Request::OpenSession {
            reader: None,
            purpose: Purpose::Recovery { nt: Nt(u32::MAX) },
            idle_timeout: DEFAULT_IDLE
        }
    );
    assert_eq!(
        ok(r#"{"type":"apdu","session":"s1","apdu":"00A4040007F0455055525345"}"#).1,
        Request::Apdu {
            session: "s1".into(),
            apdu: hex::decode("00A4040007F0455055525345").unwrap()
        }
    );
}

#[test]
fn bad_input_gets_the_right_code() {
    assert_eq!(err(b""), ErrorCode::InvalidJson);
    assert_eq!(err(b"{\"type\":"), ErrorCode::InvalidJson);
    assert_eq!(err(&[0xFF, 0xFE]), ErrorCode::InvalidJson);
    assert_eq!(err(b"[1,2]"), ErrorCode::InvalidRequest);
    assert_eq!(err(br#"{"id":1}"#), ErrorCode::InvalidRequest);
    assert_eq!(err(br#"{"type":"format_disk"}"#), ErrorCode::UnknownCommand);
    assert_eq!(
        err(br#"{"type":"status","extra":1}"#),
        ErrorCode::InvalidRequest
    );
    // card_history takes no command from outside.
    assert_eq!(
        err(br#"{"type":"card_history","apdu":"805A00000400000001"}"#),
        ErrorCode::InvalidRequest
    );
    assert_eq!(
        err(br#"{"type":"status","id":[1]}"#),
        ErrorCode::InvalidRequest
    );
    assert_eq!(
        err(br#"{"type":"apdu","session":"s","apdu":"zz"}"#),
        ErrorCode::InvalidRequest
    );
    assert_eq!(
        err(br#"{"type":"wait_card","timeout_ms":600001}"#),
        ErrorCode::InvalidRequest
    );
    assert_eq!(
        err(br#"{"type":"open_session","purpose":"payment"}"#),
        ErrorCode::InvalidRequest
    );
    assert_eq!(
        err(br#"{"type":"open_session","purpose":"payment","payment":{"mode":"single","unit_amount":0,"max_units":1,"currency":978}}"#),
        ErrorCode::InvalidRequest
    );
    assert_eq!(
        err(br#"{"type":"open_session","purpose":"payment","payment":{"mode":"single","unit_amount":5,"max_units":1,"currency":1000}}"#),
        ErrorCode::InvalidRequest
    );
    assert_eq!(
        err(br#"{"type":"open_session","purpose":"recovery","payment":{"mode":"single","unit_amount":5,"max_units":1,"currency":978}}"#),
        ErrorCode::InvalidRequest
    );
    // A recovery names the NT it is about, and only a recovery does.
    for bad in [
        r#"{"type":"open_session","purpose":"recovery"}"#,
        r#"{"type":"open_session","purpose":"recovery","recovery":{}}"#,
        r#"{"type":"open_session","purpose":"recovery","recovery":{"nt":-1}}"#,
        r#"{"type":"open_session","purpose":"recovery","recovery":{"nt":4294967296}}"#,
        r#"{"type":"open_session","purpose":"recovery","recovery":{"nt":1.5}}"#,
        r#"{"type":"open_session","purpose":"recovery","recovery":{"nt":1,"sam":2}}"#,
        r#"{"type":"open_session","purpose":"payment","recovery":{"nt":1},"payment":{"mode":"single","unit_amount":5,"max_units":1,"currency":978}}"#,
        // A time-cycle has a period of 1 to 3600 s; a single purchase none.
        r#"{"type":"open_session","purpose":"payment","payment":{"mode":"time_cycle","unit_amount":5,"max_units":2,"currency":978}}"#,
        r#"{"type":"open_session","purpose":"payment","payment":{"mode":"time_cycle","unit_amount":5,"max_units":2,"currency":978,"period_seconds":0}}"#,
        r#"{"type":"open_session","purpose":"payment","payment":{"mode":"time_cycle","unit_amount":5,"max_units":2,"currency":978,"period_seconds":3601}}"#,
        r#"{"type":"open_session","purpose":"payment","payment":{"mode":"single","unit_amount":5,"max_units":1,"currency":978,"period_seconds":60}}"#,
    ] {
        assert_eq!(err(bad.as_bytes()), ErrorCode::InvalidRequest, "{bad}");
    }
    let long = format!(
        r#"{{"type":"apdu","session":"s","apdu":"{}"}}"#,
        "00".repeat(262)
    );
    assert_eq!(err(long.as_bytes()), ErrorCode::InvalidRequest);
    // A deeply nested document is refused by the JSON parser's depth limit.
    let deep = "[".repeat(10_000);
    assert_eq!(err(deep.as_bytes()), ErrorCode::InvalidJson);
}

#[test]
fn the_id_survives_an_invalid_request() {
    let p = parse(br#"{"type":"apdu","id":7}"#);
    assert_eq!(p.id, Some(Id::Number(7)));
    assert_eq!(p.request.unwrap_err().code, ErrorCode::InvalidRequest);
}

#[test]
fn a_time_cycle_session_is_held_at_least_its_period_and_a_margin() {
    let open = |period: u64, idle: Option<u64>| {
        let idle = idle
            .map(|ms| format!(r#","idle_timeout_ms":{ms}"#))
            .unwrap_or_default();
        let json = format!(
            r#"{{"type":"open_session","purpose":"payment","payment":{{"mode":"time_cycle","unit_amount":5,"max_units":2,"currency":978,"period_seconds":{period}}}{idle}}}"#
        );
        match ok(&json).1 {
            Request::OpenSession { idle_timeout, .. } => idle_timeout,
            other => panic!("{other:?}"),
        }
    };
    // The longest period: an hour and a minute, beyond the hour a request may ask.
    assert_eq!(open(3600, None), Duration::from_secs(3660));
    assert_eq!(open(3600, Some(3_600_000)), Duration::from_secs(3660));
    assert_eq!(open(600, Some(1000)), Duration::from_secs(660));
    // A longer idle time asked for stays.
    assert_eq!(open(1, Some(3_600_000)), Duration::from_secs(3600));
    assert_eq!(open(1, None), DEFAULT_IDLE);
    // A single purchase gets what it asks.
    assert_eq!(
        ok(r#"{"type":"open_session","purpose":"payment","idle_timeout_ms":1000,"payment":{"mode":"single","unit_amount":5,"max_units":1,"currency":978}}"#).1,
        Request::OpenSession {
            reader: None,
            purpose: Purpose::Payment(Confirmed {
                mode: Mode::Single,
                unit_amount: Amount(5),
                max_units: Units(1),
                currency: Currency::EUR,
                period: None,
            }),
            idle_timeout: Duration::from_secs(1)
        }
    );
}
