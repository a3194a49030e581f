from collections.abc import Callable
from os import PathLike
from typing import Any

__version__: str
MAX_ROWS: int
MAX_LEARNED: int
MAX_ANOMALY_ROWS: int
SWEEP_SECONDS: int

class PortwitnessError(Exception): ...
class CaptureFormatError(PortwitnessError): ...
class InternalError(PortwitnessError): ...

def decode(
    paths: list[str | PathLike[str]],
    *,
    max_flows: int = 1_000_000,
    idle_timeout: float = 600.0,
    max_fragment_datagrams: int = 4096,
    max_fragment_bytes: int = 67_108_864,
    fragment_timeout: float = 30.0,
    progress: Progress | None = None,
    threads: int = 0,
    flow_sink: Callable[[Any], None] | None = None,
    spill_rows: int = 262_144,
    chunk_bytes: int = 0,
    tables: list[str] | None = None,
) -> dict[str, Any]:
    """Decodes the captures in one pass. The dict holds each table as Arrow (`flows`, `anomalies`,
    `captures`, `rpc_calls`, `mappings`, `dcerpc_calls`, `tls`, `names`; src/tables.rs owns their
    schemas: `flows` names the encapsulation that carried a flow in `encap` and its tenant in
    `tunnel_id`, and its `security` is `tls`, `starttls` (TLS after a plaintext preamble),
    `plaintext` or null, its `community_id` the Community ID v1; `tls.client_offset` is the client bytes before TLS began;
    `dcerpc_calls.transfer_syntax` the transfer syntax (NDR or NDR64) negotiated for the row's
    presentation context and `pipe` the SMB named pipe of a call), `stats` (counters by name, among
    them `tunnelled`, `encap_undecoded`, `smb_messages`, `smb_signed`, `smb_encrypted`,
    `smb_compressed`, `smb_pipes`, `name_messages`) and the anomaly counts by kind."""

def first_timestamp(path: str | PathLike[str]) -> int | None: ...
def write_parquet(table: Any, path: str | PathLike[str]) -> int:
    """Writes an Arrow table (anything with `__arrow_c_stream__`) as one zstd Parquet file; returns
    the rows written. OSError when the file cannot be written."""

def community_id(
    transport: str | None,
    client_ip: str | None,
    client_port: int | None,
    server_ip: str | None,
    server_port: int | None,
    seed: int = 0,
) -> str | None:
    """The Community ID v1 of one TCP or UDP conversation, as the flows table's `community_id`
    has it; None when the tuple is not one."""

class Progress:
    """Bytes read so far by a decode running on another thread."""

    def __init__(self) -> None: ...
    @property
    def bytes_read(self) -> int: ...
