//! DCE/RPC over SMB named pipes (ncacn_np), beside the TCP streams: SMB messages framed out of
//! the reassembled stream of TCP 445 or 139, the pipes their CREATEs open, and the bytes written
//! to and read from each pipe (WRITE/READ, IOCTL FSCTL_PIPE_TRANSCEIVE; SMB1 TransactNmPipe,
//! Write AndX and Read AndX, down AndX chains) reassembled per file id and handed to the DCE/RPC
//! decoder as if they were a TCP stream.
//! Encrypted SMB3 is counted, never guessed at; signed messages are read (signing hides nothing).

use std::collections::HashMap;
use std::sync::Arc;

use super::dcerpc::{DceRpc, DceStream};
use super::{FlowFacts, OrientedFlow, Sink};
use crate::learn::LearnedPorts;
use crate::pending::PendingCalls;
use crate::proto::smb::{self as wire, FileId, Message};

pub const SMB_PORT: u16 = 445;
pub const NETBIOS_SSN_PORT: u16 = 139;
/// Names of opened files awaiting their CREATE response, and reads awaiting theirs, per flow.
pub const MAX_PENDING: usize = 4096;
/// Pipes (and other files) whose names are kept per flow.
pub const MAX_FILES: usize = 4096;
/// A message longer than this is skipped, not buffered: pipes carry PDUs of a few kilobytes,
/// file transfers carry megabytes nothing here wants.
pub const MAX_KEPT: usize = 256 << 10;

/// Frames NetBIOS session messages out of one direction's stream.
#[derive(Debug, Default)]
struct Framer {
    buf: Vec<u8>,
    /// Bytes of an overlong message still to skip.
    skip: usize,
    resync: bool,
}

impl Framer {
    fn feed(&mut self, mut bytes: &[u8], out: &mut dyn FnMut(&[u8])) {
        loop {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len());
                self.skip -= n;
                bytes = bytes.get(n..).unwrap_or(&[]);
            }
            if bytes.is_empty() {
                return;
            }
            let room = MAX_KEPT.saturating_add(4).saturating_sub(self.buf.len());
            let take = bytes.len().min(room.max(1));
            self.buf
                .extend_from_slice(bytes.get(..take).unwrap_or(bytes));
            bytes = bytes.get(take..).unwrap_or(&[]);
            self.drain(out);
        }
    }

    fn drain(&mut self, out: &mut dyn FnMut(&[u8])) {
        let mut at = 0;
        loop {
            let rest = self.buf.get(at..).unwrap_or(&[]);
            if self.resync {
                match wire::resync(rest) {
                    Some(p) => {
                        at += p;
                        self.resync = false;
                    }
                    None => {
                        // Keep the last bytes: a header may straddle the next segment.
                        at += rest.len().saturating_sub(7);
                        break;
                    }
                }
                continue;
            }
            let Some((kind, len)) = wire::netbios_header(rest) else {
                break;
            };
            if len > MAX_KEPT {
                // Skip the message whole, whatever part of it is buffered.
                let have = rest.len().saturating_sub(4);
                self.skip = len.saturating_sub(have);
                at += 4 + len.min(have);
                continue;
            }
            let Some(m) = rest.get(4..4 + len) else {
                break;
            };
            if kind == 0 {
                out(m);
            }
            at += 4 + len;
        }
        self.buf.drain(..at.min(self.buf.len()));
    }
}

/// One named pipe: its name and its DCE/RPC association.
#[derive(Debug)]
struct Pipe {
    /// None for a pipe opened before the capture began.
    name: Option<Arc<str>>,
    dce: DceStream,
    failed: bool,
}

#[derive(Debug)]
pub struct SmbStream {
    framers: [Framer; 2],
    /// CREATE requests by message id (SMB1: `Smb1::key`): the name asked for.
    creating: PendingCalls<u64, Arc<str>, MAX_PENDING>,
    /// READ and IOCTL requests by message id (SMB1: Read AndX and Transaction by `Smb1::key`): the
    /// file they read.
    reading: PendingCalls<u64, FileId, MAX_PENDING>,
    /// Opened files by id: the name they were opened with.
    names: PendingCalls<FileId, Arc<str>, MAX_FILES>,
    pipes: HashMap<FileId, Pipe>,
    /// The file id the last CREATE of a compound chain returned (related requests use it).
    last_created: Option<FileId>,
}

