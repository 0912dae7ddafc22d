package otlp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	"google.golang.org/protobuf/proto"

	"github.com/agentvault/agentvault/proxy"
)

// Backoff between attempts: doubling from minBackoff to maxBackoff, with
// jitter so a fleet of agents does not retry in step.
const (
	minBackoff = 200 * time.Millisecond
	maxBackoff = 5 * time.Second
	// maxResponse bounds what is read of a collector's answer.
	maxResponse = 64 << 10
)

// run is the exporter's goroutine: it fills a batch from the queue and
// exports it when full or when its oldest record has waited BatchDelay; on
// Shutdown it exports what is left.
func (e *Exporter) run() {
	defer close(e.done)
	batch := make([]proxy.Record, 0, e.cfg.BatchSize)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	flush := func() {
		timer.Stop()
		if len(batch) > 0 {
			e.export(batch)
			batch = batch[:0]
		}
	}
	for {
		select {
		case r := <-e.queue:
			batch = append(batch, r)
			if len(batch) == 1 {
				timer.Reset(e.cfg.BatchDelay)
			}
			if len(batch) >= e.cfg.BatchSize {
				flush()
			}
		case <-timer.C:
			flush()
		case <-e.closing:
			// Add refuses records from now on, so the queue only shrinks.
			for {
				select {
				case r := <-e.queue:
					batch = append(batch, r)
					if len(batch) >= e.cfg.BatchSize {
						flush()
					}
				default:
					flush()
					return
				}
			}
		}
	}
}

// export sends one batch, retrying what may succeed later (429, 5xx, network
// errors) with backoff for at most RetryFor. Once Shutdown's deadline has
// passed it sends nothing: the batch's records stay counted as unsent.
func (e *Exporter) export(batch []proxy.Record) {
	n := int64(len(batch))
	if e.ctx.Err() != nil {
		return
	}
	body, err := proto.Marshal(e.request(batch, time.Now()))
	if err != nil {
		e.fail(n, "encoding: "+err.Error())
		return
	}
	giveUp := time.Now().Add(e.cfg.RetryFor)
	backoff := minBackoff
	for {
		out := e.post(body)
		if out.err == "" {
			e.delivered.Add(n - out.rejected)
			if out.rejected > 0 {
				e.fail(out.rejected, out.rejectMsg)
			}
			return
		}
		if e.ctx.Err() != nil {
			// Shutdown gave up on this attempt: keep the reason the
			// previous one failed for, if any, rather than "canceled".
			return
		}
		e.setErr(out.err)
		if !out.retry {
			e.failed.Add(n)
			return
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		if out.after > 0 {
			wait = out.after
		}
		if time.Now().Add(wait).After(giveUp) {
			e.fail(n, out.err+fmt.Sprintf(" (retries stop after %s)", e.cfg.RetryFor))
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-e.ctx.Done():
			t.Stop()
			return
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

func (e *Exporter) fail(n int64, why string) {
	e.failed.Add(n)
	e.setErr(why)
}

// outcome is one attempt's result. err is "" on success.
type outcome struct {
	err       string
	retry     bool
	after     time.Duration // the collector's Retry-After
	rejected  int64         // records a 2xx answer said it rejected
	rejectMsg string
}

// post makes one export attempt.
func (e *Exporter) post(body []byte) outcome {
	ctx, cancel := context.WithTimeout(e.ctx, e.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(body))
	if err != nil {
		return outcome{err: "request: " + unwrapURLError(err).Error()}
	}
	for k, v := range e.cfg.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("User-Agent", "agentvault")
	e.attempts.Add(1)
	res, err := e.client.Do(req)
	if err != nil {
		return outcome{err: netReason(err, e.cfg.Timeout), retry: true}
	}
	defer res.Body.Close()
	data, rerr := io.ReadAll(io.LimitReader(res.Body, maxResponse))
	switch {
	case res.StatusCode >= 200 && res.StatusCode < 300:
		return accepted(data, rerr)
	case res.StatusCode == http.StatusTooManyRequests || res.StatusCode >= 500:
		return outcome{err: "collector answered " + res.Status, retry: true, after: retryAfter(res.Header.Get("Retry-After"), e.cfg.RetryFor)}
	case res.StatusCode == http.StatusNotFound && !strings.HasSuffix(req.URL.Path, "/v1/logs"):
		return outcome{err: "collector answered " + res.Status + " (an endpoint with a path is used as written: does it need /v1/logs?)"}
	case res.StatusCode >= 300 && res.StatusCode < 400:
		return outcome{err: "collector answered " + res.Status + " (redirects are not followed)"}
	}
	return outcome{err: "collector answered " + res.Status}
}

// accepted reads a 2xx answer: an ExportLogsServiceResponse whose
// partial_success may say some records were rejected. An empty or
// unreadable body is success (some collectors send nothing, or JSON).
func accepted(data []byte, readErr error) outcome {
	if readErr != nil || len(data) == 0 {
		return outcome{}
	}
	var resp collogspb.ExportLogsServiceResponse
	if proto.Unmarshal(data, &resp) != nil {
		return outcome{}
	}
	ps := resp.GetPartialSuccess()
	if ps.GetRejectedLogRecords() <= 0 {
		return outcome{}
	}
	msg := fmt.Sprintf("collector rejected %d records", ps.GetRejectedLogRecords())
	if m := printable(ps.GetErrorMessage(), 200); m != "" {
		msg += ": " + m
	}
	return outcome{rejected: ps.GetRejectedLogRecords(), rejectMsg: msg}
}

// netReason words a transport error without the URL (it may hold a query
// the user did not want in a CI log).
func netReason(err error, timeout time.Duration) string {
	err = unwrapURLError(err)
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return fmt.Sprintf("no answer within %s", timeout)
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Op + ": " + oe.Err.Error()
	}
	return err.Error()
}

// retryAfter reads a Retry-After of seconds or an HTTP date, capped at limit.
func retryAfter(v string, limit time.Duration) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if s, err := strconv.Atoi(v); err == nil {
		d = time.Duration(s) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = time.Until(t)
	}
	return max(0, min(d, limit))
}

// printable keeps a collector's message to one short line of printable text.
func printable(s string, limit int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '\uFFFD' {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, " "))
	s = strings.Join(strings.Fields(s), " ")
	return truncate(s, limit)
}
