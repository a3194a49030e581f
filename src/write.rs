//! Arrow tables written as Parquet files by the core itself. A command whose only output is one
//! Parquet file then never loads a dataframe library: on a 2 GB capture decoded in 0.45 s on two
//! cores, importing polars alone took 0.2 s of CPU, the cores' share of which lengthened the run.

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, SchemaRef};

use parquet::arrow::arrow_writer::{compute_leaves, ArrowColumnChunk, ArrowRowGroupWriterFactory};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;

/// Rows per row group: polars' own default, so a file reads back the same by either writer.
pub const ROW_GROUP_ROWS: usize = 512 * 512;

/// Why a table could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The file could not be created or written (no such directory, no permission, disk full).
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    /// The batches do not form one table the format can hold (a bug, not an input's fault).
    #[error("{}: {source}", path.display())]
    Parquet { path: PathBuf, source: ParquetError },
}

/// Writes `batches` (all of `schema`) to `path` as one Parquet file, zstd compressed as polars
/// writes it by default. Returns the rows written. A regular file left half written by an
/// error is removed.
pub fn parquet(
    path: &Path,
    schema: SchemaRef,
    batches: impl IntoIterator<Item = RecordBatch>,
) -> Result<u64, WriteError> {
    let file = File::create(path).map_err(|source| WriteError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let out = BufWriter::with_capacity(1 << 20, file);
    let written = write_all(out, schema, batches, ROW_GROUP_ROWS);
    written.map_err(|source| {
        // Only a file this call made: never a device or pipe named as the output.
        if std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
            let _ = std::fs::remove_file(path);
        }
        match source {
            ParquetError::External(e) => match e.downcast::<io::Error>() {
                Ok(source) => WriteError::Io {
                    path: path.to_path_buf(),
                    source: *source,
                },
                Err(e) => WriteError::Parquet {
                    path: path.to_path_buf(),
                    source: ParquetError::External(e),
                },
            },
            source => WriteError::Parquet {
                path: path.to_path_buf(),
                source,
            },
        }
    })
}

fn write_all(
    out: BufWriter<File>,
    schema: SchemaRef,
    batches: impl IntoIterator<Item = RecordBatch>,
    group_rows: usize,
) -> Result<u64, ParquetError> {
    let group_rows = group_rows.max(1);
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .set_max_row_group_row_count(Some(group_rows));
    // Numbers and times are nearly all distinct (ids, counters, timestamps): a dictionary for them
    // is built only to be abandoned, and was a third of the write. So is a flow's Community ID, a
    // hash of what tells the flows apart.
    for field in schema.fields() {
        if (!matches!(
            field.data_type(),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(..)
        ) && !field.data_type().is_nested())
            || field.name() == "community_id"
        {
            props =
                props.set_column_dictionary_enabled(ColumnPath::from(field.name().as_str()), false);
        }
    }
    let props = props.build();
    // ArrowWriter first: it writes the Arrow schema into the file's metadata (UTC timestamps,
    // unsigned ports come back as written); its parts then encode the columns in parallel.
    let (mut file, factory) =
        ArrowWriter::try_new(out, schema.clone(), Some(props))?.into_serialized_writer()?;
    let mut rows = 0u64;
    let mut group: Vec<RecordBatch> = Vec::new();
    let mut held = 0usize;
    let mut index = 0usize;
    for mut batch in batches {
        // Row groups of `group_rows`, whatever the batches' sizes.
        while held + batch.num_rows() >= group_rows {
            let take = group_rows - held;
            group.push(batch.slice(0, take));
            batch = batch.slice(take, batch.num_rows() - take);
            rows += write_group(&mut file, &factory, &schema, &mut group, index)?;
            index += 1;
            held = 0;
        }
        if batch.num_rows() > 0 {
            held += batch.num_rows();
            group.push(batch);
        }
    }
    if held > 0 {
        rows += write_group(&mut file, &factory, &schema, &mut group, index)?;
    }
    let mut out = file.into_inner()?;
    io::Write::flush(&mut out).map_err(|e| ParquetError::External(Box::new(e)))?;
    Ok(rows)
}

