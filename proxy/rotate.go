package proxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// maxReplay is the largest request body kept for a replay after rotation.
const maxReplay = 1 << 20

// requestSnapshot is a request as the agent sent it, before injection.
type requestSnapshot struct {
	header     http.Header
	url        url.URL
	host       string
	body       []byte
	replayable bool
	used       map[string]string // credential name -> the value injected
}

// snapshot records req before injection. A body of known length up to
// maxReplay is read into memory (and put back) so the request can be sent
// again; anything larger or streamed cannot be replayed.
func snapshot(req *http.Request) *requestSnapshot {
	s := &requestSnapshot{header: req.Header.Clone(), url: *req.URL, host: req.Host, replayable: true}
	if req.Body == nil || req.Body == http.NoBody {
		return s
	}
	if req.ContentLength < 0 || req.ContentLength > maxReplay {
		s.replayable = false
		return s
	}
	buf, err := io.ReadAll(io.LimitReader(req.Body, req.ContentLength))
	req.Body = io.NopCloser(bytes.NewReader(buf))
	if err != nil {
		s.replayable = false
		return s
	}
	s.body = buf
	return s
}

func (s *requestSnapshot) rebuild(orig *http.Request) *http.Request {
	r := orig.Clone(orig.Context())
	r.Header = s.header.Clone()
	u := s.url
	r.URL = &u
	r.Host = s.host
	r.Body = http.NoBody
	if s.body != nil {
		r.Body = io.NopCloser(bytes.NewReader(s.body))
		r.ContentLength = int64(len(s.body))
	}
	return r
}

// maybeRetry handles a 401 or 403 to a request that carried an injected
// secret: the credentials are resolved again, and if one changed and the
// request can be replayed, it is sent once more with the new value.
func (p *Proxy) maybeRetry(req *http.Request, res *http.Response, ex *exchange) *http.Response {
	if p.Refresh == nil || ex.snap == nil || len(ex.injected) == 0 ||
		(res.StatusCode != http.StatusUnauthorized && res.StatusCode != http.StatusForbidden) {
		return res
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	changed := false
	for _, name := range ex.injected {
		if c := p.policy.byName(name); c != nil && c.current() != ex.snap.used[name] {
			// Another request already brought the new value while this one
			// was in flight: replay with it, no need to ask the backend.
			changed = true
			continue
		}
		ok, err := p.Refresh(ctx, name)
		if err != nil {
			ex.addWarning(fmt.Sprintf("re-resolving %q after %d failed: %v", name, res.StatusCode, err))
			continue
		}
		if ok {
			changed = true
			ex.addWarning(fmt.Sprintf("credential %q re-resolved after %d", name, res.StatusCode))
		}
	}
	if !changed || !ex.snap.replayable {
		return res
	}
	retry := ex.snap.rebuild(req)
	if _, _, err := p.injectAll(retry, ex.target); err != nil {
		return res
	}
	removeHopHeaders(retry.Header, isUpgrade(retry.Header))
	if !p.Guard.reflectOff() {
		limitAcceptEncoding(retry.Header)
	}
	res2, err := p.send(retry, ex)
	if err != nil {
		ex.addWarning("replay after rotation failed: " + describeUpstreamError(ex.rec.Host, err))
		return res
	}
	io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
	ex.rec.Retried = true
	return res2
}