impl SmbStream {
    pub fn new(midstream: bool) -> Self {
        let f = || Framer {
            resync: midstream,
            ..Framer::default()
        };
        SmbStream {
            framers: [f(), f()],
            creating: PendingCalls::new(),
            reading: PendingCalls::new(),
            names: PendingCalls::new(),
            pipes: HashMap::new(),
            last_created: None,
        }
    }

    pub fn swap(&mut self) {
        self.framers.swap(0, 1);
    }

    pub fn gap(&mut self, d: usize) {
        if let Some(f) = self.framers.get_mut(d) {
            f.buf.clear();
            f.skip = 0;
            f.resync = true;
        }
    }
}

/// Counters of the SMB layer.
#[derive(Debug, Default)]
pub struct Smb {
    pub messages: u64,
    pub signed: u64,
    pub encrypted: u64,
    pub compressed: u64,
    pub pipes: u64,
}

/// Bytes for a pipe, in the direction of a request (client to server) or a response; or, with
/// `close`, the end of the file (its id may be handed out again, SMB1's FIDs are).
struct PipeData<'a> {
    fid: FileId,
    request: bool,
    data: &'a [u8],
    close: bool,
}

impl<'a> PipeData<'a> {
    fn data(fid: FileId, request: bool, data: &'a [u8]) -> Self {
        PipeData {
            fid,
            request,
            data,
            close: false,
        }
    }

    fn close(fid: FileId) -> Self {
        PipeData {
            fid,
            request: true,
            data: &[],
            close: true,
        }
    }
}

/// The stand-in id of the file a CREATE request (message `mid`) opens, until its response says.
fn provisional(mid: u64) -> FileId {
    let mut f = [0xfe; 16];
    f[8..].copy_from_slice(&mid.to_le_bytes());
    f
}

impl Smb {
    /// Reassembled bytes of one direction of an SMB flow.
    #[allow(clippy::too_many_arguments)]
    pub fn data(
        &mut self,
        dce: &mut DceRpc,
        learned_ports: &mut LearnedPorts,
        st: &mut SmbStream,
        e: &OrientedFlow,
        d: usize,
        bytes: &[u8],
        ts: i64,
        sink: &mut Sink<'_>,
    ) -> FlowFacts {
        let mut messages: Vec<Vec<u8>> = Vec::new();
        if let Some(f) = st.framers.get_mut(d) {
            f.feed(bytes, &mut |m| messages.push(m.to_vec()));
        }
        let mut said = FlowFacts::default();
        for m in messages {
            self.messages += 1;
            let mut data: Vec<PipeData<'_>> = Vec::new();
            match wire::message(&m) {
                Message::Smb2(m) => self.smb2(st, m, &mut data),
                Message::Smb1(m) => smb1(st, m, &mut data),
                Message::Encrypted => self.encrypted += 1,
                Message::Compressed => self.compressed += 1,
                Message::Other => {}
            }
            for p in data {
                if p.close {
                    if let Some(pipe) = st.pipes.remove(&p.fid) {
                        close_pipe(dce, pipe, e);
                    }
                    continue;
                }
                said = said.or(self.pipe(dce, learned_ports, st, e, p, ts, sink));
            }
        }
        said
    }