/// Encodes one row group, its columns shared out among the machine's cores (they are
/// independent until appended, in order), and appends it to the file. Empties `group`.
fn write_group(
    file: &mut SerializedFileWriter<BufWriter<File>>,
    factory: &ArrowRowGroupWriterFactory,
    schema: &SchemaRef,
    group: &mut Vec<RecordBatch>,
    index: usize,
) -> Result<u64, ParquetError> {
    let batch = arrow_select::concat::concat_batches(schema, group.iter())?;
    group.clear();
    // One writer per leaf, in the order of the fields and of each field's leaves (a nested column
    // has several).
    let mut writers = factory.create_column_writers(index)?.into_iter();
    let mut work = Vec::new();
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        for leaf in compute_leaves(field, column)? {
            let writer = writers
                .next()
                .ok_or_else(|| ParquetError::General("more leaves than column writers".into()))?;
            work.push(Mutex::new(Some((writer, leaf))));
        }
    }
    let done: Vec<Mutex<Option<Result<ArrowColumnChunk, ParquetError>>>> =
        work.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, work.len().max(1));
    let encode = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(slot) = work.get(i) else { break };
        let Some((mut writer, leaf)) = slot.lock().ok().and_then(|mut w| w.take()) else {
            continue;
        };
        let chunk = writer.write(&leaf).and_then(|()| writer.close());
        if let Some(mut d) = done.get(i).and_then(|d| d.lock().ok()) {
            *d = Some(chunk);
        }
    };
    std::thread::scope(|s| {
        for _ in 1..threads {
            s.spawn(encode);
        }
        encode();
    });
    let mut row_group = file.next_row_group()?;
    for d in done {
        let chunk = d
            .into_inner()
            .ok()
            .flatten()
            .ok_or_else(|| ParquetError::General("a column was not encoded".into()))??;
        chunk.append_to_row_group(&mut row_group)?;
    }
    row_group.close()?;
    Ok(batch.num_rows() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{decode_paths, Options};
    use crate::tables;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn sample_flows() -> RecordBatch {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps");
        let out = decode_paths(&[dir.join("sample.pcap")], Options::default()).unwrap();
        tables::flows_batch(&out.flows, &tables::capture_names(&out.captures)).unwrap()
    }

    fn read_back(path: &Path) -> (Vec<RecordBatch>, Option<i32>) {
        let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
        let row_groups = builder.metadata().num_row_groups() as i32;
        let batches = builder.build().unwrap().map(|b| b.unwrap()).collect();
        (batches, Some(row_groups))
    }

    #[test]
    fn a_table_reads_back_equal_with_its_schema() {
        let dir = tempfile_dir("roundtrip");
        let path = dir.join("flows.parquet");
        let flows = sample_flows();
        assert!(flows.num_rows() > 10);
        let (a, b) = (flows.slice(0, 7), flows.slice(7, flows.num_rows() - 7));
        let rows = parquet(&path, flows.schema(), [a, b]).unwrap();
        assert_eq!(rows, flows.num_rows() as u64);
        let (back, groups) = read_back(&path);
        assert_eq!(groups, Some(1));
        let back = arrow_select::concat::concat_batches(&flows.schema(), &back).unwrap();
        // The schema comes back whole: UTC timestamps, unsigned ports, nullable columns.
        assert_eq!(back, flows);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn batches_of_any_size_make_full_row_groups_in_order() {
        let dir = tempfile_dir("groups");
        let path = dir.join("flows.parquet");
        let flows = sample_flows();
        let n = flows.num_rows();
        let pieces = [
            flows.slice(0, 3),
            flows.slice(3, 0),
            flows.slice(3, 9),
            flows.slice(12, n - 12),
        ];
        let file = BufWriter::new(File::create(&path).unwrap());
        assert_eq!(
            write_all(file, flows.schema(), pieces, 5).unwrap(),
            n as u64
        );
        let (back, groups) = read_back(&path);
        assert_eq!(groups, Some(n.div_ceil(5) as i32));
        let back = arrow_select::concat::concat_batches(&flows.schema(), &back).unwrap();
        assert_eq!(back, flows);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn nested_columns_keep_their_leaves_in_order() {
        use arrow_array::builder::{ListBuilder, StringBuilder};
        use arrow_array::{ArrayRef, StructArray, UInt16Array};
        use arrow_schema::{DataType, Field, Fields, Schema};
        use std::sync::Arc;

        let mut names = ListBuilder::new(StringBuilder::new());
        for row in [&["a", "b"][..], &[], &["c"]] {
            for n in row {
                names.values().append_value(n);
            }
            names.append(true);
        }
        let names: ArrayRef = Arc::new(names.finish());
        let inner = Fields::from(vec![
            Field::new("port", DataType::UInt16, false),
            Field::new("names", names.data_type().clone(), true),
        ]);
        let ports: ArrayRef = Arc::new(UInt16Array::from(vec![111, 135, 7099]));
        let nested: ArrayRef = Arc::new(StructArray::new(
            inner.clone(),
            vec![ports.clone(), names.clone()],
            None,
        ));
        let schema = Arc::new(Schema::new(vec![
            Field::new("service", DataType::Struct(inner), false),
            Field::new("port", DataType::UInt16, false),
        ]));
        let batch = RecordBatch::try_new(schema.clone(), vec![nested, ports]).unwrap();
        let dir = tempfile_dir("nested");
        let path = dir.join("nested.parquet");
        assert_eq!(parquet(&path, schema.clone(), [batch.clone()]).unwrap(), 3);
        let (back, _) = read_back(&path);
        assert_eq!(back, vec![batch]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_empty_table_is_a_file_with_its_columns() {
        let dir = tempfile_dir("empty");
        let path = dir.join("none.parquet");
        let schema = tables::flows_schema();
        assert_eq!(parquet(&path, schema.clone(), []).unwrap(), 0);
        let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap()).unwrap();
        assert_eq!(builder.schema().fields(), schema.fields());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_unwritable_path_is_an_io_error_naming_it() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("no-such-dir/out.parquet");
        match parquet(&path, tables::flows_schema(), [sample_flows()]) {
            Err(e @ WriteError::Io { .. }) => {
                assert!(e.to_string().starts_with(&*path.to_string_lossy()), "{e}");
                let WriteError::Io { source, .. } = e else {
                    unreachable!()
                };
                assert_eq!(source.kind(), io::ErrorKind::NotFound);
            }
            other => panic!("expected an Io error, got {other:?}"),
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_full_disk_is_an_io_error_and_leaves_no_file() {
        // /dev/full takes the file's creation and fails every write with ENOSPC.
        match parquet(
            Path::new("/dev/full"),
            tables::flows_schema(),
            [sample_flows()],
        ) {
            Err(WriteError::Io { source, .. }) => {
                assert_eq!(source.raw_os_error(), Some(28), "{source}");
            }
            other => panic!("expected ENOSPC, got {other:?}"),
        }
    }

    #[test]
    fn dictionaries_only_for_text_columns_but_the_community_id() {
        let dir = tempfile_dir("dictionaries");
        let path = dir.join("flows.parquet");
        let flows = sample_flows();
        parquet(&path, flows.schema(), [flows.clone()]).unwrap();
        let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap()).unwrap();
        let group = builder.metadata().row_group(0);
        for (i, field) in flows.schema().fields().iter().enumerate() {
            let text = matches!(field.data_type(), DataType::Utf8);
            let text = text && field.name() != "community_id";
            let dict = group.column(i).dictionary_page_offset().is_some();
            assert_eq!(dict, text, "{}", field.name());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("portwitness-write-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
