package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// agentFake stands in for the three providers' APIs the agent CLIs talk to
// (api.anthropic.com, api.openai.com / chatgpt.com,
// generativelanguage.googleapis.com), behind its own test CA. Every answer
// streams the same few pieces with a pause between them and records when
// each piece was flushed, so a test can compare that with when the CLI
// printed it.
type agentFake struct {
	Port   int
	CAPath string
	// pieces, joined, are the answer every CLI must print.
	pieces []string
	pause  time.Duration

	mu sync.Mutex
	// reflect, when set (setReflect), makes the Anthropic answer end with
	// one more event: " key=" and the value reflect picks from the request
	// (an upstream handing the key back to the agent). Under mu: the test
	// sets it while the server runs.
	reflect func(h http.Header) string
	reqs    []agentRequest
	writes  map[string][][]int64 // stream kind -> per stream, UnixNano after each piece's flush
	wsIn    int64                // WebSocket payload bytes received
	wsOut   int64                // and sent
}

// setReflect makes the fake hand back what pick takes from the request.
func (f *agentFake) setReflect(pick func(h http.Header) string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reflect = pick
}

// agentRequest is one request the fake received.
type agentRequest struct {
	Method, Host, Path, Query string
	SNI                       string // the TLS server name the proxy asked for
	Header                    http.Header
	Body                      string
	WebSocket                 bool
	Known                     bool // an endpoint the fake implements
}

func (r agentRequest) String() string {
	ws := ""
	if r.WebSocket {
		ws = " (websocket)"
	}
	return r.Method + " " + r.Host + r.Path + ws
}

func newAgentFake(t *testing.T, answerID string) *agentFake {
	t.Helper()
	f := &agentFake{
		CAPath: filepath.Join(t.TempDir(), "agents-ca.pem"),
		// Pieces a CLI cannot have printed without parsing every event.
		pieces: []string{"AGENTVAULT", "-FAKE", "-ANSWER-", answerID},
		pause:  400 * time.Millisecond,
		writes: map[string][][]int64{},
	}
	ca, err := newTestAuthority(f.CAPath, agentHosts...)
	if err != nil {
		t.Fatal(err)
	}
	f.Port = serveTLS(t, f, ca.serverTLS())
	return f
}

func (f *agentFake) answer() string { return strings.Join(f.pieces, "") }

// connect is the --connect-to list mapping every agent host to the fake.
func (f *agentFake) connect() []string {
	var out []string
	for _, h := range agentHosts {
		out = append(out, connectTo(h, 443, f.Port))
	}
	return out
}

func (f *agentFake) requests() []agentRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]agentRequest(nil), f.reqs...)
}

func (f *agentFake) streams(kind string) [][]int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]int64(nil), f.writes[kind]...)
}

// wsBytes is what the WebSocket sessions carried: text payload bytes
// received and sent.
func (f *agentFake) wsBytes() (in, out int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.wsIn, f.wsOut
}

func (f *agentFake) record(r agentRequest) {
	f.mu.Lock()
	f.reqs = append(f.reqs, r)
	f.mu.Unlock()
}

