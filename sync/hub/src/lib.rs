//! The city's hub (work in progress: see `sync/PROTOCOL.md` for what it will do).
