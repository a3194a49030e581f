//! What a flow carries, below both the flow table and the decoders: `App`, the application the
//! flows table names in its `app` column, and `DecoderKind`, which decoder reads a stream. They
//! differ because some decoders serve another application (SMB carries DCE/RPC) or none (DNS
//! over TCP is read for the names it teaches).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum App {
    OncRpc,
    DceRpc,
    Tls,
}

impl App {
    pub fn name(self) -> &'static str {
        match self {
            App::OncRpc => "oncrpc",
            App::DceRpc => "dcerpc",
            App::Tls => "tls",
        }
    }
}

/// Which decoder a stream goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecoderKind {
    OncRpc,
    DceRpc,
    Tls,
    /// DNS over TCP: read for the names it teaches; the flow's `app` stays unset.
    Dns,
    /// SMB on 445 or 139, for the DCE/RPC its named pipes carry.
    Smb,
}

impl DecoderKind {
    pub fn app(self) -> Option<App> {
        match self {
            DecoderKind::OncRpc => Some(App::OncRpc),
            DecoderKind::DceRpc | DecoderKind::Smb => Some(App::DceRpc),
            DecoderKind::Tls => Some(App::Tls),
            DecoderKind::Dns => None,
        }
    }
}
