package otlp

import (
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"

	"github.com/agentvault/agentvault/proxy"
)

// Names on the wire. Where an OpenTelemetry semantic convention exists it is
// used, so a collector's processors and a backend's views recognise the
// fields; agentvault's own carry its prefix. docs/audit.md lists them.
const (
	scopeName = "agentvault.audit"
	eventName = "agentvault.audit"

	attrSession    = "session.id"
	attrAction     = "agentvault.action"
	attrHost       = "server.address"
	attrPort       = "server.port"
	attrCredential = "agentvault.credential"
	attrStatus     = "http.response.status_code"
	attrMethod     = "http.request.method"
	attrScheme     = "url.scheme"
	attrPath       = "url.path"
	attrReqBytes   = "http.request.body.size"
	attrRespBytes  = "http.response.body.size"
	attrDuration   = "agentvault.duration_ms"
	attrRetried    = "agentvault.retried"
	attrRedacted   = "agentvault.redacted"
	attrWarning    = "agentvault.warning"
	attrError      = "agentvault.error"
)

// maxField bounds every string a queued record holds, so the queue's memory
// is bounded by its length: a path can be as long as a request line the
// proxy accepts.
const maxField = 1024

// bound returns r with its long strings cut to maxField bytes (copied, so the
// long original can be freed). The strings are already redacted; cutting one
// cannot reveal what the redactor replaced.
func bound(r proxy.Record) proxy.Record {
	r.Host = cut(r.Host)
	r.Path = cut(r.Path)
	r.Method = cut(r.Method)
	r.Scheme = cut(r.Scheme)
	r.Credential = cut(r.Credential)
	r.Action = proxy.Action(cut(string(r.Action)))
	r.Warning = cut(r.Warning)
	r.Error = cut(r.Error)
	return r
}

func cut(s string) string { return truncate(s, maxField) }

// truncate cuts s to at most limit bytes on a character boundary, marking
// the cut.
func truncate(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	n := limit
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strings.Clone(s[:n]) + "…"
}

// resourceAttrs describes the process every record comes from.
type resourceAttrs struct {
	hostname, version string
}

func (ra resourceAttrs) resource() *resourcepb.Resource {
	attrs := []*commonpb.KeyValue{str("service.name", "agentvault")}
	if ra.version != "" {
		attrs = append(attrs, str("service.version", ra.version))
	}
	if ra.hostname != "" {
		attrs = append(attrs, str("host.name", ra.hostname))
	}
	return &resourcepb.Resource{Attributes: attrs}
}

// request wraps one batch in the export request the collector decodes.
func (e *Exporter) request(batch []proxy.Record, observed time.Time) *collogspb.ExportLogsServiceRequest {
	recs := make([]*logspb.LogRecord, len(batch))
	for i, r := range batch {
		recs[i] = logRecord(e.cfg.Session, r, observed)
	}
	return &collogspb.ExportLogsServiceRequest{
		ResourceLogs: []*logspb.ResourceLogs{{
			Resource: e.resource.resource(),
			ScopeLogs: []*logspb.ScopeLogs{{
				Scope:      &commonpb.InstrumentationScope{Name: scopeName, Version: e.resource.version},
				LogRecords: recs,
			}},
		}},
	}
}

// logRecord turns one audit record into an OTLP log record. The session,
// action, host and port are always attributes; the rest only when the
// record has them, as in the JSONL log's meaning of 0 and "".
func logRecord(session string, r proxy.Record, observed time.Time) *logspb.LogRecord {
	t := r.Time
	if t.IsZero() {
		t = observed
	}
	attrs := []*commonpb.KeyValue{
		str(attrSession, session),
		str(attrAction, string(r.Action)),
		str(attrHost, r.Host),
		num(attrPort, int64(r.Port)),
	}
	if r.Credential != "" {
		attrs = append(attrs, str(attrCredential, r.Credential))
	}
	if r.Status != 0 {
		attrs = append(attrs, num(attrStatus, int64(r.Status)))
	}
	if r.Method != "" {
		attrs = append(attrs, str(attrMethod, r.Method))
	}
	if r.Scheme != "" {
		attrs = append(attrs, str(attrScheme, r.Scheme))
	}
	if r.Path != "" {
		attrs = append(attrs, str(attrPath, r.Path))
	}
	if r.ReqBytes != 0 {
		attrs = append(attrs, num(attrReqBytes, r.ReqBytes))
	}
	if r.RespBytes != 0 {
		attrs = append(attrs, num(attrRespBytes, r.RespBytes))
	}
	if r.Duration != 0 {
		ms := math.Round(float64(r.Duration)/float64(time.Millisecond)*10) / 10
		attrs = append(attrs, &commonpb.KeyValue{Key: attrDuration, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: ms}}})
	}
	if r.Retried {
		attrs = append(attrs, boolean(attrRetried))
	}
	if r.Redacted {
		attrs = append(attrs, boolean(attrRedacted))
	}
	if r.Warning != "" {
		attrs = append(attrs, str(attrWarning, r.Warning))
	}
	if r.Error != "" {
		attrs = append(attrs, str(attrError, r.Error))
	}
	sev, sevText := severity(r)
	return &logspb.LogRecord{
		TimeUnixNano:         unixNano(t),
		ObservedTimeUnixNano: unixNano(observed),
		SeverityNumber:       sev,
		SeverityText:         sevText,
		EventName:            eventName,
		Body:                 &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: body(r)}},
		Attributes:           attrs,
	}
}

// severity: refusals and leaks are warnings, proxy failures errors, the
// rest information.
func severity(r proxy.Record) (logspb.SeverityNumber, string) {
	switch r.Action {
	case proxy.ActionError:
		return logspb.SeverityNumber_SEVERITY_NUMBER_ERROR, "ERROR"
	case proxy.ActionDeny, proxy.ActionAuthFailed, proxy.ActionLeakBlocked:
		return logspb.SeverityNumber_SEVERITY_NUMBER_WARN, "WARN"
	}
	if r.Warning != "" || r.Error != "" {
		return logspb.SeverityNumber_SEVERITY_NUMBER_WARN, "WARN"
	}
	return logspb.SeverityNumber_SEVERITY_NUMBER_INFO, "INFO"
}

// body is a one-line reading of the record for log views that show only the
// body, built from the same redacted fields as the attributes.
func body(r proxy.Record) string {
	var b strings.Builder
	b.WriteString(string(r.Action))
	if r.Method != "" {
		b.WriteString(" " + r.Method)
	}
	b.WriteString(" ")
	if r.Scheme != "" {
		b.WriteString(r.Scheme + "://")
	}
	b.WriteString(r.Host)
	if r.Port != 0 {
		b.WriteString(":" + strconv.Itoa(r.Port))
	}
	b.WriteString(r.Path)
	if r.Status != 0 {
		b.WriteString(" " + strconv.Itoa(r.Status))
	}
	return valid(b.String())
}

// valid makes s valid UTF-8: proto3 strings must be, and a decoded path may
// hold any bytes (proto.Marshal would refuse the whole batch).
func valid(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

func str(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: valid(v)}}}
}

func num(k string, v int64) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v}}}
}

func boolean(k string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: true}}}
}

func unixNano(t time.Time) uint64 {
	if t.Before(time.Unix(0, 0)) {
		return 0
	}
	return uint64(t.UnixNano())
}
