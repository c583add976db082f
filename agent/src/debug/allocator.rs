//! The global allocator: jemalloc with its heap profiler on, so `heap` profiles show the live
//! allocations (sampled) with the stacks that made them.

/// jemalloc, built with profiling (`tikv-jemallocator`'s `profiling` feature).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's startup options, in the `malloc_conf` symbol it reads before `main` runs (it
/// declares a weak default; this strong definition replaces it): profiling on and active from
/// the first allocation, one sample per 16 KiB allocated on average (`lg_prof_sample:14`),
/// and every sample also counted for good (`prof_accum:true`, the `allocs` profile);
/// diagd allocates little, so sampling costs little and a profile still holds enough samples to
/// show where memory is. `MALLOC_CONF` in the environment overrides these (jemalloc reads it
/// after this symbol).
#[allow(unsafe_code, reason = "jemalloc reads its startup options from this exported symbol, the only way to set them")]
// SAFETY: jemalloc declares `extern const char *malloc_conf`; this static has that layout (a
// nullable pointer: `Option<&u8>`) and points at a NUL-terminated string that lives for the whole
// program and is never written. Nothing else in the program defines `malloc_conf`.
#[unsafe(export_name = "malloc_conf")]
#[used]
static MALLOC_CONF: Option<&u8> = Some(&b"prof:true,prof_active:true,lg_prof_sample:14,prof_accum:true\0"[0]);
