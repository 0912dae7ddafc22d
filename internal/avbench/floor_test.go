package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

const established = "HTTP/1.1 200 Connection established\r\n\r\n"

// eagerConn sends its CONNECT in the same write as the ClientHello, without
// waiting for the 200, as some clients do; the floor's reader then already
// holds the start of the handshake when CONNECT is parsed.
type eagerConn struct {
	net.Conn
	connect []byte
	got200  bool
}

func (c *eagerConn) Write(p []byte) (int, error) {
	if c.connect != nil {
		b := append(c.connect, p...)
		c.connect = nil
		if _, err := c.Conn.Write(b); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *eagerConn) Read(p []byte) (int, error) {
	if !c.got200 {
		c.got200 = true
		buf := make([]byte, len(established))
		if _, err := io.ReadFull(c.Conn, buf); err != nil {
			return 0, err
		}
		if string(buf) != established {
			return 0, fmt.Errorf("CONNECT answered %q", buf)
		}
	}
	return c.Conn.Read(p)
}

func TestFloorEarlyClientHelloAndClose(t *testing.T) {
	dir := t.TempDir()
	up, err := startUpstream(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer up.close()
	upPEM, err := os.ReadFile(up.caPath)
	if err != nil {
		t.Fatal(err)
	}
	upRoots := x509.NewCertPool()
	upRoots.AppendCertsFromPEM(upPEM)
	ca, caKey, err := newCA("test floor CA")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go newFloor(ca, caKey, up.addr, upRoots).acceptAll(ln)

	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for i := 0; i < 2; i++ { // the second one uses the cached leaf
		raw, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		raw.SetDeadline(time.Now().Add(10 * time.Second))
		ec := &eagerConn{Conn: raw, connect: []byte("CONNECT " + benchHost + ":443 HTTP/1.1\r\nHost: " + benchHost + ":443\r\n\r\n")}
		tc := tls.Client(ec, &tls.Config{RootCAs: roots, ServerName: benchHost, NextProtos: []string{"http/1.1"}})
		if err := tc.Handshake(); err != nil {
			t.Fatalf("handshake through the floor: %v", err)
		}
		if p := tc.ConnectionState().NegotiatedProtocol; p != "http/1.1" {
			t.Errorf("ALPN %q, want http/1.1", p)
		}
		// Connection: close makes the upstream end the tunnel; the client
		// must see the whole response and then the end of the stream.
		fmt.Fprintf(tc, "GET /1k HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n", benchHost, up.key)
		br := bufio.NewReader(tc)
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(res.Body)
		if err != nil || res.StatusCode != 200 || len(body) != 1024 {
			t.Fatalf("status %d, %d bytes, %v", res.StatusCode, len(body), err)
		}
		if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
			t.Fatalf("after the response: %q, %v (want a clean end)", rest, err)
		}
		tc.Close()
	}
	if !up.seenKey.Load() {
		t.Error("the upstream did not get the key")
	}

	// Any other host is refused before TLS.
	raw, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(raw, "CONNECT elsewhere.test:443 HTTP/1.1\r\nHost: elsewhere.test:443\r\n\r\n")
	line, _ := bufio.NewReader(raw).ReadString('\n')
	if !strings.HasPrefix(line, "HTTP/1.1 403") {
		t.Errorf("CONNECT to another host answered %q", line)
	}
}
