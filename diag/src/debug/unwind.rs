//! Stack walking from inside a signal handler, for the CPU profile and the thread stacks.
//!
//! The unwinder is framehop's, reading the DWARF call-frame information (`.eh_frame` through
//! `.eh_frame_hdr`) of every object loaded in the process. Everything it needs is gathered
//! before any signal is sent ([`Unwinder::new`]): the object list comes from
//! `dl_iterate_phdr`, and the sections are read where the loader mapped them, so nothing is
//! copied or opened. During a walk nothing allocates and no lock is taken; stack memory is
//! read with `process_vm_readv` on the process itself, which fails cleanly (`EFAULT`) on an
//! address that is not mapped, so a bad unwind rule ends the walk instead of crashing.
//!
//! This is what lets samples land anywhere, libc and the vDSO included: the libgcc unwinder
//! (`_Unwind_Backtrace`) may take the loader's lock, so profilers that use it must drop the
//! samples that interrupt libc, which undercounts a process busy in system calls.
//!
//! Limits: objects loaded while a profile runs are not known to it (a frame in one ends the
//! walk there); an object unloaded while a profile runs must not be (Rust programs do not
//! unload libraries).

#![allow(unsafe_code, reason = "signal-handler stack walking reads registers, loader data and raw memory")]

use std::cell::UnsafeCell;
use std::ffi::{CStr, c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};

use framehop::{
    CacheNative, ExplicitModuleSectionInfo, FrameAddress, Module, MustNotAllocateDuringUnwind, UnwindRegsNative,
    Unwinder as _, UnwinderNative,
};

/// Deepest stack recorded; deeper ones keep their innermost frames.
pub(crate) const MAX_FRAMES: usize = 128;

/// Unwind caches, one per walk that runs at the same time (walks on more threads at once than
/// this record their innermost frame alone).
const CACHES: usize = 8;

/// A walked stack: code addresses, innermost first. The first is the interrupted instruction;
/// the others are return addresses minus one, so each points into the call instruction (the
/// address to symbolize).
#[derive(Clone, Copy)]
pub(crate) struct Stack {
    pub(crate) depth: usize,
    pub(crate) frames: [u64; MAX_FRAMES],
}

impl Stack {
    /// No frames.
    pub(crate) const EMPTY: Self = Self { depth: 0, frames: [0; MAX_FRAMES] };

    /// The recorded addresses, innermost first.
    pub(crate) fn addresses(&self) -> &[u64] {
        &self.frames[..self.depth.min(MAX_FRAMES)]
    }
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hex: Vec<String> = self.addresses().iter().map(|a| format!("{a:#x}")).collect();
        f.debug_list().entries(hex).finish()
    }
}

/// One loaded object: where it is and what it is called.
#[derive(Debug, Clone)]
pub(crate) struct Object {
    /// Its path (`/proc/self/exe`'s target for the executable, `[vdso]` for the vDSO).
    pub(crate) name: String,
    /// Lowest and one past the highest address of its loaded segments.
    pub(crate) start: u64,
    pub(crate) end: u64,
}

/// The unwinder for this process's objects, with its caches.
pub(crate) struct Unwinder {
    inner: UnwinderNative<&'static [u8], MustNotAllocateDuringUnwind>,
    objects: Vec<Object>,
    caches: Vec<(AtomicBool, UnsafeCell<CacheNative<MustNotAllocateDuringUnwind>>)>,
}

// SAFETY: the caches are only touched by the walk that set their flag (an atomic swap hands
// each to one walk at a time); the rest is read-only after construction.
unsafe impl Sync for Unwinder {}

impl std::fmt::Debug for Unwinder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unwinder").field("objects", &self.objects).finish_non_exhaustive()
    }
}

