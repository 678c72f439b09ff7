//! MIT-SHM segments: memory shared with the X server, which writes captured pixels
//! straight into it (no copy through the socket, no allocation per frame).
//!
//! The one place in the server with `unsafe`: mapping the segment. The safe API around
//! it is a read-only byte slice; [`super::x11`] asks the X server to write into a
//! segment only while it holds the segment's only `Arc` and waits for the reply, so no
//! reader ever sees the bytes change under it.
#![allow(unsafe_code)]

use std::fs::File;
use std::os::fd::OwnedFd;

use memmap2::{Mmap, MmapOptions};
use rustix::fs::{memfd_create, MemfdFlags};
use x11rb::connection::Connection;
use x11rb::protocol::shm::{self, ConnectionExt as _};
use x11rb::rust_connection::RustConnection;

/// One attached segment of `len` bytes.
pub struct Segment {
    map: Mmap,
    id: shm::Seg,
}

impl Segment {
    /// Makes a memory file of `len` bytes, maps it read-only, and attaches it to the X
    /// server (MIT-SHM 1.2 `AttachFd`). Fails if the server refuses (a remote display,
    /// MIT-SHM off, an old server).
    pub fn attach(conn: &RustConnection, len: usize) -> Result<Segment, String> {
        let fd = memfd_create("deskcast-capture", MemfdFlags::CLOEXEC)
            .map_err(|e| format!("memfd_create; {e}"))?;
        let file = File::from(fd);
        file.set_len(len as u64)
            .map_err(|e| format!("size the segment; {e}"))?;
        // SAFETY: the file is a fresh memfd of exactly `len` bytes that nobody else can
        // resize (only this process and the X server hold it, and the server only
        // writes into it). The map is read-only on our side, and the server writes only
        // during a ShmGetImage that the owner waits for while no slice of this map is
        // handed out (see `X11Capture::capture`), so reads never race with writes.
        let map = unsafe { MmapOptions::new().len(len).map(&file) }
            .map_err(|e| format!("map the segment; {e}"))?;
        let id = conn
            .generate_id()
            .map_err(|e| format!("allocate an id; {e}"))?;
        conn.shm_attach_fd(id, OwnedFd::from(file), false)
            .map_err(|e| format!("attach; {e}"))?
            .check()
            .map_err(|e| format!("attach refused; {e}"))?;
        Ok(Segment { map, id })
    }

    /// The segment's X id.
    pub fn id(&self) -> shm::Seg {
        self.id
    }

    /// The segment's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }
}
