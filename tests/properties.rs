//! Property tests over every parser: whatever the input, an answer or an error, never a panic;
//! and generated well-formed inputs read back as what was generated.
//!
//! `make test` runs the default case count (256 per property, a few seconds). A long campaign:
//! `PROPTEST_CASES=100000 cargo test --release --test properties`.

use consul_db_checks::cli::parse_host_port;
use consul_db_checks::duration::{format_duration, parse_duration};
use consul_db_checks::generator::inventory::parse_inventory;
use consul_db_checks::generator::plan::{plan, PlanOptions};
use consul_db_checks::mysql_checks::defaults_file::ClientGroup;
use consul_db_checks::mysql_checks::replication::{channels, RowMap};
use consul_db_checks::redis_checks::info::ReplicationInfo;
use consul_db_checks::report::{Facts, Outcome, Report, Status, Subcheck, Verdict, MAX_OUTPUT_BYTES};
use proptest::prelude::*;
use std::path::Path;
use std::time::Duration;

/// Text made of the pieces the parsers look for, mixed with anything.
fn infoish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("role:master".to_string()),
        Just("role:slave".to_string()),
        Just("loading:0".to_string()),
        Just("loading:1".to_string()),
        Just("master_host:10.0.0.2".to_string()),
        Just("master_port:6029".to_string()),
        Just("master_link_status:up".to_string()),
        Just("master_last_io_seconds_ago:-1".to_string()),
        "slave[0-9]{1,3}:ip=[a-z0-9.]{0,12},port=[0-9]{0,6},state=[a-z]{0,8},offset=[0-9]{0,5},lag=-?[0-9]{0,20}",
        "[a-z_]{1,20}:[ -~]{0,30}",
        "\\PC{0,40}",
    ];
    prop::collection::vec(piece, 0..20).prop_map(|v| v.join("\r\n"))
}

fn opts() -> PlanOptions {
    PlanOptions::default()
}

