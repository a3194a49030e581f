//! The PyO3 bindings: convert arguments, release the GIL, call the library, return Arrow tables
//! through the PyCapsule stream interface. No decoding logic lives here. Every error crosses into
//! Python through `to_py`, as a subclass of `PortwitnessError` (or `OSError` for a file).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arrow_array::RecordBatch;
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyTuple, PyType};
use pyo3_arrow::PyTable;

use crate::decode::{decode_paths_catching, FlowSpill, Options};
use crate::error::Error;
use crate::flow::FlowLimits;
use crate::packet::frag::FragLimits;
use crate::tables;
use crate::write::WriteError;

create_exception!(
    portwitness._core,
    PortwitnessError,
    PyException,
    "Base class of every error portwitness raises."
);
create_exception!(
    portwitness._core,
    CaptureFormatError,
    PortwitnessError,
    "The input is not a readable pcap or pcapng capture."
);
create_exception!(
    portwitness._core,
    InternalError,
    PortwitnessError,
    "A bug in the decoder, with the capture and record it met."
);
create_exception!(
    portwitness._core,
    UsageError,
    PortwitnessError,
    "What the caller asked for cannot be done as asked (a bad argument, configuration or filter)."
);

/// `ArgumentError(UsageError, ValueError)`: an argument's value is wrong. Made by calling `type`,
/// since `create_exception!` takes one base and callers that catch `ValueError` must still catch it.
static ARGUMENT_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn argument_error(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    ARGUMENT_ERROR
        .get_or_try_init(py, || {
            let bases = PyTuple::new(
                py,
                [py.get_type::<UsageError>(), py.get_type::<PyValueError>()],
            )?;
            let attrs = PyDict::new(py);
            attrs.set_item("__module__", "portwitness._core")?;
            attrs.set_item("__doc__", "An argument's value cannot be used.")?;
            let made = py
                .get_type::<PyType>()
                .call1(("ArgumentError", bases, attrs))?;
            Ok(made.cast_into::<PyType>()?.unbind())
        })
        .map(|t| t.bind(py))
}

/// The one conversion of the library's errors into Python exceptions.
fn to_py(e: Error) -> PyErr {
    let os_error = |path: &std::path::Path, source: &std::io::Error| {
        PyOSError::new_err((
            source.raw_os_error().unwrap_or(0),
            source.to_string(),
            path.to_string_lossy().into_owned(),
        ))
    };
    match e {
        Error::Open { path, source } | Error::Write(WriteError::Io { path, source }) => {
            os_error(&path, &source)
        }
        e @ (Error::Format { .. } | Error::NothingDecoded(_)) => {
            CaptureFormatError::new_err(e.to_string())
        }
        Error::Argument(msg) => Python::attach(|py| match argument_error(py) {
            Ok(t) => PyErr::from_type(t.clone(), msg),
            Err(e) => e,
        }),
        e @ (Error::Write(WriteError::Parquet { .. })
        | Error::Sink(_)
        | Error::Table(_)
        | Error::Internal { .. }) => InternalError::new_err(e.to_string()),
    }
}

