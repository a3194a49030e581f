from collections.abc import Callable, Sequence
from os import PathLike
from typing import Any, final

__all__ = [
    "__version__",
    "MAX_ROWS",
    "MAX_LEARNED",
    "MAX_ANOMALY_ROWS",
    "SWEEP_SECONDS",
    "TABLES",
    "DECODE_DEFAULTS",
    "PortwitnessError",
    "CaptureFormatError",
    "InternalError",
    "UsageError",
    "ArgumentError",
    "decode",
    "first_timestamp",
    "write_parquet",
    "community_id",
    "Progress",
    "DecodeDefaults",
    "DecodeResult",
]

__version__: str
MAX_ROWS: int
MAX_LEARNED: int
MAX_ANOMALY_ROWS: int
SWEEP_SECONDS: int

TABLES: tuple[str, ...]
DECODE_DEFAULTS: DecodeDefaults

class PortwitnessError(Exception): ...
class CaptureFormatError(PortwitnessError): ...
class InternalError(PortwitnessError): ...
class UsageError(PortwitnessError): ...
class ArgumentError(UsageError, ValueError): ...

@final
class DecodeDefaults:
    """The decode's options when they are not given (the library's own defaults)."""

    @property
    def max_flows(self) -> int: ...
    @property
    def idle_timeout(self) -> float: ...
    @property
    def max_fragment_datagrams(self) -> int: ...
    @property
    def max_fragment_bytes(self) -> int: ...
    @property
    def fragment_timeout(self) -> float: ...
    @property
    def threads(self) -> int: ...
    @property
    def spill_rows(self) -> int: ...
    @property
    def chunk_bytes(self) -> int: ...

@final
class DecodeResult:
    """What one `decode` returns. Each table is an Arrow table (`__arrow_c_stream__`), None when
    `decode(tables=...)` left it out; src/tables.rs owns their schemas: `flows` names the
    encapsulation that carried a flow in `encap` and its tenant in `tunnel_id`, and its `security`
    is `tls`, `starttls` (TLS after a plaintext preamble), `plaintext` or null, its `community_id`
    the Community ID v1; `tls.client_offset` is the client bytes before TLS began;
    `dcerpc_calls.transfer_syntax` the transfer syntax (NDR or NDR64) negotiated for the row's
    presentation context and `pipe` the SMB named pipe of a call."""

    @property
    def tables(self) -> dict[str, Any]: ...
    @property
    def flows(self) -> Any | None: ...
    @property
    def anomalies(self) -> Any | None: ...
    @property
    def captures(self) -> Any | None: ...
    @property
    def rpc_calls(self) -> Any | None: ...
    @property
    def mappings(self) -> Any | None: ...
    @property
    def dcerpc_calls(self) -> Any | None: ...
    @property
    def tls(self) -> Any | None: ...
    @property
    def names(self) -> Any | None: ...
    @property
    def stats(self) -> dict[str, int]:
        """Counters by name, among them `tunnelled`, `encap_undecoded`, `smb_messages`,
        `smb_signed`, `smb_encrypted`, `smb_compressed`, `smb_pipes`, `name_messages`."""
    @property
    def anomaly_counts(self) -> dict[str, int]: ...
    @property
    def border(self) -> dict[str, int]: ...
    @property
    def inputs(self) -> list[dict[str, Any]]: ...

def decode(
    paths: Sequence[str | PathLike[str]],
    *,
    max_flows: int = ...,
    idle_timeout: float = ...,
    max_fragment_datagrams: int = ...,
    max_fragment_bytes: int = ...,
    fragment_timeout: float = ...,
    progress: Progress | None = None,
    threads: int = ...,
    flow_sink: Callable[[Any], None] | None = None,
    spill_rows: int = ...,
    chunk_bytes: int = ...,
    tables: list[str] | None = None,
) -> DecodeResult:
    """Decodes the captures in one pass; the options left out take `DECODE_DEFAULTS`."""

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

@final
class Progress:
    """Bytes read so far by a decode running on another thread."""

    def __init__(self) -> None: ...
    @property
    def bytes_read(self) -> int: ...
