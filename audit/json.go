package audit

import (
	"bytes"
	"encoding/json"
	"math"
	"time"
)

type jsonSummary struct {
	Session     string     `json:"session"`
	Command     []string   `json:"command"`
	CommandLine string     `json:"command_line"`
	Start       string     `json:"start,omitempty"`
	DurationMS  float64    `json:"duration_ms"`
	ExitStatus  *int       `json:"exit_status"` // null when unknown
	Hosts       []jsonHost `json:"hosts"`
	Warnings    []string   `json:"warnings"`
	Notes       []string   `json:"notes"`
}

type jsonHost struct {
	Host        string         `json:"host"`
	Port        int            `json:"port"`
	Requests    int            `json:"requests"`
	Injected    int            `json:"injected"`
	Credentials []string       `json:"credentials"`
	Statuses    map[string]int `json:"statuses"`
	ReqBytes    int64          `json:"req_bytes"`
	RespBytes   int64          `json:"resp_bytes"`
	Actions     map[string]int `json:"actions"`
	// WebSocketMS is how long the host's WebSocket sessions stayed open.
	WebSocketMS float64 `json:"websocket_ms,omitempty"`
}

// renderJSON writes one JSON object and a newline. Lists are [] rather than
// null so consumers need no nil checks.
func renderJSON(v view) ([]byte, error) {
	nonNil := func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return s
	}
	js := jsonSummary{
		Session:     v.Session,
		Command:     nonNil(v.Command),
		CommandLine: v.CommandLine,
		DurationMS:  math.Round(float64(v.Duration)/float64(time.Millisecond)*10) / 10,
		Hosts:       make([]jsonHost, 0, len(v.Hosts)),
		Warnings:    nonNil(v.Warnings),
		Notes:       nonNil(v.Notes),
	}
	if !v.Start.IsZero() {
		js.Start = v.Start.UTC().Format(tsLayout)
	}
	if v.ExitStatus != ExitUnknown {
		es := v.ExitStatus
		js.ExitStatus = &es
	}
	for _, h := range v.Hosts {
		js.Hosts = append(js.Hosts, jsonHost{
			Host: h.Host, Port: h.Port, Requests: h.Requests, Injected: h.Injected,
			Credentials: nonNil(h.Credentials), Statuses: h.Statuses,
			ReqBytes: h.ReqBytes, RespBytes: h.RespBytes, Actions: h.Actions,
			WebSocketMS: math.Round(float64(h.WebSocketTime)/float64(time.Millisecond)*10) / 10,
		})
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(js); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