impl Unwinder {
    /// Gathers the unwind information of every object loaded now. Call it on an ordinary
    /// thread (it allocates), before the signals that walk stacks are sent.
    pub(crate) fn new() -> Self {
        let mut found: Vec<(Object, Module<&'static [u8]>)> = Vec::new();
        // SAFETY: the callback gets a valid `dl_phdr_info` for each object while the loader's
        // lock is held, and `found` outlives the call.
        unsafe { libc::dl_iterate_phdr(Some(each_object), (&raw mut found).cast()) };
        let mut inner = UnwinderNative::new();
        let mut objects = Vec::with_capacity(found.len());
        for (object, module) in found {
            inner.add_module(module);
            objects.push(object);
        }
        objects.sort_by_key(|o| o.start);
        let caches = (0..CACHES).map(|_| (AtomicBool::new(false), UnsafeCell::new(CacheNative::new_in()))).collect();
        Self { inner, objects, caches }
    }

    /// The loaded objects, by address.
    pub(crate) fn objects(&self) -> &[Object] {
        &self.objects
    }

    /// Walks the stack of the thread interrupted with `context` into `out`.
    ///
    /// # Safety
    /// `context` is the `ucontext_t` a signal handler received on this thread, and the
    /// handler is still running.
    pub(crate) unsafe fn walk(&self, context: *const c_void, out: &mut Stack) {
        out.depth = 0;
        if context.is_null() {
            return;
        }
        // SAFETY: the caller passes the handler's own, live context.
        let Some((pc, regs)) = (unsafe { registers(context.cast()) }) else { return };
        let Some((busy, cache)) = self.caches.iter().find(|(busy, _)| !busy.swap(true, Ordering::Acquire)) else {
            // Every cache is in use by walks on other threads: keep the interrupted frame.
            out.frames[0] = pc;
            out.depth = 1;
            return;
        };
        // SAFETY: the swap above gave this walk the cache alone until the flag is cleared.
        let cache = unsafe { &mut *cache.get() };
        let mut read = |address: u64| read_word(address);
        let mut frames = self.inner.iter_frames(pc, regs, cache, &mut read);
        while out.depth < MAX_FRAMES {
            match frames.next() {
                Ok(Some(frame)) => {
                    out.frames[out.depth] = match frame {
                        FrameAddress::InstructionPointer(_) => frame.address(),
                        FrameAddress::ReturnAddress(_) => frame.address_for_lookup(),
                    };
                    out.depth += 1;
                }
                Ok(None) | Err(_) => break,
            }
        }
        if out.depth == 0 {
            out.frames[0] = pc;
            out.depth = 1;
        }
        // Release: this walk's cache writes happen before the next walk takes it.
        busy.store(false, Ordering::Release);
    }
}

/// The interrupted instruction and the registers the unwinder starts from.
///
/// # Safety
/// `context` points at a live `ucontext_t`.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
unsafe fn registers(context: *const libc::ucontext_t) -> Option<(u64, UnwindRegsNative)> {
    // SAFETY: the caller guarantees a live context; the register array is plain data.
    let gregs = unsafe { &(*context).uc_mcontext.gregs };
    let (ip, sp, bp) = (gregs[libc::REG_RIP as usize], gregs[libc::REG_RSP as usize], gregs[libc::REG_RBP as usize]);
    Some((ip as u64, UnwindRegsNative::new(ip as u64, sp as u64, bp as u64)))
}

/// The interrupted instruction and the registers the unwinder starts from.
///
/// # Safety
/// `context` points at a live `ucontext_t`.
#[cfg(all(target_os = "linux", target_arch = "aarch64"))]
unsafe fn registers(context: *const libc::ucontext_t) -> Option<(u64, UnwindRegsNative)> {
    // SAFETY: the caller guarantees a live context; the registers are plain data.
    let mcontext = unsafe { &(*context).uc_mcontext };
    let (pc, lr, sp, fp) = (mcontext.pc, mcontext.regs[30], mcontext.sp, mcontext.regs[29]);
    Some((pc, UnwindRegsNative::new(lr, sp, fp)))
}

/// Reads the 8 bytes at `address` of this process, or fails if they are not mapped.
/// Async-signal-safe: one system call, no allocation.
fn read_word(address: u64) -> Result<u64, ()> {
    let mut value = 0u64;
    let local = libc::iovec { iov_base: (&raw mut value).cast(), iov_len: 8 };
    let remote = libc::iovec { iov_base: address as *mut c_void, iov_len: 8 };
    // SAFETY: the local buffer is `value`, 8 writable bytes; the kernel checks the remote
    // range and answers EFAULT instead of faulting.
    let read = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
    if read == 8 { Ok(value) } else { Err(()) }
}

const PT_GNU_EH_FRAME: u32 = 0x6474_e550;

/// `dl_iterate_phdr`'s callback: records one object and its unwind sections.
unsafe extern "C" fn each_object(info: *mut libc::dl_phdr_info, _size: usize, data: *mut c_void) -> c_int {
    // SAFETY: `dl_iterate_phdr` passes a valid info; `data` is the `found` vector of `new`.
    let (info, found) = unsafe { (&*info, &mut *data.cast::<Vec<(Object, Module<&'static [u8]>)>>()) };
    if info.dlpi_phdr.is_null() || info.dlpi_phnum == 0 {
        return 0;
    }
    // SAFETY: the loader's program headers for this object: `dlpi_phnum` entries.
    let headers = unsafe { std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) };
    let bias = info.dlpi_addr;
    let loads: Vec<&libc::Elf64_Phdr> = headers.iter().filter(|h| h.p_type == libc::PT_LOAD).collect();
    let (Some(start), Some(end)) =
        (loads.iter().map(|h| bias + h.p_vaddr).min(), loads.iter().map(|h| bias + h.p_vaddr + h.p_memsz).max())
    else {
        return 0;
    };
    let name = object_name(info);
    let object = Object { name: name.clone(), start, end };
    // A segment's bytes as loaded: mapped for as long as the object stays loaded.
    // SAFETY: `[bias + vaddr, + memsz)` of a loaded segment is mapped and readable (the
    // executable segment too: x86_64 and aarch64 Linux map code readable).
    let bytes = |vaddr: u64, len: u64| unsafe { std::slice::from_raw_parts((bias + vaddr) as *const u8, len as usize) };
    let mut sections = ExplicitModuleSectionInfo { base_svma: 0, ..Default::default() };
    if let Some(text) = loads.iter().find(|h| h.p_flags & libc::PF_X != 0) {
        sections.text_svma = Some(text.p_vaddr..text.p_vaddr + text.p_memsz);
        sections.text = Some(bytes(text.p_vaddr, text.p_memsz));
    }
    if let Some(hdr) = headers.iter().find(|h| h.p_type == PT_GNU_EH_FRAME) {
        sections.eh_frame_hdr_svma = Some(hdr.p_vaddr..hdr.p_vaddr + hdr.p_memsz);
        let hdr_bytes = bytes(hdr.p_vaddr, hdr.p_memsz);
        sections.eh_frame_hdr = Some(hdr_bytes);
        // `.eh_frame` runs from the address `.eh_frame_hdr` names to (at most) the end of
        // the segment holding it.
        if let Some(eh_frame) = eh_frame_address(hdr_bytes, bias + hdr.p_vaddr) {
            let vaddr = eh_frame.wrapping_sub(bias);
            if let Some(segment) = loads.iter().find(|h| h.p_vaddr <= vaddr && vaddr < h.p_vaddr + h.p_memsz) {
                let len = segment.p_vaddr + segment.p_memsz - vaddr;
                sections.eh_frame_svma = Some(vaddr..vaddr + len);
                sections.eh_frame = Some(bytes(vaddr, len));
            }
        }
    }
    found.push((object, Module::new(name, start..end, bias, sections)));
    0
}

/// The address of `.eh_frame`, from the header of `.eh_frame_hdr` at `hdr_address`.
fn eh_frame_address(hdr: &[u8], hdr_address: u64) -> Option<u64> {
    let [1, encoding, _, _, a, b, c, d, ..] = *hdr else { return None };
    let sdata4 = i64::from(i32::from_le_bytes([a, b, c, d]));
    let udata4 = u64::from(u32::from_le_bytes([a, b, c, d]));
    match encoding {
        0x1b => Some((hdr_address + 4).wrapping_add_signed(sdata4)), // pcrel | sdata4
        0x3b => Some(hdr_address.wrapping_add_signed(sdata4)),       // datarel | sdata4
        0x03 => Some(udata4),                                        // udata4
        0x0b => Some(sdata4 as u64),                                 // sdata4
        _ => None,
    }
}

fn object_name(info: &libc::dl_phdr_info) -> String {
    let name = if info.dlpi_name.is_null() {
        String::new()
    } else {
        // SAFETY: a non-null `dlpi_name` is a NUL-terminated string owned by the loader.
        unsafe { CStr::from_ptr(info.dlpi_name) }.to_string_lossy().into_owned()
    };
    match name.as_str() {
        "" => std::fs::read_link("/proc/self/exe").map_or_else(|_| "[executable]".into(), |p| p.display().to_string()),
        "linux-vdso.so.1" => "[vdso]".into(),
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eh_frame_pointer_encodings() {
        let hdr = [1, 0x1b, 0x03, 0x3b, 0x10, 0, 0, 0];
        assert_eq!(eh_frame_address(&hdr, 0x1000), Some(0x1014));
        assert_eq!(eh_frame_address(&[1, 0x03, 0, 0, 0x78, 0x56, 0x34, 0x12], 0), Some(0x1234_5678));
        assert_eq!(eh_frame_address(&[2, 0x1b, 0, 0, 0, 0, 0, 0], 0), None, "unknown version");
        assert_eq!(eh_frame_address(&[1, 0x1b], 0), None, "short");
    }

    #[test]
    fn the_executable_and_libc_are_known_and_unmapped_reads_fail() {
        let unwinder = Unwinder::new();
        let here = the_executable_and_libc_are_known_and_unmapped_reads_fail as fn() as usize as u64;
        assert!(unwinder.objects().iter().any(|o| o.start <= here && here < o.end), "{:?}", unwinder.objects());
        assert!(unwinder.objects().iter().any(|o| o.name.contains("libc")), "{:?}", unwinder.objects());
        assert_eq!(read_word(0), Err(()));
        let value = 0x5eed_u64;
        assert_eq!(read_word(&raw const value as u64), Ok(0x5eed));
    }
}