    fn smb2<'m>(&mut self, st: &mut SmbStream, m: &'m [u8], out: &mut Vec<PipeData<'m>>) {
        // The message id of a CREATE request earlier in this chain: the requests related to it
        // name its file before the server has said which it is.
        let mut chain_create: Option<u64> = None;
        for (h, m) in wire::smb2_chain(m) {
            if h.signed {
                self.signed += 1;
            }
            let fid = |f: FileId| {
                // A related request names the file of the chain's CREATE as all ones.
                if h.related && f == [0xff; 16] {
                    match chain_create {
                        Some(mid) if !h.response => provisional(mid),
                        _ => st.last_created.unwrap_or(f),
                    }
                } else {
                    f
                }
            };
            if h.response && h.status == wire::STATUS_PENDING {
                continue; // the real response follows
            }
            match (h.command, h.response) {
                (wire::SMB2_CREATE, false) => {
                    if let Some(name) = wire::create_request_name(m) {
                        let name: Arc<str> = wire::pipe_name(&name).into();
                        chain_create = Some(h.message_id);
                        let p = provisional(h.message_id);
                        st.names.insert(p, name.clone());
                        st.creating.insert(h.message_id, name);
                    }
                }
                (wire::SMB2_CREATE, true) => {
                    let name = st.creating.remove(&h.message_id);
                    let p = provisional(h.message_id);
                    st.names.remove(&p);
                    let early = st.pipes.remove(&p);
                    if let (Some(name), Some(f), 0) =
                        (name, wire::create_response_file_id(m), h.status)
                    {
                        st.last_created = Some(f);
                        st.names.insert(f, name);
                        // What the chain wrote before the file had its id goes on with it.
                        if let Some(pipe) = early {
                            st.pipes.insert(f, pipe);
                        }
                    }
                }
                (wire::SMB2_CLOSE, false) => {
                    if let Some(f) = wire::close_request_file_id(m) {
                        let f = fid(f);
                        st.names.remove(&f);
                        out.push(PipeData::close(f));
                    }
                }
                (wire::SMB2_WRITE, false) => {
                    if let Some((f, data)) = wire::write_request(m) {
                        out.push(PipeData::data(fid(f), true, data));
                    }
                }
                (wire::SMB2_READ, false) => {
                    if let Some(f) = wire::read_request_file_id(m) {
                        let f = fid(f);
                        if st.pipes.contains_key(&f) || st.names.contains_key(&f) {
                            st.reading.insert(h.message_id, f);
                        }
                    }
                }
                (wire::SMB2_READ, true) => {
                    let Some(f) = st.reading.remove(&h.message_id) else {
                        continue;
                    };
                    if h.status == 0 || h.status == wire::STATUS_BUFFER_OVERFLOW {
                        if let Some(data) = wire::read_response_data(m) {
                            out.push(PipeData::data(f, false, data));
                        }
                    }
                }
                (wire::SMB2_IOCTL, response) => {
                    let Some((ctl, f, data)) = wire::ioctl(m, response) else {
                        continue;
                    };
                    let ok = h.status == 0 || h.status == wire::STATUS_BUFFER_OVERFLOW;
                    if ctl == wire::FSCTL_PIPE_TRANSCEIVE && (ok || !response) {
                        out.push(PipeData::data(fid(f), !response, data));
                    }
                }
                _ => {}
            }
        }
    }

    /// Bytes of a pipe into its DCE/RPC association; the rows it makes are named by the pipe.
    #[allow(clippy::too_many_arguments)]
    fn pipe(
        &mut self,
        dce: &mut DceRpc,
        learned_ports: &mut LearnedPorts,
        st: &mut SmbStream,
        e: &OrientedFlow,
        p: PipeData<'_>,
        ts: i64,
        sink: &mut Sink<'_>,
    ) -> FlowFacts {
        if !st.pipes.contains_key(&p.fid) {
            // Only a file whose first bytes are a PDU is a pipe worth decoding.
            if !p.request || !wire::looks_like_dcerpc(p.data) || st.pipes.len() >= MAX_FILES {
                return FlowFacts::default();
            }
            let name = st.names.get(&p.fid).cloned();
            self.pipes += 1;
            st.pipes.insert(
                p.fid,
                Pipe {
                    name,
                    dce: DceStream::new(false),
                    failed: false,
                },
            );
        }
        let Some(pipe) = st.pipes.get_mut(&p.fid) else {
            return FlowFacts::default();
        };
        if pipe.failed {
            return FlowFacts::default();
        }
        let before = dce.calls.len();
        let d = usize::from(!p.request);
        let r = dce.data(learned_ports, &mut pipe.dce, e, d, p.data, ts, sink);
        name_rows(dce, before, pipe.name.as_ref());
        match r {
            Ok(mut said) => {
                // The TCP flow's orientation is SMB's: a pipe has no say in it.
                said.turn = None;
                said
            }
            Err(detail) => {
                pipe.failed = true;
                sink.push(
                    "smb",
                    "not_dcerpc",
                    format!(
                        "flow {} pipe {:?} (file {}) does not carry DCE/RPC: {detail}",
                        e.flow_id,
                        pipe.name.as_deref().unwrap_or("?"),
                        wire::file_id_text(&p.fid)
                    ),
                );
                FlowFacts::default()
            }
        }
    }

    /// The SMB flow ended: every pipe's calls never answered become rows.
    pub fn close(&mut self, dce: &mut DceRpc, st: SmbStream, e: &OrientedFlow) {
        let mut pipes: Vec<(FileId, Pipe)> = st.pipes.into_iter().collect();
        // In file-id order, whatever the map's order: the rows must not depend on hashing.
        pipes.sort_by_key(|(f, _)| *f);
        for (_, pipe) in pipes {
            close_pipe(dce, pipe, e);
        }
    }
}

