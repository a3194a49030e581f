//! Arrow tables written as Parquet files by the core itself. A command whose only output is one
//! Parquet file then never loads a dataframe library: on a 2 GB capture decoded in 0.45 s on two
//! cores, importing polars alone took 0.2 s of CPU, the cores' share of which lengthened the run.

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;

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
    let written = write_all(BufWriter::with_capacity(1 << 20, file), schema, batches);
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
) -> Result<u64, ParquetError> {
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build();
    let mut writer = ArrowWriter::try_new(out, schema, Some(props))?;
    let mut rows = 0u64;
    for batch in batches {
        rows += batch.num_rows() as u64;
        writer.write(&batch)?;
    }
    let mut out = writer.into_inner()?;
    io::Write::flush(&mut out).map_err(|e| ParquetError::External(Box::new(e)))?;
    out.get_ref()
        .sync_data()
        .or_else(|e| match e.kind() {
            // Not every file system syncs (pipes, some FUSE mounts): the bytes are written.
            io::ErrorKind::Unsupported | io::ErrorKind::InvalidInput => Ok(()),
            _ => Err(e),
        })
        .map_err(|e| ParquetError::External(Box::new(e)))?;
    Ok(rows)
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

    fn tempfile_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("portwitness-write-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
