package otlp

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/agentvault/agentvault/proxy"
)

var benchRecord = proxy.Record{
	Time: t0, Action: proxy.ActionInject, Method: "POST", Scheme: "https", Host: "api.anthropic.com", Port: 443,
	Path: "/v1/messages", Credential: "anthropic", Status: 200, ReqBytes: 5123, RespBytes: 20480, Duration: 812 * time.Millisecond,
}

// BenchmarkAdd is the cost the proxy's record hook pays per record, with a
// local collector taking the batches.
func BenchmarkAdd(b *testing.B) {
	rc := newReceiver(b, nil)
	e, err := New(Config{Endpoint: rc.URL, Session: "av-00000000"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			e.Add(benchRecord)
		}
	})
	b.StopTimer()
	shutdown(e, 10*time.Second)
}

// BenchmarkEncodeBatch is the exporter goroutine's cost to encode one full
// batch (reported per record).
func BenchmarkEncodeBatch(b *testing.B) {
	e := &Exporter{cfg: Config{Session: "av-00000000"}, resource: resourceAttrs{hostname: "runner"}}
	batch := make([]proxy.Record, DefaultBatchSize)
	for i := range batch {
		batch[i] = benchRecord
	}
	b.ReportAllocs()
	var size int
	for i := 0; i < b.N; i++ {
		body, err := proto.Marshal(e.request(batch, t0))
		if err != nil {
			b.Fatal(err)
		}
		size = len(body)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/record")
	b.ReportMetric(float64(size)/float64(len(batch)), "bytes/record")
}
