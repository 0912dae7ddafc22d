package main

import (
	"compress/gzip"
	"crypto/rand"
	"crypto/tls"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// upstream is the local HTTPS server both runs talk to, with its own CA.
type upstream struct {
	addr            string // 127.0.0.1:port
	caPath          string
	key             string // the real secret; the proxy must put it on requests
	srv             *http.Server
	seenKey         atomic.Bool
	seenPlaceholder atomic.Bool
}

func startUpstream(dir string) (*upstream, error) {
	caCert, caKey, err := newCA("avbench CA")
	if err != nil {
		return nil, err
	}
	leaf, err := newLeaf(caCert, caKey, benchHost, 2)
	if err != nil {
		return nil, err
	}
	caPath := filepath.Join(dir, "upstream-ca.pem")
	if err := os.WriteFile(caPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caCert.Raw}), 0o644); err != nil {
		return nil, err
	}
	secret := make([]byte, 18)
	rand.Read(secret)
	u := &upstream{caPath: caPath, key: fmt.Sprintf("avbench-%x", secret)}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	u.addr = ln.Addr().String()
	u.srv = &http.Server{
		Handler:   u.handler(),
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{leaf}},
		ErrorLog:  nil,
	}
	go u.srv.ServeTLS(ln, "", "")
	return u, nil
}

func (u *upstream) close() { u.srv.Close() }

func (u *upstream) handler() http.Handler {
	kib := []byte(strings.Repeat("x", 1024))
	text := []byte(strings.Repeat("the quick brown fox jumps over the lazy dog\n", 100))
	mux := http.NewServeMux()
	mux.HandleFunc("/1k", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1024")
		w.Write(kib)
	})
	mux.HandleFunc("/gzip", func(w http.ResponseWriter, r *http.Request) {
		// As most API servers do: compressed when asked, no Content-Length.
		if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			w.Write(text)
			return
		}
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		zw.Write(text)
		zw.Close()
	})
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		w.Write(kib[:512])
		w.(http.Flusher).Flush()
		w.Write(kib[512:])
	})
	mux.HandleFunc("/sse", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 0; i < 5; i++ {
			fmt.Fprintf(w, "data: %d\n\n", time.Now().UnixNano())
			w.(http.Flusher).Flush()
			time.Sleep(50 * time.Millisecond)
		}
	})
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, n)
	})
	mux.HandleFunc("/download", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.ParseInt(r.URL.Query().Get("bytes"), 10, 64)
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		buf := make([]byte, 64<<10)
		for n > 0 {
			k := int64(len(buf))
			if n < k {
				k = n
			}
			if _, err := w.Write(buf[:k]); err != nil {
				return
			}
			n -= k
		}
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch auth := r.Header.Get("Authorization"); {
		case auth == "Bearer "+u.key:
			u.seenKey.Store(true)
		case strings.Contains(auth, "agentvault"):
			u.seenPlaceholder.Store(true)
		}
		mux.ServeHTTP(w, r)
	})
}
