//! The PyO3 bindings: convert arguments, release the GIL, call the library, return Arrow tables
//! through the PyCapsule stream interface. No decoding logic lives here.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arrow_array::RecordBatch;
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyOSError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use pyo3_arrow::PyTable;

use crate::decode::{decode_paths_catching, FlowSpill, Options};
use crate::error::Error;
use crate::flow::FlowLimits;
use crate::packet::frag::FragLimits;
use crate::tables;
use crate::write::WriteError;

create_exception!(
    _core,
    PortwitnessError,
    PyException,
    "Base class of portwitness's errors."
);
create_exception!(
    _core,
    CaptureFormatError,
    PortwitnessError,
    "The input is not a readable pcap or pcapng capture."
);
create_exception!(
    _core,
    InternalError,
    PortwitnessError,
    "A bug in the decoder, with the capture and record it met."
);

fn to_py(e: Error) -> PyErr {
    match e {
        Error::Open { path, source } => PyOSError::new_err((
            source.raw_os_error().unwrap_or(0),
            source.to_string(),
            path.to_string_lossy().into_owned(),
        )),
        e @ (Error::Format { .. } | Error::NothingDecoded(_)) => {
            CaptureFormatError::new_err(e.to_string())
        }
        e @ Error::Internal { .. } => InternalError::new_err(e.to_string()),
    }
}

fn table(
    py: Python<'_>,
    batch: Result<RecordBatch, arrow_schema::ArrowError>,
) -> PyResult<Py<PyAny>> {
    tables_of(py, batch.map(|b| vec![b]), None)
}

/// A table of several batches (of `schema`, needed when there are none).
fn tables_of(
    py: Python<'_>,
    batches: Result<Vec<RecordBatch>, arrow_schema::ArrowError>,
    schema: Option<arrow_schema::SchemaRef>,
) -> PyResult<Py<PyAny>> {
    let batches = batches.map_err(|e| InternalError::new_err(e.to_string()))?;
    let schema = match (batches.first(), schema) {
        (Some(b), _) => b.schema(),
        (None, Some(s)) => s,
        (None, None) => return Err(InternalError::new_err("a table without a schema")),
    };
    let t = PyTable::try_new(batches, schema)?;
    Ok(Bound::new(py, t)?.into_any().unbind())
}

/// Bytes read so far by a `decode` running on another thread: `decode(..., progress=p)` while
/// the caller polls `p.bytes_read` to draw a progress bar.
#[pyclass(frozen)]
struct Progress {
    read: Arc<AtomicU64>,
}

#[pymethods]
impl Progress {
    #[new]
    fn new() -> Self {
        Progress {
            read: Arc::new(AtomicU64::new(0)),
        }
    }

    #[getter]
    fn bytes_read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }
}

/// A spill whose sink is a Python callable taking an Arrow table of flows. The callable's
/// exception is kept whole in `failed`, to be raised once the decode is over.
fn python_spill(
    sink: Py<PyAny>,
    rows: usize,
    names: Vec<String>,
    failed: Arc<Mutex<Option<PyErr>>>,
) -> FlowSpill {
    let call = move |flows: Vec<crate::flow::Flow>| -> Result<(), String> {
        let batch = tables::flows_batch(&flows, &names);
        drop(flows);
        Python::attach(|py| {
            let done = table(py, batch).and_then(|t| sink.call1(py, (t,)).map(drop));
            done.map_err(|e| {
                let msg = e.to_string();
                if let Ok(mut slot) = failed.lock() {
                    slot.get_or_insert(e);
                }
                msg
            })
        })
    };
    FlowSpill {
        rows,
        sink: Arc::new(call),
    }
}

