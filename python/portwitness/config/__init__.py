"""Configuration: PortsConfig.cfg, the CA Management Service's settings and TOML policies, read into one
model of rules; the built-in catalog of Arcserve services; and the port plan a firewall needs."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from portwitness.config.catalog import CATALOG, CatalogEntry, by_interface, by_program, catalog_rules, lookup
from portwitness.config.convert import convert_portsconfig, policy_to_toml
from portwitness.config.mgmt import read_mgmt
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
from portwitness.config.policy import read_policy
from portwitness.config.portsconfig import read_portsconfig

if TYPE_CHECKING:
    from portwitness.config.plan import port_plan

PathLike = str | os.PathLike[str]


def __getattr__(name: str) -> Any:
    # The port plan is a polars frame: its module loads polars, which reading a configuration
    # does not need (the command line reads one before it decodes).
    if name == "port_plan":
        from portwitness.config.plan import port_plan

        return port_plan
    raise AttributeError(f"module 'portwitness.config' has no attribute {name!r}")


def load_config(
    config: PathLike | None = None,
    mgmt: PathLike | None = None,
    policy: PathLike | None = None,
    *,
    pipe_pair_is_range: bool = False,
) -> Policy:
    """Read whichever files are given (PortsConfig.cfg, management settings, TOML policy) into one
    Policy, in that order, host-specific rules before general ones."""
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
