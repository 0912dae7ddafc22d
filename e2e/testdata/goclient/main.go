// Command goclient is the Go program the e2e suite runs as agentvault's child.
// It uses only what a Go agent would: the proxy from the environment
// (HTTPS_PROXY) and the roots from SSL_CERT_FILE.
//
//	goclient get URL OUTPREFIX            -> OUTPREFIX.status, OUTPREFIX.body
//	goclient sse URL OUTFILE              -> one "index unixnano data" line per event
//	goclient ws URL HEADER ENVVAR MESSAGE OUTFILE
//	                                      -> JSON {status, accept_ok, echo}; the
//	                                         handshake carries HEADER: $ENVVAR
//	goclient wsread URL MESSAGE OUTFILE   -> JSON {status, messages, close_code,
//	                                         close_reason}: every message until
//	                                         the server's close
package main

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fail(errors.New("usage: goclient get|sse|ws|wsread ..."))
	}
	var err error
	switch args := os.Args[2:]; os.Args[1] {
	case "get":
		err = need(args, 2, func() error { return get(args[0], args[1]) })
	case "sse":
		err = need(args, 2, func() error { return sse(args[0], args[1]) })
	case "ws":
		err = need(args, 5, func() error { return ws(args[0], args[1], os.Getenv(args[2]), args[3], args[4]) })
	case "wsread":
		err = need(args, 3, func() error { return wsread(args[0], args[1], args[2]) })
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fail(err)
	}
}

func need(args []string, n int, f func() error) error {
	if len(args) != n {
		return fmt.Errorf("want %d arguments, got %d", n, len(args))
	}
	return f()
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "goclient:", err)
	os.Exit(1)
}

func get(rawURL, prefix string) error {
	client := &http.Client{Timeout: 20 * time.Second}
	res, err := client.Get(rawURL)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if err := os.WriteFile(prefix+".body", body, 0o644); err != nil {
		return err
	}
	return os.WriteFile(prefix+".status", []byte(fmt.Sprint(res.StatusCode)), 0o644)
}