func (f *agentFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	host, _, _ := strings.Cut(r.Host, ":")
	rec := agentRequest{
		Method: r.Method, Host: host, Path: r.URL.Path, Query: r.URL.RawQuery,
		Header: r.Header.Clone(), Body: string(body), SNI: r.TLS.ServerName,
		WebSocket: strings.EqualFold(r.Header.Get("Upgrade"), "websocket"),
		Known:     true,
	}
	p := r.URL.Path
	switch {
	case host == "api.anthropic.com" && r.Method == http.MethodPost && p == "/v1/messages":
		f.record(rec)
		f.anthropicMessages(w, r, body)
	case host == "api.anthropic.com" && r.Method == http.MethodPost && p == "/v1/messages/count_tokens":
		f.record(rec)
		writeJSON(w, map[string]any{"input_tokens": 12})
	case (host == "api.openai.com" || host == "chatgpt.com") && strings.HasSuffix(p, "/responses") && rec.WebSocket:
		f.record(rec)
		f.openaiWebSocket(w, r)
	case (host == "api.openai.com" || host == "chatgpt.com") && strings.HasSuffix(p, "/responses") && r.Method == http.MethodPost:
		f.record(rec)
		f.openaiSSE(w, r)
	case host == "generativelanguage.googleapis.com" && strings.HasSuffix(p, ":streamGenerateContent"):
		f.record(rec)
		f.geminiStream(w, r)
	case host == "generativelanguage.googleapis.com" && strings.HasSuffix(p, ":generateContent"):
		f.record(rec)
		f.geminiOnce(w, body)
	case host == "generativelanguage.googleapis.com" && strings.HasSuffix(p, ":countTokens"):
		f.record(rec)
		writeJSON(w, map[string]any{"totalTokens": 12})
	default:
		// Anything else a CLI tries is reported by the test; 404 keeps
		// the CLI going where it treats the endpoint as optional.
		rec.Known = false
		f.record(rec)
		http.NotFound(w, r)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// stream writes head, then each piece through event with a pause before all
// but the first, then tail, flushing after each and recording the flush
// times of the pieces under kind.
func (f *agentFake) stream(w http.ResponseWriter, r *http.Request, kind string, pieces []string, head []string, event func(i int, piece string) string, tail []string) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "no flusher", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	for _, h := range head {
		io.WriteString(w, h)
	}
	fl.Flush()
	var times []int64
	defer func() {
		f.mu.Lock()
		f.writes[kind] = append(f.writes[kind], times)
		f.mu.Unlock()
	}()
	for i, piece := range pieces {
		if i > 0 {
			select {
			case <-time.After(f.pause):
			case <-r.Context().Done():
				return
			}
		}
		io.WriteString(w, event(i, piece))
		fl.Flush()
		times = append(times, time.Now().UnixNano())
	}
	for _, t := range tail {
		io.WriteString(w, t)
	}
	fl.Flush()
}

func sseEvent(name string, data any) string {
	b, _ := json.Marshal(data)
	if name == "" {
		return "data: " + string(b) + "\n\n"
	}
	return "event: " + name + "\ndata: " + string(b) + "\n\n"
}

// anthropicMessages answers the Messages API, streamed when asked to.
func (f *agentFake) anthropicMessages(w http.ResponseWriter, r *http.Request, body []byte) {
	var req struct {
		Model  string `json:"model"`
		Stream bool   `json:"stream"`
	}
	json.Unmarshal(body, &req)
	usage := map[string]any{"input_tokens": 12, "output_tokens": 1, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
	msg := map[string]any{"id": "msg_agentvault_fake", "type": "message", "role": "assistant", "model": req.Model,
		"content": []any{}, "stop_reason": nil, "stop_sequence": nil, "usage": usage}
	if !req.Stream {
		msg["content"] = []any{map[string]any{"type": "text", "text": f.answer()}}
		msg["stop_reason"] = "end_turn"
		writeJSON(w, msg)
		return
	}
	pieces := f.pieces
	f.mu.Lock()
	reflect := f.reflect
	f.mu.Unlock()
	if reflect != nil {
		v := reflect(r.Header)
		pieces = append(slices.Clone(pieces), " key="+v)
	}
	f.stream(w, r, "anthropic", pieces,
		[]string{
			sseEvent("message_start", map[string]any{"type": "message_start", "message": msg}),
			sseEvent("content_block_start", map[string]any{"type": "content_block_start", "index": 0,
				"content_block": map[string]any{"type": "text", "text": ""}}),
		},
		func(_ int, piece string) string {
			return sseEvent("content_block_delta", map[string]any{"type": "content_block_delta", "index": 0,
				"delta": map[string]any{"type": "text_delta", "text": piece}})
		},
		[]string{
			sseEvent("content_block_stop", map[string]any{"type": "content_block_stop", "index": 0}),
			sseEvent("message_delta", map[string]any{"type": "message_delta",
				"delta": map[string]any{"stop_reason": "end_turn", "stop_sequence": nil},
				"usage": map[string]any{"output_tokens": len(pieces)}}),
			sseEvent("message_stop", map[string]any{"type": "message_stop"}),
		})
}

// openaiEvents are the Responses API events of one answer: before the
// pieces, each piece, after them. The same JSON objects go out as SSE data
// or as WebSocket text messages.
func (f *agentFake) openaiEvents(model string) (head []map[string]any, piece func(int, string) map[string]any, tail []map[string]any) {
	const respID, itemID = "resp_agentvault_fake", "msg_agentvault_fake"
	resp := func(status string, output []any) map[string]any {
		return map[string]any{"id": respID, "object": "response", "created_at": time.Now().Unix(),
			"status": status, "model": model, "output": output}
	}
	item := func(status, text string) map[string]any {
		content := []any{}
		if status == "completed" {
			content = append(content, map[string]any{"type": "output_text", "text": text, "annotations": []any{}})
		}
		return map[string]any{"id": itemID, "type": "message", "role": "assistant", "status": status, "content": content}
	}
	done := resp("completed", []any{item("completed", f.answer())})
	done["usage"] = map[string]any{"input_tokens": 12, "input_tokens_details": map[string]any{"cached_tokens": 0},
		"output_tokens": len(f.pieces), "output_tokens_details": map[string]any{"reasoning_tokens": 0}, "total_tokens": 12 + len(f.pieces)}
	head = []map[string]any{
		{"type": "response.created", "sequence_number": 0, "response": resp("in_progress", []any{})},
		{"type": "response.in_progress", "sequence_number": 1, "response": resp("in_progress", []any{})},
		{"type": "response.output_item.added", "sequence_number": 2, "output_index": 0, "item": item("in_progress", "")},
		{"type": "response.content_part.added", "sequence_number": 3, "output_index": 0, "item_id": itemID, "content_index": 0,
			"part": map[string]any{"type": "output_text", "text": "", "annotations": []any{}}},
	}
	piece = func(i int, p string) map[string]any {
		return map[string]any{"type": "response.output_text.delta", "sequence_number": 4 + i, "output_index": 0,
			"item_id": itemID, "content_index": 0, "delta": p}
	}
	n := 4 + len(f.pieces)
	tail = []map[string]any{
		{"type": "response.output_text.done", "sequence_number": n, "output_index": 0, "item_id": itemID, "content_index": 0, "text": f.answer()},
		{"type": "response.content_part.done", "sequence_number": n + 1, "output_index": 0, "item_id": itemID, "content_index": 0,
			"part": map[string]any{"type": "output_text", "text": f.answer(), "annotations": []any{}}},
		{"type": "response.output_item.done", "sequence_number": n + 2, "output_index": 0, "item": item("completed", f.answer())},
		{"type": "response.completed", "sequence_number": n + 3, "response": done},
	}
	return head, piece, tail
}

func (f *agentFake) openaiSSE(w http.ResponseWriter, r *http.Request) {
	head, piece, tail := f.openaiEvents("gpt-fake")
	sse := func(evs []map[string]any) []string {
		var out []string
		for _, e := range evs {
			out = append(out, sseEvent(e["type"].(string), e))
		}
		return out
	}
	f.stream(w, r, "openai-sse", f.pieces, sse(head), func(i int, p string) string {
		e := piece(i, p)
		return sseEvent(e["type"].(string), e)
	}, sse(tail))
}

// openaiWebSocket serves the Responses API over WebSocket: each
// response.create text message from the client is answered with the same
// events as over SSE, one text message each.
func (f *agentFake) openaiWebSocket(w http.ResponseWriter, r *http.Request) {
	conn, brw, ok := acceptWebSocket(w, r, 60*time.Second)
	if !ok {
		return
	}
	defer conn.Close()
	send := func(v any) error {
		b, _ := json.Marshal(v)
		f.mu.Lock()
		f.wsOut += int64(len(b))
		f.mu.Unlock()
		return wsWriteFrame(conn, 0x1, b)
	}
	for range 16 { // a turn is a handful of messages
		op, payload, err := wsReadMessage(brw.Reader)
		if err != nil {
			return
		}
		switch op {
		case 0x8:
			wsWriteFrame(conn, 0x8, payload)
			return
		case 0x9:
			wsWriteFrame(conn, 0xA, payload)
			continue
		case 0x1:
		default:
			continue
		}
		f.mu.Lock()
		f.wsIn += int64(len(payload))
		f.mu.Unlock()
		var msg struct {
			Type     string `json:"type"`
			Model    string `json:"model"`
			Generate *bool  `json:"generate"`
		}
		json.Unmarshal(payload, &msg)
		if msg.Type != "response.create" {
			continue
		}
		if f.wsAnswer(conn, r, msg.Model, msg.Generate == nil || *msg.Generate, send) != nil {
			return
		}
	}
}

// wsReadMessage reads one message: a control frame, or a data frame and its
// continuations up to the final one (codex splits large messages into
// 32 KiB frames). Control frames between fragments are dropped.
func wsReadMessage(r *bufio.Reader) (op byte, payload []byte, err error) {
	for range 1024 {
		fin, fop, data, err := wsReadFrameFin(r)
		if err != nil {
			return 0, nil, err
		}
		switch {
		case fop >= 0x8 && op == 0: // a control frame on its own
			return fop, data, nil
		case fop >= 0x8: // a control frame between fragments
		case fop != 0 && op != 0, fop == 0 && op == 0:
			return 0, nil, errors.New("websocket: bad fragmentation")
		default:
			if fop != 0 {
				op = fop
			}
			payload = append(payload, data...)
			if len(payload) > 16<<20 {
				return 0, nil, errors.New("websocket message too large")
			}
			if fin {
				return op, payload, nil
			}
		}
	}
	return 0, nil, errors.New("websocket: too many fragments")
}

// wsReadFrameFin is wsReadFrame that also reports the FIN bit: it peeks at
// the first header byte, which wsReadFrame consumes.
func wsReadFrameFin(r *bufio.Reader) (fin bool, op byte, payload []byte, err error) {
	b, err := r.Peek(1)
	if err != nil {
		return false, 0, nil, err
	}
	fin = b[0]&0x80 != 0
	op, payload, err = wsReadFrame(r)
	return fin, op, payload, err
}

func (f *agentFake) wsAnswer(conn net.Conn, r *http.Request, model string, generate bool, send func(any) error) error {
	head, piece, tail := f.openaiEvents(model)
	if !generate {
		// A prewarm: the client only wants the connection ready.
		return send(tail[len(tail)-1])
	}
	for _, e := range head {
		if err := send(e); err != nil {
			return err
		}
	}
	var times []int64
	defer func() {
		f.mu.Lock()
		f.writes["openai-ws"] = append(f.writes["openai-ws"], times)
		f.mu.Unlock()
	}()
	for i, p := range f.pieces {
		if i > 0 {
			time.Sleep(f.pause)
		}
		if err := send(piece(i, p)); err != nil {
			return err
		}
		times = append(times, time.Now().UnixNano())
	}
	for _, e := range tail {
		if err := send(e); err != nil {
			return err
		}
	}
	return nil
}

// geminiChunk is one GenerateContentResponse carrying text.
func geminiChunk(text string, last bool) map[string]any {
	cand := map[string]any{"content": map[string]any{"role": "model", "parts": []any{map[string]any{"text": text}}}, "index": 0}
	out := map[string]any{"candidates": []any{cand}, "modelVersion": "gemini-fake"}
	if last {
		cand["finishReason"] = "STOP"
		out["usageMetadata"] = map[string]any{"promptTokenCount": 12, "candidatesTokenCount": 4, "totalTokenCount": 16}
	}
	return out
}

func (f *agentFake) geminiStream(w http.ResponseWriter, r *http.Request) {
	f.stream(w, r, "gemini", f.pieces, nil, func(i int, p string) string {
		return sseEvent("", geminiChunk(p, i == len(f.pieces)-1))
	}, nil)
}

// geminiOnce answers a non-streamed generateContent. gemini-cli asks this
// way for JSON decisions (which model, who speaks next): a request for JSON
// gets an object that says "the user speaks next, use flash".
func (f *agentFake) geminiOnce(w http.ResponseWriter, body []byte) {
	text := f.answer()
	if strings.Contains(string(body), "application/json") {
		text = `{"reasoning":"agentvault fake","next_speaker":"user","model_choice":"flash"}`
	}
	writeJSON(w, geminiChunk(text, true))
}
