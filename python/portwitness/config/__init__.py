"""Configuration: PortsConfig.cfg, the CA Management Service's settings and TOML policies, read into one
model of rules; the built-in catalog of Arcserve services; and the port plan a firewall needs."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from portwitness.config.model import (
    FAMILY_MSRPC,
    FAMILY_ONCRPC,
    FAMILY_TCP,
    FAMILY_UDP,
    KIND_CALLBACK,
    KIND_RECONNECTION,
    KIND_SERVICE,
    ConfigError,
    ConfigWarning,
    Origin,
    Policy,
    PortRange,
    Rule,
)

if TYPE_CHECKING:
    from portwitness.config.catalog import (
        CATALOG,
        CatalogEntry,
        by_interface,
        by_program,
        catalog_rules,
        lookup,
    )
    from portwitness.config.convert import convert_portsconfig, policy_to_toml
    from portwitness.config.mgmt import read_mgmt
    from portwitness.config.plan import port_plan
    from portwitness.config.policy import read_policy
    from portwitness.config.portsconfig import read_portsconfig

# Loaded on first use (PEP 562): the command line needs only the model's ConfigError before it
# decodes, and the readers and the catalog took a third of its imports' time.
_LAZY = {
    "CATALOG": "catalog",
    "CatalogEntry": "catalog",
    "by_interface": "catalog",
    "by_program": "catalog",
    "catalog_rules": "catalog",
    "lookup": "catalog",
    "convert_portsconfig": "convert",
    "policy_to_toml": "convert",
    "read_mgmt": "mgmt",
    "read_policy": "policy",
    "read_portsconfig": "portsconfig",
    # The port plan is a polars frame: its module loads polars, which reading a configuration
    # does not need.
    "port_plan": "plan",
}

PathLike = str | os.PathLike[str]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'portwitness.config' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"portwitness.config.{module}"), name)
    globals()[name] = value
    return value


def load_config(
    config: PathLike | None = None,
    mgmt: PathLike | None = None,
    policy: PathLike | None = None,
    *,
    pipe_pair_is_range: bool = False,
) -> Policy:
    """Read whichever files are given (PortsConfig.cfg, management settings, TOML policy) into one
    Policy, in that order, host-specific rules before general ones."""
    from portwitness.config.mgmt import read_mgmt
    from portwitness.config.policy import read_policy
    from portwitness.config.portsconfig import read_portsconfig
    from portwitness.config.sniff import MGMT, POLICY, PORTSCONFIG, expect

    # Each file is told by its content before it is read: a file given to the wrong option is
    # refused with one line, not read as a stream of warnings and an audit against nothing.
    for path, kind in ((config, PORTSCONFIG), (mgmt, MGMT), (policy, POLICY)):
        if path is not None:
            expect(path, kind)
    out = Policy()
    if config is not None:
        out.extend(read_portsconfig(config))
    if mgmt is not None:
        out.extend(read_mgmt(mgmt, pipe_pair_is_range=pipe_pair_is_range))
    if policy is not None:
        out.extend(read_policy(policy))
    return out.prioritise()


__all__ = [
    "CATALOG",
    "FAMILY_MSRPC",
    "FAMILY_ONCRPC",
    "FAMILY_TCP",
    "FAMILY_UDP",
    "KIND_CALLBACK",
    "KIND_RECONNECTION",
    "KIND_SERVICE",
    "CatalogEntry",
    "ConfigError",
    "ConfigWarning",
    "Origin",
    "Policy",
    "PortRange",
    "Rule",
    "by_interface",
    "by_program",
    "catalog_rules",
    "convert_portsconfig",
    "load_config",
    "lookup",
    "policy_to_toml",
    "port_plan",
    "read_mgmt",
    "read_policy",
    "read_portsconfig",
]