/// Decodes the captures in order, in one pass (`threads`: 1 decodes on this thread, more split
/// classic pcap files into chunks of `chunk_bytes` (0: 4 MiB) read and decoded on every thread,
/// other inputs on two threads joined by a queue; 0 as many threads as the machine has cores;
/// the result is the same).
/// Returns a dict of Arrow tables (`flows`, `anomalies`, `captures`, ...), `stats` (a dict of
/// counters), `anomaly_counts` and `border`. `flow_sink`: a callable given the finished flows
/// while decoding, as Arrow tables of at least `spill_rows` rows each, each in flow order; `flows`
/// then holds only the rest. `tables`: the names of the tables to build (None: all); the others
/// are left out of the dict.
#[pyfunction]
#[pyo3(signature = (paths, *, max_flows=1_000_000, idle_timeout=600.0, max_fragment_datagrams=4096, max_fragment_bytes=64 << 20, fragment_timeout=30.0, progress=None, threads=0, flow_sink=None, spill_rows=262_144, chunk_bytes=0, tables=None))]
#[allow(clippy::too_many_arguments)]
fn decode(
    py: Python<'_>,
    paths: Vec<PathBuf>,
    max_flows: usize,
    idle_timeout: f64,
    max_fragment_datagrams: usize,
    max_fragment_bytes: usize,
    fragment_timeout: f64,
    progress: Option<PyRef<'_, Progress>>,
    threads: usize,
    flow_sink: Option<Py<PyAny>>,
    spill_rows: usize,
    chunk_bytes: u64,
    tables: Option<Vec<String>>,
) -> PyResult<Py<PyDict>> {
    if let Some(unknown) = tables
        .iter()
        .flatten()
        .find(|n| !tables::TABLE_NAMES.contains(&n.as_str()))
    {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "no table named '{unknown}': the tables are {}",
            tables::TABLE_NAMES.join(", ")
        )));
    }
    let wanted = tables;
    let failed = Arc::new(Mutex::new(None));
    let names = paths
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let spill = flow_sink.map(|s| python_spill(s, spill_rows, names, failed.clone()));
    let opts = Options {
        flows: FlowLimits {
            max_flows: max_flows.max(1),
            idle_timeout_ns: (idle_timeout.max(0.0) * 1e9) as i64,
        },
        frags: FragLimits {
            max_datagrams: max_fragment_datagrams.max(1),
            max_bytes: max_fragment_bytes,
            timeout_ns: (fragment_timeout.max(0.0) * 1e9) as i64,
        },
        progress: progress.map(|p| p.read.clone()),
        threads,
        spill,
        chunk_bytes,
    };
    let out = py
        .detach(|| decode_paths_catching(&paths, opts))
        .map_err(to_py)?;
    if let Some(e) = failed.lock().ok().and_then(|mut f| f.take()) {
        return Err(e);
    }
    if let Some(msg) = &out.spill_error {
        return Err(InternalError::new_err(msg.clone()));
    }
    let want = |name: &str| wanted.as_ref().is_none_or(|w| w.iter().any(|n| n == name));
    let t = py.detach(|| tables::output_tables(&out, &want));
    let d = PyDict::new(py);
    if let Some(flows) = t.flows {
        d.set_item("flows", tables_of(py, flows, Some(tables::flows_schema()))?)?;
    }
    for (name, batch) in t.others {
        if let Some(batch) = batch {
            d.set_item(name, table(py, batch)?)?;
        }
    }
    let stats = PyDict::new(py);
    for (k, v) in out.stats.pairs() {
        stats.set_item(k, v)?;
    }
    let a = &out.apps;
    stats.set_item("rpc_messages", a.rpc.messages)?;
    stats.set_item("dcerpc_pdus", a.dce.pdus)?;
    stats.set_item("tls_hellos", a.tls.hellos)?;
    stats.set_item("name_messages", a.names.messages)?;
    stats.set_item("smb_messages", a.smb.messages)?;
    stats.set_item("smb_signed", a.smb.signed)?;
    stats.set_item("smb_encrypted", a.smb.encrypted)?;
    stats.set_item("smb_compressed", a.smb.compressed)?;
    stats.set_item("smb_pipes", a.smb.pipes)?;
    stats.set_item("stream_gaps", a.stream_gaps)?;
    stats.set_item("stream_overflows", a.stream_overflows)?;
    stats.set_item(
        "rows_dropped",
        a.rpc.calls.dropped()
            + a.dce.calls.dropped()
            + a.tls.rows.dropped()
            + a.names.rows.dropped()
            + a.know.mappings.dropped(),
    )?;
    stats.set_item("learned_ports", a.know.learn.len() as u64)?;
    d.set_item("stats", stats)?;
    // Exact counts by kind: the anomaly rows themselves are bounded.
    let kinds = PyDict::new(py);
    for (kind, n) in &out.anomalies.counts {
        kinds.set_item(*kind, *n)?;
    }
    d.set_item("anomaly_counts", kinds)?;
    let border = PyDict::new(py);
    border.set_item("live_flows", out.border.live_flows)?;
    border.set_item("end_gaps", out.border.end_gaps)?;
    border.set_item("end_anomalies", out.border.end_anomalies)?;
    border.set_item("withdrawn_mappings", out.border.withdrawn_mappings)?;
    d.set_item("border", border)?;
    // Each input as read, for the caller to tell inputs that were no capture (nothing read, an
    // error) from captures cut short (packets read, then an error) without loading polars.
    let inputs = PyList::empty(py);
    for c in &out.captures {
        let i = PyDict::new(py);
        i.set_item("path", &c.path)?;
        i.set_item("packets", c.packets)?;
        i.set_item("error", c.error.as_deref())?;
        inputs.append(i)?;
    }
    d.set_item("inputs", inputs)?;
    drop_elsewhere(out);
    Ok(d.unbind())
}

