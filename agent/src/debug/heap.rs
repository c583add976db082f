//! The heap profile: jemalloc's sampled live allocations ([`allocator`](super::allocator)),
//! dumped and converted to pprof protobuf (gzipped) with function names by `jemalloc_pprof`.

/// Dumps the heap profile on a thread of its own (the dump writes and reads a temporary file).
///
/// # Errors
/// When jemalloc's profiler is off (e.g. `MALLOC_CONF=prof:false`) or the dump fails.
pub(crate) async fn collect() -> Result<Vec<u8>, String> {
    let (tx, rx) = async_channel::bounded(1);
    std::thread::Builder::new()
        .name("diagd-heap-profile".into())
        .spawn(move || {
            let _ = tx.send_blocking(dump());
        })
        .map_err(|e| format!("cannot start the heap profile thread: {e}"))?;
    rx.recv().await.map_err(|_| "the heap profile thread ended without a profile".to_owned())?
}

fn dump() -> Result<Vec<u8>, String> {
    let ctl = jemalloc_pprof::PROF_CTL
        .as_ref()
        .ok_or("heap profiling is off: jemalloc started without prof:true (check MALLOC_CONF)")?;
    // A plain thread, outside any runtime: blocking on the profiler's lock is fine here.
    let mut ctl = ctl.blocking_lock();
    if !ctl.activated() {
        return Err("heap profiling is not active (check MALLOC_CONF: prof_active)".into());
    }
    ctl.dump_pprof().map_err(|e| format!("cannot dump the heap profile: {e:#}"))
}