impl From<Error> for PyErr {
    fn from(e: Error) -> PyErr {
        to_py(e)
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
    let batches = batches.map_err(Error::from)?;
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
#[pyclass(frozen, module = "portwitness._core")]
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

/// Rows of finished flows a `flow_sink` is handed at a time: about 50 MB as Arrow, and few enough
/// parts for the merge of spilled flows.
const SPILL_ROWS: usize = 262_144;

/// The decode's options with the values `decode` takes when they are not given, read from the
/// library's own defaults: Python's `decode` and the command line take theirs from here.
#[pyclass(frozen, get_all, module = "portwitness._core")]
#[derive(Clone)]
struct DecodeDefaults {
    max_flows: usize,
    /// Seconds.
    idle_timeout: f64,
    max_fragment_datagrams: usize,
    max_fragment_bytes: usize,
    /// Seconds.
    fragment_timeout: f64,
    threads: usize,
    spill_rows: usize,
    chunk_bytes: u64,
}

fn defaults() -> DecodeDefaults {
    let o = Options::default();
    DecodeDefaults {
        max_flows: o.flows.max_flows,
        idle_timeout: o.flows.idle_timeout_ns as f64 / 1e9,
        max_fragment_datagrams: o.frags.max_datagrams,
        max_fragment_bytes: o.frags.max_bytes,
        fragment_timeout: o.frags.timeout_ns as f64 / 1e9,
        threads: o.threads,
        spill_rows: SPILL_ROWS,
        chunk_bytes: o.chunk_bytes,
    }
}

#[pymethods]
impl DecodeDefaults {
    fn __repr__(&self) -> String {
        format!(
            "DecodeDefaults(max_flows={}, idle_timeout={:?}, max_fragment_datagrams={}, \
             max_fragment_bytes={}, fragment_timeout={:?}, threads={}, spill_rows={}, chunk_bytes={})",
            self.max_flows,
            self.idle_timeout,
            self.max_fragment_datagrams,
            self.max_fragment_bytes,
            self.fragment_timeout,
            self.threads,
            self.spill_rows,
            self.chunk_bytes
        )
    }
}

/// What one `decode` returns: each table asked for as an Arrow table (None when left out), the
/// counters, the anomaly counts by kind, what the end of the input changed, and each input as read.
#[pyclass(frozen, module = "portwitness._core")]
struct DecodeResult {
    /// The tables built, in the order of `TABLE_NAMES`.
    tables: Vec<(&'static str, Py<PyAny>)>,
    stats: Vec<(&'static str, u64)>,
    anomaly_counts: Vec<(&'static str, u64)>,
    border: Vec<(&'static str, u64)>,
    inputs: Vec<(String, u64, Option<String>)>,
}

impl DecodeResult {
    fn table(&self, py: Python<'_>, name: &str) -> Option<Py<PyAny>> {
        self.tables
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| t.clone_ref(py))
    }
}

fn dict_of<'py>(py: Python<'py>, pairs: &[(&'static str, u64)]) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in pairs {
        d.set_item(*k, *v)?;
    }
    Ok(d)
}

#[pymethods]
impl DecodeResult {
    /// The tables built, by name, in the order of `TABLES`.
    #[getter]
    fn tables<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (name, t) in &self.tables {
            d.set_item(*name, t.clone_ref(py))?;
        }
        Ok(d)
    }
    #[getter]
    fn flows(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.table(py, "flows")
    }
    #[getter]
    fn anomalies(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.table(py, "anomalies")
    }
    #[getter]
    fn captures(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.table(py, "captures")
    }
    #[getter]
    fn rpc_calls(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.table(py, "rpc_calls")
    }
    #[getter]
    fn mappings(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.table(py, "mappings")
    }
    #[getter]
    fn dcerpc_calls(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.table(py, "dcerpc_calls")
    }
    #[getter]
    fn tls(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.table(py, "tls")
    }
    #[getter]
    fn names(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.table(py, "names")
    }
    /// Counters by name (a new dict on each read).
    #[getter]
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        dict_of(py, &self.stats)
    }
    /// Every anomaly by kind, past the bound on the rows kept too.
    #[getter]
    fn anomaly_counts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        dict_of(py, &self.anomaly_counts)
    }
    /// What the end of the input changed: `live_flows`, `end_gaps`, `end_anomalies`,
    /// `withdrawn_mappings` (a merge of separate decodes checks its borders with them).
    #[getter]
    fn border<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        dict_of(py, &self.border)
    }
    /// Each input as read: `path`, `packets`, `error` (None, or why reading stopped), for the
    /// caller to tell inputs that were no capture (nothing read, an error) from captures cut short
    /// (packets read, then an error) without loading polars.
    #[getter]
    fn inputs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for (path, packets, error) in &self.inputs {
            let i = PyDict::new(py);
            i.set_item("path", path)?;
            i.set_item("packets", *packets)?;
            i.set_item("error", error.as_deref())?;
            list.append(i)?;
        }
        Ok(list)
    }
    fn __repr__(&self) -> String {
        let names: Vec<&str> = self.tables.iter().map(|(n, _)| *n).collect();
        format!("DecodeResult(tables=[{}])", names.join(", "))
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
/// the result is the same). Omitted options take the values of `DECODE_DEFAULTS`.
/// Returns a `DecodeResult`. `flow_sink`: a callable given the finished flows while decoding, as
/// Arrow tables of at least `spill_rows` rows each, each in flow order; `flows` then holds only
/// the rest. `tables`: the names of the tables to build (None: all of `TABLES`); the others are
/// None in the result.
#[pyfunction]
#[pyo3(signature = (
    paths,
    *,
    max_flows = defaults().max_flows,
    idle_timeout = defaults().idle_timeout,
    max_fragment_datagrams = defaults().max_fragment_datagrams,
    max_fragment_bytes = defaults().max_fragment_bytes,
    fragment_timeout = defaults().fragment_timeout,
    progress = None,
    threads = defaults().threads,
    flow_sink = None,
    spill_rows = defaults().spill_rows,
    chunk_bytes = defaults().chunk_bytes,
    tables = None
))]
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
) -> PyResult<DecodeResult> {
    if let Some(unknown) = tables
        .iter()
        .flatten()
        .find(|n| !tables::TABLE_NAMES.contains(&n.as_str()))
    {
        return Err(Error::Argument(format!(
            "no table named '{unknown}': the tables are {}",
            tables::TABLE_NAMES.join(", ")
        ))
        .into());
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
    let out = py.detach(|| decode_paths_catching(&paths, opts))?;
    if let Some(e) = failed.lock().ok().and_then(|mut f| f.take()) {
        return Err(e);
    }
    if let Some(msg) = &out.spill_error {
        return Err(Error::Sink(msg.clone()).into());
    }
    let want = |name: &str| wanted.as_ref().is_none_or(|w| w.iter().any(|n| n == name));
    let t = py.detach(|| tables::output_tables(&out, &want));
    let mut built = Vec::new();
    if let Some(flows) = t.flows {
        built.push(("flows", tables_of(py, flows, Some(tables::flows_schema()))?));
    }
    for (name, batch) in t.others {
        if let Some(batch) = batch {
            built.push((name, table(py, batch)?));
        }
    }
    let mut stats = out.stats.pairs();
    let a = &out.apps;
    stats.extend([
        ("rpc_messages", a.rpc.messages),
        ("dcerpc_pdus", a.dce.pdus),
        ("tls_hellos", a.tls.hellos),
        ("name_messages", a.names.messages),
        ("smb_messages", a.smb.messages),
        ("smb_signed", a.smb.signed),
        ("smb_encrypted", a.smb.encrypted),
        ("smb_compressed", a.smb.compressed),
        ("smb_pipes", a.smb.pipes),
        ("stream_gaps", a.stream_gaps),
        ("stream_overflows", a.stream_overflows),
        (
            "rows_dropped",
            a.rpc.calls.dropped()
                + a.dce.calls.dropped()
                + a.tls.rows.dropped()
                + a.names.rows.dropped()
                + a.learned_ports.mappings.dropped(),
        ),
        ("learned_ports", a.learned_ports.learn.len() as u64),
    ]);
    let b = &out.border;
    let result = DecodeResult {
        tables: built,
        stats,
        // Exact counts by kind: the anomaly rows themselves are bounded.
        anomaly_counts: out.anomalies.counts.iter().map(|(k, n)| (*k, *n)).collect(),
        border: vec![
            ("live_flows", b.live_flows),
            ("end_gaps", b.end_gaps),
            ("end_anomalies", b.end_anomalies),
            ("withdrawn_mappings", b.withdrawn_mappings),
        ],
        inputs: out
            .captures
            .iter()
            .map(|c| (c.path.clone(), c.packets, c.error.clone()))
            .collect(),
    };
    drop_elsewhere(out);
    Ok(result)
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
        std::panic::catch_unwind(write).unwrap_or_else(|_| {
            Err(WriteError::Parquet {
                path: path.clone(),
                source: parquet::errors::ParquetError::General(
                    "panic while writing Parquet".into(),
                ),
            })
        })
    });
    written.map_err(|e| to_py(e.into()))
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
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // The bounds a merge of separately decoded inputs must respect to equal one pass.
    m.add("MAX_ROWS", crate::learn::MAX_ROWS)?;
    m.add("MAX_LEARNED", crate::learn::MAX_LEARNED)?;
    m.add("MAX_ANOMALY_ROWS", crate::anomaly::MAX_ANOMALY_ROWS)?;
    m.add("SWEEP_SECONDS", crate::decode::SWEEP_NS / 1_000_000_000)?;
    m.add("TABLES", PyTuple::new(py, tables::TABLE_NAMES)?)?;
    m.add("DECODE_DEFAULTS", defaults())?;
    m.add("PortwitnessError", py.get_type::<PortwitnessError>())?;
    m.add("CaptureFormatError", py.get_type::<CaptureFormatError>())?;
    m.add("InternalError", py.get_type::<InternalError>())?;
    m.add("UsageError", py.get_type::<UsageError>())?;
    m.add("ArgumentError", argument_error(py)?)?;
    m.add_function(wrap_pyfunction!(decode, m)?)?;
    m.add_function(wrap_pyfunction!(first_timestamp, m)?)?;
    m.add_function(wrap_pyfunction!(write_parquet, m)?)?;
    m.add_function(wrap_pyfunction!(community_id, m)?)?;
    m.add_class::<Progress>()?;
    m.add_class::<DecodeDefaults>()?;
    m.add_class::<DecodeResult>()?;
    Ok(())
}