/// Frees `value` on a thread of its own: the decode's state (flows, streams, learned ports) takes
/// ~5 ms to free after a 2 GB capture, which the caller need not wait for. Freed here if no
/// thread can be started.
fn drop_elsewhere<T: Send + 'static>(value: T) {
    let _ = std::thread::Builder::new()
        .name("portwitness-free".into())
        .spawn(move || drop(value));
}

/// Writes an Arrow table (any object with `__arrow_c_stream__`) to `path` as one Parquet file,
/// zstd compressed; returns the rows written. OSError when the file cannot be written.
#[pyfunction]
fn write_parquet(py: Python<'_>, table: PyTable, path: PathBuf) -> PyResult<u64> {
    let (batches, schema) = table.into_inner();
    let written = py.detach(|| {
        // The batches move into the call and are never seen again after a panic.
        let write = std::panic::AssertUnwindSafe(|| crate::write::parquet(&path, schema, batches));
        std::panic::catch_unwind(write)
            .map_err(|_| format!("{}: panic while writing Parquet", path.display()))
    });
    match written {
        Ok(Ok(rows)) => Ok(rows),
        Ok(Err(WriteError::Io { path, source })) => Err(PyOSError::new_err((
            source.raw_os_error().unwrap_or(0),
            source.to_string(),
            path.to_string_lossy().into_owned(),
        ))),
        Ok(Err(e)) => Err(InternalError::new_err(e.to_string())),
        Err(msg) => Err(InternalError::new_err(msg)),
    }
}

/// The time (ns since the epoch) of a capture's first record; None when it has none or is no
/// capture.
#[pyfunction]
fn first_timestamp(py: Python<'_>, path: PathBuf) -> PyResult<Option<i64>> {
    let found = py.detach(|| {
        std::panic::catch_unwind(|| crate::decode::first_timestamp(&path)).unwrap_or_else(|_| {
            Err(Error::Internal {
                path: path.clone(),
                record_index: 0,
                byte_offset: 0,
                message: "panic while reading the first record".into(),
            })
        })
    });
    found.map_err(to_py)
}

/// The Community ID v1 of one TCP or UDP conversation (`crate::community_id`), given as text;
/// None when the tuple is not one (another transport, an address that does not parse, addresses
/// of two families, a port out of range).
#[pyfunction]
#[pyo3(signature = (transport, client_ip, client_port, server_ip, server_port, seed=0))]
fn community_id(
    transport: Option<&str>,
    client_ip: Option<&str>,
    client_port: Option<i64>,
    server_ip: Option<&str>,
    server_port: Option<i64>,
    seed: u16,
) -> Option<String> {
    let proto = match transport? {
        "tcp" => crate::packet::IPPROTO_TCP,
        "udp" => crate::packet::IPPROTO_UDP,
        _ => return None,
    };
    let addr = |s: &str| {
        s.parse::<std::net::IpAddr>().ok().map(|ip| match ip {
            std::net::IpAddr::V4(a) => crate::packet::Addr::v4(a.octets()),
            std::net::IpAddr::V6(a) => crate::packet::Addr::v6(a.octets()),
        })
    };
    let port = |p: i64| u16::try_from(p).ok();
    let (a, b) = (addr(client_ip?)?, addr(server_ip?)?);
    let ports = (port(client_port?)?, port(server_port?)?);
    crate::community_id::v1(seed, proto, &a, &b, Some(ports)).map(|c| c.as_str().to_owned())
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // The bounds a merge of separately decoded inputs must respect to equal one pass.
    m.add("MAX_ROWS", crate::learn::MAX_ROWS)?;
    m.add("MAX_LEARNED", crate::learn::MAX_LEARNED)?;
    m.add("MAX_ANOMALY_ROWS", crate::anomaly::MAX_ANOMALY_ROWS)?;
    m.add("SWEEP_SECONDS", crate::decode::SWEEP_NS / 1_000_000_000)?;
    m.add("PortwitnessError", m.py().get_type::<PortwitnessError>())?;
    m.add(
        "CaptureFormatError",
        m.py().get_type::<CaptureFormatError>(),
    )?;
    m.add("InternalError", m.py().get_type::<InternalError>())?;
    m.add_function(wrap_pyfunction!(decode, m)?)?;
    m.add_function(wrap_pyfunction!(first_timestamp, m)?)?;
    m.add_function(wrap_pyfunction!(write_parquet, m)?)?;
    m.add_function(wrap_pyfunction!(community_id, m)?)?;
    m.add_class::<Progress>()?;
    Ok(())
}
