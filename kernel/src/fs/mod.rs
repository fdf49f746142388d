//! The namespace Keel boots with: `/` and `/tmp` in memory, `/extra_files` served from the
//! boot archive in place, and `/dev`.

pub(crate) mod pipe;

use alloc::sync::Arc;

use keel_vfs::{DevFs, MemFs, TarFs, Vfs};
use spin::Once;

use crate::arch::boot::BootInfo;
use crate::{arch::time, mm::memory, random};

static VFS: Once<Vfs> = Once::new();

/// The global namespace (set up at boot).
pub fn vfs() -> &'static Vfs {
    VFS.call_once(|| Vfs::new(Arc::new(MemFs::new(1 << 20, time::realtime_ns))))
}

/// Builds the namespace: writable memory filesystems may each use up to half of RAM.
pub fn init(info: &BootInfo) {
    let (total_pages, _) = memory::frame_stats();
    let cap = total_pages * 4096 / 2;
    let vfs = VFS.call_once(|| Vfs::new(Arc::new(MemFs::new(cap, time::realtime_ns))));
    let mount = |path: &str, fs: Arc<dyn keel_vfs::FileSystem>| {
        if let Err(e) = vfs.mount(path, fs) {
            log::error!("cannot mount {path}: {e}");
        }
    };
    mount("/tmp", Arc::new(MemFs::new(cap, time::realtime_ns)));
    mount("/dev", Arc::new(DevFs::new(random::fill, time::realtime_ns())));
    let archive: &'static [u8] = match info.initrd {
        // SAFETY: the boot module lies in identity-mapped RAM that memory::init reserved for good:
        // nothing else will ever write to it, so a shared 'static slice over it is sound.
        Some(m) => unsafe { core::slice::from_raw_parts(m.addr as *const u8, m.size as usize) },
        None => &[],
    };
    match TarFs::new(archive) {
        Ok(fs) => {
            log::info!("/extra_files: {} entries, {} KiB, served in place", fs.node_count() - 1, archive.len() / 1024);
            mount("/extra_files", Arc::new(fs));
        }
        Err(e) => {
            log::error!("the extra_files archive was rejected: {e}");
            if let Err(e) = vfs.mkdir("/", "/extra_files", false) {
                log::error!("cannot create /extra_files: {e}");
            }
        }
    }
}
