use super::capture::flows_batches_in;
use super::columns::versions;
use super::*;
use crate::decode::{decode_paths, Options};
use crate::proto::tls::version_name;

#[test]
fn versions_are_named_in_order_unknown_ones_in_hex() {
    assert_eq!(
        versions(&[0x0304, 0x0a0a, 0x0303]).as_deref(),
        Some("TLSv1.3,0x0a0a,TLSv1.2")
    );
    assert_eq!(versions(&[]), None);
    assert_eq!(version_name(0x0200), "SSLv2");
}

#[test]
fn the_tables_built_side_by_side_are_the_tables_built_one_by_one() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps");
    let out = decode_paths(&[dir.join("sample.pcap")], Options::default()).unwrap();
    let t = output_tables(&out, &|_| true);
    let names = capture_names(&out.captures);
    assert_eq!(
        t.flows.unwrap().unwrap(),
        vec![flows_batch(&out.flows, &names).unwrap()]
    );
    let here = [
        anomalies_batch(&out.anomalies, &out.captures),
        captures_batch(&out.captures),
        rpc_calls_batch(out.apps.decoded().rpc_calls),
        mappings_batch(out.apps.decoded().mappings),
        dcerpc_calls_batch(out.apps.decoded().dcerpc_calls),
        tls_batch(out.apps.decoded().tls),
        names_batch(out.apps.decoded().names),
    ];
    for ((name, aside), here) in t.others.into_iter().zip(here) {
        assert_eq!(aside.unwrap().unwrap(), here.unwrap(), "{name}");
    }
    let names = t_names(&output_tables(&out, &|_| true));
    assert_eq!(names, TABLE_NAMES[1..]);
    assert!(tls_batch(out.apps.decoded().tls).unwrap().num_rows() >= 1);
}

#[test]
fn only_the_tables_asked_for_are_built() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps");
    let out = decode_paths(&[dir.join("sample.pcap")], Options::default()).unwrap();
    let t = output_tables(&out, &|n| n == "flows");
    assert!(t.flows.is_some());
    assert!(t.others.iter().all(|(_, t)| t.is_none()));
    let t = output_tables(&out, &|n| n == "tls" || n == "anomalies");
    let [(_, anomalies), (_, captures), (_, rpc_calls), _, _, (_, tls), (_, names)] = t.others;
    assert!(t.flows.is_none() && captures.is_none() && rpc_calls.is_none() && names.is_none());
    assert_eq!(
        tls.unwrap().unwrap(),
        tls_batch(out.apps.decoded().tls).unwrap()
    );
    assert!(anomalies.unwrap().is_ok());
}

fn t_names(t: &Tables) -> Vec<&'static str> {
    t.others.iter().map(|(name, _)| *name).collect()
}

#[test]
fn the_flows_table_built_in_parts_is_the_table_built_whole() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps");
    let out = decode_paths(&[dir.join("sample.pcap")], Options::default()).unwrap();
    let names = capture_names(&out.captures);
    let whole = flows_batch(&out.flows, &names).unwrap();
    assert!(whole.num_rows() >= 12, "{}", whole.num_rows());
    for (least, threads, parts) in [
        (4, 3, 3),
        (4, 1, 1),
        (5, 64, whole.num_rows() / 5),
        (1 << 20, 8, 1),
    ] {
        let batches = flows_batches_in(&out.flows, &names, least, threads).unwrap();
        assert_eq!(batches.len(), parts, "{least} {threads}");
        let joined = arrow_select::concat::concat_batches(&flows_schema(), &batches).unwrap();
        assert_eq!(joined, whole);
    }
}