// sse notes the arrival time of each "data:" line as soon as it is read.
func sse(rawURL, outFile string) error {
	req, err := http.NewRequest("GET", rawURL, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	res, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		return fmt.Errorf("status %d", res.StatusCode)
	}
	var lines []string
	br := bufio.NewReader(res.Body)
	for i := 0; i < 100; {
		line, err := br.ReadString('\n')
		if strings.HasPrefix(line, "data:") {
			lines = append(lines, fmt.Sprintf("%d %d %s", i, time.Now().UnixNano(), strings.TrimSpace(line[5:])))
			i++
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	return os.WriteFile(outFile, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

// ws does by hand what a WebSocket library does behind a proxy: CONNECT with
// Proxy-Authorization, TLS, the upgrade handshake, one text frame.
func ws(rawURL, header, headerValue, message, outFile string) error {
	conn, tconn, tbr, res, key, err := wsDial(rawURL, header+": "+headerValue+"\r\n")
	if err != nil {
		return err
	}
	defer conn.Close()
	result := map[string]any{"status": res.StatusCode}
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	result["accept_ok"] = res.Header.Get("Sec-WebSocket-Accept") == base64.StdEncoding.EncodeToString(sum[:])
	if res.StatusCode == 101 {
		if err := writeMasked(tconn, 0x1, []byte(message)); err != nil {
			return err
		}
		op, payload, err := readFrame(tbr)
		if err != nil {
			return fmt.Errorf("reading echo: %w", err)
		}
		result["opcode"] = op
		result["echo"] = string(payload)
		writeMasked(tconn, 0x8, []byte{0x03, 0xe8})
	}
	out, _ := json.Marshal(result)
	return os.WriteFile(outFile, out, 0o644)
}

// wsread sends one text frame and then reads whole messages as a WebSocket
// library hands them to an agent (fragments joined, any length encoding,
// pings answered) until the server's close.
func wsread(rawURL, message, outFile string) error {
	conn, tconn, tbr, res, _, err := wsDial(rawURL, "")
	if err != nil {
		return err
	}
	defer conn.Close()
	result := map[string]any{"status": res.StatusCode}
	if res.StatusCode == 101 {
		if err := writeMasked(tconn, 0x1, []byte(message)); err != nil {
			return err
		}
		var msgs []string
		var cur []byte
		for range 100 {
			fin, op, payload, err := readAnyFrame(tbr)
			if err != nil {
				return fmt.Errorf("reading frames: %w", err)
			}
			if op == 0x8 {
				if len(payload) >= 2 {
					result["close_code"] = int(payload[0])<<8 | int(payload[1])
					result["close_reason"] = string(payload[2:])
				}
				writeMasked(tconn, 0x8, payload[:min(2, len(payload))])
				break
			}
			if op == 0x9 {
				writeMasked(tconn, 0xA, payload)
				continue
			}
			cur = append(cur, payload...)
			if fin {
				msgs = append(msgs, string(cur))
				cur = nil
			}
		}
		result["messages"] = msgs
	}
	out, _ := json.Marshal(result)
	return os.WriteFile(outFile, out, 0o644)
}

// wsDial opens a WebSocket through HTTPS_PROXY; extra is more header lines.
// It returns the TCP connection (to close), the TLS one and its reader.
func wsDial(rawURL, extra string) (net.Conn, *tls.Conn, *bufio.Reader, *http.Response, string, error) {
	target, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, nil, nil, "", err
	}
	proxyURL, err := url.Parse(firstEnv("HTTPS_PROXY", "https_proxy"))
	if err != nil || proxyURL.Host == "" {
		return nil, nil, nil, nil, "", fmt.Errorf("no usable HTTPS_PROXY")
	}
	hostPort := target.Host
	if target.Port() == "" {
		hostPort = net.JoinHostPort(target.Hostname(), "443")
	}
	conn, err := net.DialTimeout("tcp", proxyURL.Host, 10*time.Second)
	if err != nil {
		return nil, nil, nil, nil, "", err
	}
	fail := func(err error) (net.Conn, *tls.Conn, *bufio.Reader, *http.Response, string, error) {
		conn.Close()
		return nil, nil, nil, nil, "", err
	}
	conn.SetDeadline(time.Now().Add(20 * time.Second))

	connect := fmt.Sprintf("CONNECT %s HTTP/1.1\r\nHost: %s\r\n", hostPort, hostPort)
	if u := proxyURL.User; u != nil {
		pass, _ := u.Password()
		connect += "Proxy-Authorization: Basic " +
			base64.StdEncoding.EncodeToString([]byte(u.Username()+":"+pass)) + "\r\n"
	}
	if _, err := io.WriteString(conn, connect+"\r\n"); err != nil {
		return fail(err)
	}
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, &http.Request{Method: "CONNECT"})
	if err != nil {
		return fail(fmt.Errorf("CONNECT: %w", err))
	}
	if res.StatusCode != 200 {
		return fail(fmt.Errorf("CONNECT: status %d", res.StatusCode))
	}

	roots, err := x509.SystemCertPool() // honours SSL_CERT_FILE
	if err != nil {
		return fail(err)
	}
	tconn := tls.Client(conn, &tls.Config{ServerName: target.Hostname(), RootCAs: roots, NextProtos: []string{"http/1.1"}})
	if err := tconn.Handshake(); err != nil {
		return fail(fmt.Errorf("TLS: %w", err))
	}
	keyRaw := make([]byte, 16)
	rand.Read(keyRaw)
	key := base64.StdEncoding.EncodeToString(keyRaw)
	hs := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n",
		target.RequestURI(), target.Hostname(), key, extra)
	if _, err := io.WriteString(tconn, hs); err != nil {
		return fail(err)
	}
	tbr := bufio.NewReader(tconn)
	res, err = http.ReadResponse(tbr, &http.Request{Method: "GET"})
	if err != nil {
		return fail(fmt.Errorf("handshake: %w", err))
	}
	return conn, tconn, tbr, res, key, nil
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

func writeMasked(w io.Writer, op byte, payload []byte) error {
	if len(payload) > 125 {
		return errors.New("payload too long for this client")
	}
	mask := make([]byte, 4)
	rand.Read(mask)
	buf := append([]byte{0x80 | op, 0x80 | byte(len(payload))}, mask...)
	for i, b := range payload {
		buf = append(buf, b^mask[i%4])
	}
	_, err := w.Write(buf)
	return err
}

// readAnyFrame reads one unmasked server frame of any length up to 16 MiB.
func readAnyFrame(r *bufio.Reader) (fin bool, op byte, payload []byte, err error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return false, 0, nil, err
	}
	if hdr[1]&0x80 != 0 || hdr[0]&0x70 != 0 {
		return false, 0, nil, fmt.Errorf("unexpected frame header % x", hdr)
	}
	n := uint64(hdr[1] & 0x7f)
	if n >= 126 {
		ext := make([]byte, 2)
		if n == 127 {
			ext = make([]byte, 8)
		}
		if _, err := io.ReadFull(r, ext); err != nil {
			return false, 0, nil, err
		}
		n = 0
		for _, b := range ext {
			n = n<<8 | uint64(b)
		}
	}
	if n > 16<<20 {
		return false, 0, nil, fmt.Errorf("frame of %d bytes", n)
	}
	payload = make([]byte, n)
	_, err = io.ReadFull(r, payload)
	return hdr[0]&0x80 != 0, hdr[0] & 0x0f, payload, err
}

// readFrame reads one short unmasked server frame.
func readFrame(r *bufio.Reader) (byte, []byte, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := int(hdr[1] & 0x7f)
	if hdr[1]&0x80 != 0 || n > 125 {
		return 0, nil, fmt.Errorf("unexpected frame header % x", hdr)
	}
	payload := make([]byte, n)
	_, err := io.ReadFull(r, payload)
	return hdr[0] & 0x0f, payload, err
}
