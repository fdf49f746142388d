//! Checked access to a guest's linear memory: every pointer and length from the guest goes
//! through here, so a bad one is `EFAULT`, never a host fault.
use alloc::vec::Vec;

use crate::types::{errno, Errno};

/// A guest memory view.
pub struct Mem<'a>(pub &'a mut [u8]);

/// Most bytes one read or write call moves (see [`Mem::iovecs`]).
pub const MAX_IO_PER_CALL: u32 = 4 << 20;

/// One `iovec`/`ciovec`: a guest buffer.
#[derive(Clone, Copy, Debug)]
pub struct IoVec {
    pub ptr: u32,
    pub len: u32,
}

impl Mem<'_> {
    fn range(&self, ptr: u32, len: usize) -> Result<core::ops::Range<usize>, Errno> {
        let start = ptr as usize;
        let end = start.checked_add(len).ok_or(errno::FAULT)?;
        if end > self.0.len() {
            return Err(errno::FAULT);
        }
        Ok(start..end)
    }

    /// The guest bytes `[ptr, ptr+len)`.
    pub fn slice(&self, ptr: u32, len: u32) -> Result<&[u8], Errno> {
        let r = self.range(ptr, len as usize)?;
        Ok(&self.0[r])
    }

    /// The guest bytes `[ptr, ptr+len)`, writable.
    pub fn slice_mut(&mut self, ptr: u32, len: u32) -> Result<&mut [u8], Errno> {
        let r = self.range(ptr, len as usize)?;
        Ok(&mut self.0[r])
    }

    pub fn write(&mut self, ptr: u32, data: &[u8]) -> Result<(), Errno> {
        let r = self.range(ptr, data.len())?;
        self.0[r].copy_from_slice(data);
        Ok(())
    }

    pub fn u8(&self, ptr: u32) -> Result<u8, Errno> {
        Ok(self.slice(ptr, 1)?[0])
    }

    pub fn u16(&self, ptr: u32) -> Result<u16, Errno> {
        let s = self.slice(ptr, 2)?;
        Ok(u16::from_le_bytes([s[0], s[1]]))
    }

    pub fn u32(&self, ptr: u32) -> Result<u32, Errno> {
        let s = self.slice(ptr, 4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }

    pub fn u64(&self, ptr: u32) -> Result<u64, Errno> {
        let s = self.slice(ptr, 8)?;
        let mut b = [0u8; 8];
        b.copy_from_slice(s);
        Ok(u64::from_le_bytes(b))
    }

    pub fn put_u8(&mut self, ptr: u32, v: u8) -> Result<(), Errno> {
        self.write(ptr, &[v])
    }

    pub fn put_u16(&mut self, ptr: u32, v: u16) -> Result<(), Errno> {
        self.write(ptr, &v.to_le_bytes())
    }

    pub fn put_u32(&mut self, ptr: u32, v: u32) -> Result<(), Errno> {
        self.write(ptr, &v.to_le_bytes())
    }

    pub fn put_u64(&mut self, ptr: u32, v: u64) -> Result<(), Errno> {
        self.write(ptr, &v.to_le_bytes())
    }

    /// A UTF-8 path argument.
    pub fn str(&self, ptr: u32, len: u32) -> Result<&str, Errno> {
        core::str::from_utf8(self.slice(ptr, len)?).map_err(|_| errno::ILSEQ)
    }

    /// An array of iovecs; checks that the array itself lies in memory (each buffer is checked
    /// when used).
    pub fn iovecs(&self, ptr: u32, count: u32) -> Result<Vec<IoVec>, Errno> {
        let bytes = (count as usize).checked_mul(8).ok_or(errno::FAULT)?;
        let r = self.range(ptr, bytes)?;
        let raw = &self.0[r];
        let mut v = Vec::new();
        v.try_reserve(count as usize).map_err(|_| errno::NOMEM)?;
        // At most MAX_IO_PER_CALL bytes in all: one call's kernel work stays short (Ctrl-C and
        // other tasks wait at most that long) and its count fits in a u32. The rest is a short
        // read or write, which callers repeat (as POSIX allows and libcs do).
        let mut budget = MAX_IO_PER_CALL;
        for c in raw.as_chunks::<8>().0 {
            if budget == 0 {
                break;
            }
            let len = u32::from_le_bytes([c[4], c[5], c[6], c[7]]).min(budget);
            budget -= len;
            v.push(IoVec { ptr: u32::from_le_bytes([c[0], c[1], c[2], c[3]]), len });
        }
        Ok(v)
    }
}
