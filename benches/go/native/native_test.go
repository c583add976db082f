// Histogram observe in Go's client_golang, for the native histogram table of BENCHMARKS.md:
// native only (bucket factor 1.1: schema 3), native with the default classic buckets, and
// classic only; one series, one goroutine, the values of diag's hot-path groups.
//
// Built in GOPATH mode over Debian's golang-github-prometheus-client-golang-dev; run by
// `cargo bench -p diag-benches` when Go and that package are present.
package native

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// The values of benches/src/workload.rs OBSERVATIONS, cycled.
var values = [8]float64{0.003, 0.008, 0.02, 0.07, 0.2, 0.7, 3.0, 12.0}

func observe(b *testing.B, h prometheus.Histogram) {
	for i := 0; i < b.N; i++ {
		h.Observe(values[i&7])
	}
}

func BenchmarkNative(b *testing.B) {
	observe(b, prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "h", Help: "h", NativeHistogramBucketFactor: 1.1,
	}))
}

func BenchmarkNativeAndClassic(b *testing.B) {
	observe(b, prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "h", Help: "h", Buckets: prometheus.DefBuckets, NativeHistogramBucketFactor: 1.1,
	}))
}

func BenchmarkClassic(b *testing.B) {
	observe(b, prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "h", Help: "h", Buckets: prometheus.DefBuckets,
	}))
}