proptest! {
    /// Any bytes a client sends: no panic, and the answer is one of the statuses served, never a
    /// path that is not exactly what was sent.
    #[test]
    fn http_heads_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048), path in "/[ -~]{0,40}") {
        use consul_db_checks::serve::http::{head_end, parse_head};
        if let Some(end) = head_end(&bytes) {
            if let Err(refusal) = parse_head(&bytes[..end]) {
                prop_assert!([400u16, 405, 431].contains(&refusal.answer().status));
            }
        }
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
        if let Ok(req) = parse_head(request.as_bytes()) {
            prop_assert!(path.starts_with(&req.path) && !req.path.contains(' '));
        }
    }

    #[test]
    fn info_parser_never_panics(text in infoish()) {
        let _ = ReplicationInfo::parse(&text);
    }

    #[test]
    fn info_parser_reads_generated_replicas(lags in prop::collection::vec((0u16..65535, 0i64..100_000, any::<bool>()), 0..40)) {
        let mut text = String::from("# Replication\r\nrole:master\r\n");
        for (i, (port, lag, online)) in lags.iter().enumerate() {
            let state = if *online { "online" } else { "wait_bgsave" };
            text.push_str(&format!("slave{i}:ip=10.0.0.{},port={port},state={state},offset=1,lag={lag}\r\n", i % 250));
        }
        text.push_str("loading:0\r\n");
        let info = ReplicationInfo::parse(&text).unwrap();
        prop_assert_eq!(info.replicas.len(), lags.len());
        prop_assert_eq!(info.online_replicas().count(), lags.iter().filter(|(_, _, o)| *o).count());
        for (r, (port, lag, _)) in info.replicas.iter().zip(&lags) {
            let suffix = format!(":{port}");
            prop_assert!(r.address.ends_with(&suffix), "{} does not end in {}", r.address, suffix);
            prop_assert_eq!(r.lag_seconds, Some(*lag));
        }
    }

    #[test]
    fn durations_never_panic(text in "\\PC{0,16}") {
        let _ = parse_duration(&text);
    }

    #[test]
    fn durations_read_back_as_written(ms in 0u64..86_400_000) {
        let d = Duration::from_millis(ms);
        prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
    }

    #[test]
    fn host_port_never_panics(text in "\\PC{0,40}") {
        let _ = parse_host_port(&text);
    }

    #[test]
    fn host_port_reads_back(host in "[a-z][a-z0-9-]{0,20}(\\.[a-z0-9-]{1,10}){0,3}", port in 1u16..) {
        let addr = parse_host_port(&format!("{host}:{port}")).unwrap();
        prop_assert_eq!(addr.to_string(), format!("{host}:{port}"));
        let v6 = parse_host_port(&format!("[::1]:{port}")).unwrap();
        prop_assert_eq!(v6.to_string(), format!("[::1]:{port}"));
    }

    #[test]
    fn my_cnf_parser_never_panics(lines in prop::collection::vec(prop_oneof![
        Just("[client]".to_string()),
        Just("[mysqld]".to_string()),
        "(user|password|host|port|socket|ssl-ca)[ ]?=[ ]?[\"']?[ -~]{0,20}[\"']?",
        "![a-z]{0,10} [ -~]{0,20}",
        "\\PC{0,30}",
    ], 0..15)) {
        let _ = ClientGroup::parse(&lines.join("\n"), Path::new("/nonexistent/my.cnf"));
    }

    #[test]
    fn replication_rows_never_panic(rows in prop::collection::vec(prop::collection::hash_map(
        prop_oneof![
            Just("Slave_IO_Running".to_string()), Just("Replica_IO_Running".to_string()),
            Just("Slave_SQL_Running".to_string()), Just("Seconds_Behind_Master".to_string()),
            Just("Seconds_Behind_Source".to_string()), Just("Master_Host".to_string()), Just("Master_Port".to_string()),
            Just("Connection_name".to_string()), "[A-Za-z_]{1,12}",
        ],
        prop::option::of("\\PC{0,12}"),
        0..12,
    ), 0..4)) {
        let rows: Vec<RowMap> = rows.into_iter().map(|m| m.into_iter().collect()).collect();
        let _ = channels(&rows);
    }

    #[test]
    fn inventory_never_panics(text in prop_oneof![
        "\\PC{0,200}",
        "\\[\\{\"kind\":\"(redis|mysql|x)\",\"name\":\"[a-z-]{0,8}\",\"port\":[0-9]{1,6},\"nodes\":\\[(\"[a-z0-9.]{0,10}\",?){0,3}\\]\\}\\]",
    ]) {
        if let Ok((groups, _)) = parse_inventory(&text) {
            let _ = plan(&groups, &opts());
        }
    }

    /// Whatever a check found, its output in either format stays under the cap, JSON stays valid,
    /// and the status is the worst subcheck's (critical when none decided).
    #[test]
    fn output_is_bounded_and_valid(summary in "\\PC{0,3000}", reasons in prop::collection::vec((0..3u8, "\\PC{0,800}"), 0..30),
                                   facts in prop::collection::vec(("[a-z_]{1,12}", "\\PC{0,600}"), 0..40)) {
        let mut f = Facts::new();
        for (k, v) in &facts {
            f.set(k, v.as_str());
        }
        let statuses = [Status::Passing, Status::Warning, Status::Critical];
        let worst = reasons.iter().map(|(s, _)| statuses[usize::from(*s)]).max().unwrap_or(Status::Critical);
        let verdict = Verdict::new(summary, reasons.iter().map(|(s, line)| Subcheck::new(statuses[usize::from(*s)], line.as_str())));
        let report = Report::new("redis-master", "10.0.0.2:6029", Outcome::new(verdict, f));
        let text = report.render_text();
        prop_assert!(text.len() <= MAX_OUTPUT_BYTES);
        prop_assert!(text.starts_with(&format!("REDIS-MASTER {}: ", worst.label())), "{}", text);
        let json = report.render_json();
        prop_assert!(json.len() <= MAX_OUTPUT_BYTES, "{} bytes", json.len());
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(&v["status"], &serde_json::to_value(worst).unwrap());
        prop_assert_eq!(report.exit_code(), worst.exit_code(1));
        prop_assert_eq!(Status::Critical.exit_code(1), 2);
    }
}
