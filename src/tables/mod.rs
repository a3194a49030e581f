//! Arrow schemas and builders for every output table. Each schema is written here once; the Python
//! side checks its frames against DESIGN.md's contract.

mod apps;
mod capture;
mod columns;
mod rpc;
#[cfg(test)]
mod tests;

pub use apps::{names_batch, tls_batch};
pub use capture::{
    anomalies_batch, anomalies_schema, capture_names, captures_batch, captures_schema, flows_batch,
    flows_batches, flows_schema,
};
pub use rpc::{dcerpc_calls_batch, mappings_batch, rpc_calls_batch};

use arrow_array::RecordBatch;
use arrow_schema::ArrowError;

/// Every table of a decode's output as text, with its counters: two decodes are the same when
/// these are (tests and the differential fuzz target compare ways of decoding with it).
pub fn fingerprint(out: &crate::decode::Output) -> String {
    let names = capture_names(&out.captures);
    let flows = flows_batch(&out.flows, &names);
    let mut text = format!("{:?}\n{:?}\n{flows:?}\n", out.stats, out.anomalies.counts);
    let others = others_where(&|_| true, |name| other_table(out, name));
    for t in others.into_iter().flat_map(|(_, t)| t) {
        text += &format!("{t:?}\n");
    }
    text
}

/// The tables of a decode, in the order `Tables` holds them.
pub const TABLE_NAMES: [&str; 8] = [
    "flows",
    "anomalies",
    "captures",
    "rpc_calls",
    "mappings",
    "dcerpc_calls",
    "tls",
    "names",
];

/// The tables of a decode's output asked for, as Arrow (None: not asked for, not built).
pub struct Tables {
    pub flows: Option<Result<Vec<RecordBatch>, ArrowError>>,
    /// The other tables, named, in the order of `TABLE_NAMES`.
    pub others: Others,
}

type Others = [(&'static str, Option<Result<RecordBatch, ArrowError>>); 7];

/// The table other than flows named `name`.
fn other_table(out: &crate::decode::Output, name: &str) -> Result<RecordBatch, ArrowError> {
    match name {
        "anomalies" => anomalies_batch(&out.anomalies, &out.captures),
        "captures" => captures_batch(&out.captures),
        "rpc_calls" => rpc_calls_batch(out.apps.decoded().rpc_calls),
        "mappings" => mappings_batch(out.apps.decoded().mappings),
        "dcerpc_calls" => dcerpc_calls_batch(out.apps.decoded().dcerpc_calls),
        "tls" => tls_batch(out.apps.decoded().tls),
        "names" => names_batch(out.apps.decoded().names),
        _ => Err(ArrowError::InvalidArgumentError(format!(
            "no table named {name}"
        ))),
    }
}

/// The tables other than flows, each built when `want` names it (`made`: how).
fn others_where(
    want: &dyn Fn(&str) -> bool,
    made: impl Fn(&str) -> Result<RecordBatch, ArrowError>,
) -> Others {
    let [_, others @ ..] = TABLE_NAMES;
    others.map(|name| (name, want(name).then(|| made(name))))
}

/// The tables of `out` that `want` names: the flows table on this thread (and more, when it is
/// large), the others meanwhile on one of their own (on the benchmark capture they take as long
/// as the flows table: 28 k TLS rows). A command that writes only the flows table asks for it
/// alone, and the machine's cores share it instead.
pub fn output_tables(out: &crate::decode::Output, want: &(dyn Fn(&str) -> bool + Sync)) -> Tables {
    let names = capture_names(&out.captures);
    let any_other = TABLE_NAMES.iter().skip(1).any(|n| want(n));
    let build_others = || others_where(want, |name| other_table(out, name));
    let (flows, others) = std::thread::scope(|s| {
        let aside = any_other.then(|| std::thread::Builder::new().spawn_scoped(s, build_others));
        let flows = want("flows").then(|| flows_batches(&out.flows, &names));
        let others = match aside {
            Some(Ok(handle)) => handle.join().unwrap_or_else(|_| {
                others_where(want, |_| {
                    Err(ArrowError::ComputeError(
                        "panic while building the tables".into(),
                    ))
                })
            }),
            // None asked for (nothing is built), or no thread to be had: build them here.
            None | Some(Err(_)) => build_others(),
        };
        (flows, others)
    });
    Tables { flows, others }
}
