"""Names of well-known ONC RPC programs (nmap's nmap-rpc, Wireshark's registrations, and the
Computer Associates / ARCserve blocks). Unknown numbers print as numbers."""

from __future__ import annotations

RPC_PROGRAMS: dict[int, str] = {
    100000: "portmapper",
    100001: "rstatd",
    100002: "rusersd",
    100003: "nfs",
    100004: "ypserv",
    100005: "mountd",
    100007: "ypbind",
    100008: "walld",
    100009: "yppasswdd",
    100011: "rquotad",
    100012: "sprayd",
    100017: "rexd",
    100021: "nlockmgr",
    100024: "status",
    100026: "bootparam",
    100029: "keyserv",
    100068: "cmsd",
    100083: "ttdbserverd",
    100099: "autofsd",
    100227: "nfs_acl",
    100232: "sadmind",
    150001: "pcnfsd",
    390103: "nsrd",
    390113: "nsrexecd",
    391002: "sgi_fam",
    351470: "ARCserveIT-Queue",
    351471: "ARCserveIT-Device",
    351472: "ARCserveIT-Discover",
    351473: "ARCserveIT-Alert",
    351474: "ARCserveIT-Database",
    395644: "caservd",
    395645: "lqserver",
    395646: "camediad",
    395647: "ldbserver",
    395648: "caauthd",
    395649: "cadiscovd",
    395650: "caloggerd",
}


def program_name(program: int | None) -> str:
    if program is None:
        return ""
    return RPC_PROGRAMS.get(program, str(program))
