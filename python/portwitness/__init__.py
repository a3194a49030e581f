"""portwitness: which network ports do your services really use?

>>> import portwitness as pw
>>> cap = pw.decode(["a.pcap", "b.pcapng.gz"])
>>> cap.flows          # polars.DataFrame, one row per conversation
>>> cfg = pw.load_config("PortsConfig.cfg", mgmt="mgmt.properties")
>>> report = pw.audit(cap, cfg)   # services, ranges, violations, blocked: polars frames
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from portwitness._core import __version__
from portwitness.errors import (
    ArgumentError,
    CaptureFormatError,
    InternalError,
    PortwitnessError,
    UsageError,
)

if TYPE_CHECKING:
    from portwitness.audit import Audit, audit
    from portwitness.capture import Capture, decode, expand_paths
    from portwitness.config import ConfigError, Policy, load_config
    from portwitness.hostnames import names_seen

# The rest of the API loads on first use (PEP 562): importing it pulls in polars, ~0.1 s that the
# command line spends loading on one core while the core already decodes on the other.
_LAZY = {
    "Audit": "portwitness.audit",
    "audit": "portwitness.audit",
    "Capture": "portwitness.capture",
    "decode": "portwitness.capture",
    "expand_paths": "portwitness.capture",
    "ConfigError": "portwitness.config",
    "Policy": "portwitness.config",
    "load_config": "portwitness.config",
    "names_seen": "portwitness.hostnames",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'portwitness' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


class _Package(types.ModuleType):
    """Keeps `portwitness.audit` the function: the import system binds a submodule on its package
    when it loads, and the submodule `portwitness.audit` may now load after the name was given."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "audit" and isinstance(value, types.ModuleType):
            value = value.audit
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

__all__ = [
    "Audit",
    "Capture",
    "ConfigError",
    "Policy",
    "audit",
    "load_config",
    "names_seen",
    "ArgumentError",
    "CaptureFormatError",
    "InternalError",
    "PortwitnessError",
    "UsageError",
    "__version__",
    "decode",
    "expand_paths",
]