/// A pipe closed (or its flow ended): its calls never answered become rows.
fn close_pipe(dce: &mut DceRpc, pipe: Pipe, e: &OrientedFlow) {
    let before = dce.calls.len();
    dce.close(pipe.dce, e);
    name_rows(dce, before, pipe.name.as_ref());
}

/// SMB1, every command of the message's AndX chain: NT Create AndX, Close, Transaction
/// (TransactNmPipe), Write AndX and Read AndX.
fn smb1<'m>(st: &mut SmbStream, m: &'m [u8], out: &mut Vec<PipeData<'m>>) {
    for s in wire::smb1_chain(m) {
        smb1_command(st, &s, out);
    }
}

fn smb1_command<'m>(st: &mut SmbStream, s: &wire::Smb1<'m>, out: &mut Vec<PipeData<'m>>) {
    // A response names neither its request nor (Read AndX, Transaction) its file: the MID with
    // the PID, TID and UID around it pairs them.
    let key = s.key();
    let ok = s.status == 0 || s.status == wire::STATUS_BUFFER_OVERFLOW;
    match (s.command, s.response) {
        (wire::SMB1_NT_CREATE_ANDX, false) => {
            if let Some(name) = wire::nt_create_request_name(s) {
                let name: Arc<str> = wire::pipe_name(&name).into();
                st.creating.insert(key, name);
            }
        }
        (wire::SMB1_NT_CREATE_ANDX, true) => {
            let name = st.creating.remove(&key);
            if let (Some(name), Some(f), 0) = (name, wire::nt_create_response_fid(s), s.status) {
                st.names.insert(f, name);
            }
        }
        (wire::SMB1_CLOSE, false) => {
            if let Some(f) = wire::close1_fid(s) {
                st.names.remove(&f);
                out.push(PipeData::close(f));
            }
        }
        (wire::SMB1_TRANSACTION, false) => {
            if let Some((f, data)) = wire::transact_nm_pipe_request(s) {
                st.reading.insert(key, f);
                out.push(PipeData::data(f, true, data));
            }
        }
        (wire::SMB1_TRANSACTION, true) => {
            let Some(f) = st.reading.remove(&key) else {
                return;
            };
            if ok {
                if let Some(data) = wire::transaction_response_data(s) {
                    out.push(PipeData::data(f, false, data));
                }
            }
        }
        (wire::SMB1_WRITE_ANDX, false) => {
            if let Some((f, data)) = wire::write_andx_request(s) {
                out.push(PipeData::data(f, true, data));
            }
        }
        (wire::SMB1_READ_ANDX, false) => {
            if let Some(f) = wire::read_andx_request_fid(s) {
                // Reads of files are no business of ours: only those of pipes are awaited, or of a
                // file written earlier in this chain (its first PDU may make it a pipe).
                let written = out.iter().any(|p| p.fid == f && !p.close);
                if written || st.pipes.contains_key(&f) || st.names.contains_key(&f) {
                    st.reading.insert(key, f);
                }
            }
        }
        (wire::SMB1_READ_ANDX, true) => {
            let Some(f) = st.reading.remove(&key) else {
                return;
            };
            if ok {
                if let Some(data) = wire::read_andx_response_data(s) {
                    out.push(PipeData::data(f, false, data));
                }
            }
        }
        _ => {}
    }
}

/// Names the pipe on the `dcerpc_calls` rows made since `before`.
fn name_rows(dce: &mut DceRpc, before: usize, name: Option<&Arc<str>>) {
    for r in dce.calls.iter_mut().skip(before) {
        r.pipe = name.cloned();
    }
}

#[cfg(test)]
mod tests;
