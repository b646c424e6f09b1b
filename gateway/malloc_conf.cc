// jemalloc (the gateway's malloc, gateway/BUILD.bazel):
// - background_thread: freed memory goes back to the system from jemalloc's
//   own threads rather than from whichever thread happens to allocate:
//   otherwise the SIP thread pays an madvise() of about 0.1 ms every few
//   calls, on the path of call setup.
// - thp, metadata_thp: its memory is backed by transparent huge pages
//   where the kernel allows them (madvise(MADV_HUGEPAGE)). sofia-sip keeps
//   each transaction's messages for up to 32 s (timer D), so a gateway's
//   heap grows for its first half-minute of calls; in 4 KiB pages that was
//   about 18 page faults per call on the SIP thread, in call setup
//   (docs/benchmarks.md, "Huge pages").
// Read by jemalloc at start-up (MALLOC_CONF in the environment overrides
// it, e.g. MALLOC_CONF=thp:default); ignored by the sanitizers' allocators.
extern "C" {
extern const char* malloc_conf;
const char* malloc_conf = "background_thread:true,thp:always,metadata_thp:always";
}
