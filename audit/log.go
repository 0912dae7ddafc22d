// Package audit writes the session audit log (JSON Lines, docs/audit.md),
// aggregates proxy records into the exit summary and renders that summary.
package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"sync"
	"time"

	"github.com/agentvault/agentvault/proxy"
)

// tsLayout keeps exactly six fractional digits so lines sort and diff cleanly;
// RFC3339Nano would drop trailing zeros and vary the width.
const tsLayout = "2006-01-02T15:04:05.000000Z07:00"

// Entry is one audit log line. Field order is the order of docs/audit.md and
// is part of the contract: tools downstream may rely on it.
type Entry struct {
	Time       time.Time `json:"-"` // "ts", always written in UTC with microseconds
	Session    string    `json:"session"`
	Seq        int64     `json:"seq"`
	Action     string    `json:"action"`
	Method     string    `json:"method"`
	Scheme     string    `json:"scheme"`
	Host       string    `json:"host"`
	Port       int       `json:"port"`
	Path       string    `json:"path"`
	Credential string    `json:"credential"`
	Status     int       `json:"status"`
	ReqBytes   int64     `json:"req_bytes"`
	RespBytes  int64     `json:"resp_bytes"`
	DurationMS float64   `json:"duration_ms"`
	Retried    bool      `json:"retried"`
	Redacted   bool      `json:"redacted"`
	Warning    string    `json:"warning"`
	Error      string    `json:"error"`
}

// entryFields has Entry's fields without its methods, so the wire structs
// below can embed it without recursing into MarshalJSON/UnmarshalJSON.
type entryFields Entry

// NewEntry converts a proxy record into the log line it becomes.
func NewEntry(session string, seq int64, r proxy.Record) Entry {
	t := r.Time
	if t.IsZero() {
		t = time.Now()
	}
	return Entry{
		Time:       t.UTC(),
		Session:    session,
		Seq:        seq,
		Action:     string(r.Action),
		Method:     r.Method,
		Scheme:     r.Scheme,
		Host:       r.Host,
		Port:       r.Port,
		Path:       r.Path,
		Credential: r.Credential,
		Status:     r.Status,
		ReqBytes:   r.ReqBytes,
		RespBytes:  r.RespBytes,
		DurationMS: math.Round(float64(r.Duration)/float64(time.Millisecond)*10) / 10,
		Retried:    r.Retried,
		Redacted:   r.Redacted,
		Warning:    r.Warning,
		Error:      r.Error,
	}
}

// Record converts a log line back into the record it came from (the
// duration is only as precise as the log's 0.1 ms).
func (e Entry) Record() proxy.Record {
	return proxy.Record{
		Time:       e.Time,
		Action:     proxy.Action(e.Action),
		Method:     e.Method,
		Scheme:     e.Scheme,
		Host:       e.Host,
		Port:       e.Port,
		Path:       e.Path,
		Credential: e.Credential,
		Status:     e.Status,
		ReqBytes:   e.ReqBytes,
		RespBytes:  e.RespBytes,
		Duration:   time.Duration(e.DurationMS * float64(time.Millisecond)),
		Retried:    e.Retried,
		Redacted:   e.Redacted,
		Warning:    e.Warning,
		Error:      e.Error,
	}
}

// MarshalJSON writes "ts" first, then the remaining fields in the documented order.
func (e Entry) MarshalJSON() ([]byte, error) {
	b, err := e.appendLine(nil)
	if err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b, []byte("\n")), nil
}

// UnmarshalJSON reads a line written by MarshalJSON; "ts" must be RFC 3339.
func (e *Entry) UnmarshalJSON(b []byte) error {
	var w struct {
		TS *string `json:"ts"`
		*entryFields
	}
	w.entryFields = (*entryFields)(e)
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	if w.TS == nil {
		return fmt.Errorf("missing \"ts\"")
	}
	t, err := time.Parse(time.RFC3339Nano, *w.TS)
	if err != nil {
		return fmt.Errorf("bad \"ts\": not an RFC 3339 time")
	}
	e.Time = t
	return nil
}

// appendLine appends the JSON line with its newline. HTML escaping is off so
// hosts and paths stay greppable as written.
func (e Entry) appendLine(dst []byte) ([]byte, error) {
	w := struct {
		TS string `json:"ts"`
		entryFields
	}{e.Time.UTC().Format(tsLayout), entryFields(e)}
	buf := bytes.NewBuffer(dst)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(w); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Log appends audit lines to a file. A nil *Log discards records, so callers
// without --audit-log need no special case.
type Log struct {
	session string

	mu  sync.Mutex // orders seq and the write together: file order = seq order
	f   *os.File
	seq int64
	buf []byte
}

// OpenLog opens (creating it 0600 if needed) the audit log at path for
// appending; existing content, possibly from other sessions, is kept.
//
// The log is only ever a regular file that is reached without following a
// symlink in its last component and that has no other hard link: the agent
// can write to its working directory, and a planted audit.jsonl -> ~/.bashrc
// (or a hard link to it) must not become a way to append to another file.
// A FIFO or a device is refused too (O_NONBLOCK keeps the open of a FIFO from
// hanging until someone reads it).
func OpenLog(path, sessionID string) (*Log, error) {
	f, err := OpenAppend(path)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return &Log{session: sessionID, f: f}, nil
}

// OpenAppend opens path for appending (creating it 0600) the way every file
// agentvault appends to must be opened: never through a symlink in its last
// component, never a FIFO or device, never a file with a second name, since
// the agent may have planted any of them where agentvault will write.
func OpenAppend(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|noFollowNoBlock, 0o600)
	if err != nil {
		return nil, errors.New(openRefusal(path, err))
	}
	if err := checkLogFile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %s", path, err)
	}
	return f, nil
}

// checkLogFile accepts what OpenLog opened only if it is a regular file with
// a single name.
func checkLogFile(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("is not a regular file (%s); refusing to write to it", fileKind(fi.Mode()))
	}
	if hardLinks(fi) > 1 {
		return errors.New("has other hard links; refusing to append to a file that is also elsewhere")
	}
	return nil
}

// openRefusal words an open error. The open alone decides; the Lstat only
// names what was found, so a race with it can change the words, never the
// outcome.
func openRefusal(path string, err error) string {
	if fi, lerr := os.Lstat(path); lerr == nil {
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			return path + ": is a symbolic link; refusing to follow it (name the real file instead)"
		case !fi.Mode().IsRegular():
			return fmt.Sprintf("%s: is not a regular file (%s); refusing to write to it", path, fileKind(fi.Mode()))
		}
	}
	return err.Error()
}

func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "mode " + m.String()
}

// Write appends one line for r. It is safe for concurrent use, and the line
// has been handed to the kernel in a single write(2) when Write returns: with
// O_APPEND that keeps lines whole even when several sessions share the file.
func (l *Log) Write(r proxy.Record) error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return fmt.Errorf("audit log: %w", os.ErrClosed)
	}
	b, err := NewEntry(l.session, l.seq+1, r).appendLine(l.buf[:0])
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	l.buf = b
	if _, err := l.f.Write(b); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	l.seq++
	return nil
}

// Close closes the file. Later Writes fail; Close itself is idempotent.
func (l *Log) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	return nil
}
