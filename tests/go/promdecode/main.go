// Command promdecode reads a delimited io.prometheus.client.MetricFamily stream (diag's
// protobuf exposition) on stdin with Prometheus' reference decoder (prometheus/common expfmt,
// client_model) and prints it in the 0.0.4 text format with client_golang's own text writer.
// Consecutive messages of one family (a family split across chunks) are merged first, as a
// scraper reads them. On stderr: the number of messages and of families.
//
// Build in GOPATH mode over Debian's Go packages:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go run ./tests/go/promdecode < metrics.pb
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

func main() {
	dec := expfmt.NewDecoder(bufio.NewReader(os.Stdin), expfmt.FmtProtoDelim)
	var families []*dto.MetricFamily
	messages := 0
	for {
		mf := &dto.MetricFamily{}
		err := dec.Decode(mf)
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "promdecode: message %d: %v\n", messages, err)
			os.Exit(1)
		}
		messages++
		if n := len(families); n > 0 && families[n-1].GetName() == mf.GetName() {
			last := families[n-1]
			if last.GetType() != mf.GetType() || last.GetHelp() != mf.GetHelp() {
				fmt.Fprintf(os.Stderr, "promdecode: family %q continues with another type or help\n", mf.GetName())
				os.Exit(1)
			}
			last.Metric = append(last.Metric, mf.Metric...)
			continue
		}
		families = append(families, mf)
	}
	out := bufio.NewWriter(os.Stdout)
	mode := ""
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	for _, mf := range families {
		switch mode {
		case "native":
			writeNative(out, mf)
			continue
		case "exemplars":
			writeExemplars(out, mf)
			continue
		case "names":
			writeNames(out, mf)
			continue
		}
		if _, err := expfmt.MetricFamilyToText(out, mf); err != nil {
			fmt.Fprintf(os.Stderr, "promdecode: %s: %v\n", mf.GetName(), err)
			os.Exit(1)
		}
	}
	if err := out.Flush(); err != nil {
		fmt.Fprintf(os.Stderr, "promdecode: %v\n", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "messages %d families %d\n", messages, len(families))
}

// labelText is `name="value",...`, sorted.
func labelText(pairs []*dto.LabelPair) string {
	var labels []string
	for _, l := range pairs {
		labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
	}
	sort.Strings(labels)
	return strings.Join(labels, ",")
}

// writeExemplars prints the exemplars of mf's counters and histogram buckets, one line each.
func writeExemplars(out io.Writer, mf *dto.MetricFamily) {
	write := func(m *dto.Metric, le string, e *dto.Exemplar) {
		if e == nil {
			return
		}
		ts := int64(-1)
		if e.Timestamp != nil {
			ts = e.Timestamp.GetSeconds()*1000 + int64(e.Timestamp.GetNanos())/1000000
		}
		fmt.Fprintf(out, "%s{%s} le=%s {%s} %g %d\n", mf.GetName(), labelText(m.Label), le, labelText(e.Label), e.GetValue(), ts)
	}
	for _, m := range mf.Metric {
		if c := m.GetCounter(); c != nil {
			write(m, "", c.Exemplar)
		}
		if h := m.GetHistogram(); h != nil {
			for _, b := range h.Bucket {
				write(m, fmt.Sprintf("%g", b.GetUpperBound()), b.Exemplar)
			}
		}
	}
}

// writeNative prints the native histogram series of mf, one line each.
func writeNative(out io.Writer, mf *dto.MetricFamily) {
	for _, m := range mf.Metric {
		h := m.GetHistogram()
		if h == nil || h.Schema == nil {
			continue
		}
		var labels []string
		for _, l := range m.Label {
			labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
		}
		sort.Strings(labels)
		fmt.Fprintf(out, "%s{%s} schema=%d zero_threshold=%g zero_count=%d count=%d sum=%g negative=%s positive=%s\n",
			mf.GetName(), strings.Join(labels, ","), h.GetSchema(), h.GetZeroThreshold(), h.GetZeroCount(),
			h.GetSampleCount(), h.GetSampleSum(), buckets(h.NegativeSpan, h.NegativeDelta),
			buckets(h.PositiveSpan, h.PositiveDelta))
	}
}

// buckets rebuilds "key:count,..." from spans and deltas as Prometheus reads them.
func buckets(spans []*dto.BucketSpan, deltas []int64) string {
	var out []string
	key, count, i := int32(0), int64(0), 0
	for n, s := range spans {
		if n == 0 {
			key = s.GetOffset()
		} else {
			key += s.GetOffset()
		}
		for j := uint32(0); j < s.GetLength(); j++ {
			if i >= len(deltas) {
				fmt.Fprintf(os.Stderr, "promdecode: more span buckets than deltas\n")
				os.Exit(1)
			}
			count += deltas[i]
			i++
			out = append(out, fmt.Sprintf("%d:%d", key, count))
			key++
		}
	}
	if i != len(deltas) {
		fmt.Fprintf(os.Stderr, "promdecode: %d deltas for %d span buckets\n", len(deltas), i)
		os.Exit(1)
	}
	return strings.Join(out, ",")
}

// writeNames prints, per metric, its family name and label names as decoded:
// `family<TAB>label,label`.
func writeNames(out io.Writer, mf *dto.MetricFamily) {
	for _, m := range mf.Metric {
		var names []string
		for _, l := range m.Label {
			names = append(names, l.GetName())
		}
		fmt.Fprintf(out, "%s\t%s\n", mf.GetName(), strings.Join(names, ","))
	}
}
