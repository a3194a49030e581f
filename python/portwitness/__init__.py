"""portwitness: which network ports do your services really use?

>>> import portwitness as pw
>>> cap = pw.decode(["a.pcap", "b.pcapng.gz"])
>>> cap.flows          # polars.DataFrame, one row per conversation
"""

from portwitness._core import CaptureFormatError, InternalError, PortwitnessError, __version__
from portwitness.capture import Capture, decode, expand_paths

__all__ = [
    "Capture",
    "CaptureFormatError",
    "InternalError",
    "PortwitnessError",
    "__version__",
    "decode",
    "expand_paths",
]
