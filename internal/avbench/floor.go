package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// The floor is the least work any TLS-inspecting proxy must do, in a process
// of its own like agentvault's proxy: answer CONNECT, terminate the client's
// TLS with a leaf of its own CA, open verified TLS to the upstream and copy
// plaintext both ways. It parses no HTTP after CONNECT and injects nothing,
// so agentvault's ratio to it is what its features and its engine cost above
// what interception itself costs on this machine.

// newCA returns a fresh ECDSA P-256 CA, valid for a day around now.
func newCA(name string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

// newLeaf issues an ECDSA P-256 server certificate for host.
func newLeaf(ca *x509.Certificate, caKey *ecdsa.PrivateKey, host string, serial int64) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// floorProc is the harness's handle on a running `avbench floor`.
type floorProc struct {
	addr   string
	caPath string // what the child trusts through SSL_CERT_FILE
	cmd    *exec.Cmd
	stdin  io.Closer
}

// startFloor generates the floor's CA for this run in dir and starts
// `self floor`, which reaches benchHost at upstreamAddr, trusting upstreamCA.
func startFloor(self, dir, upstreamAddr, upstreamCA string) (*floorProc, error) {
	ca, caKey, err := newCA("avbench floor CA")
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(caKey)
	if err != nil {
		return nil, err
	}
	caPath := filepath.Join(dir, "floor-ca.pem")
	keyPath := filepath.Join(dir, "floor-ca-key.pem")
	if err := os.WriteFile(caPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "floor")
	cmd.Env = []string{"AVBENCH_FLOOR_CA=" + caPath, "AVBENCH_FLOOR_KEY=" + keyPath,
		"AVBENCH_ADDR=" + upstreamAddr, "AVBENCH_CA=" + upstreamCA}
	cmd.Stderr = os.Stderr
	// The floor exits when its stdin closes, so it cannot outlive a harness
	// that dies without cleaning up.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	f := &floorProc{caPath: caPath, cmd: cmd, stdin: stdin}
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- strings.TrimSpace(s)
		io.Copy(io.Discard, stdout)
	}()
	select {
	case f.addr = <-line:
	case <-time.After(30 * time.Second):
	}
	if _, _, err := net.SplitHostPort(f.addr); err != nil {
		f.close()
		return nil, fmt.Errorf("the floor did not report its address (%q)", f.addr)
	}
	return f, nil
}

func (f *floorProc) close() {
	f.stdin.Close()
	done := make(chan struct{})
	go func() { f.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		f.cmd.Process.Kill()
		<-done
	}
}

// floor is the proxy side of `avbench floor`.
type floor struct {
	ca       *x509.Certificate
	caKey    *ecdsa.PrivateKey
	upstream string // where benchHost:443 is dialed, as --connect-to does
	upConf   *tls.Config

	mu     sync.Mutex
	leaves map[string]*tls.Config // per CONNECT host, as any proxy caches its leaves
	serial int64
}

func floorMain() error {
	ca, caKey, err := loadCA(os.Getenv("AVBENCH_FLOOR_CA"), os.Getenv("AVBENCH_FLOOR_KEY"))
	if err != nil {
		return err
	}
	upPEM, err := os.ReadFile(os.Getenv("AVBENCH_CA"))
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(upPEM) {
		return errors.New("no upstream CA in AVBENCH_CA")
	}
	f := newFloor(ca, caKey, os.Getenv("AVBENCH_ADDR"), roots)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	stdinClosed := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(stdinClosed)
		ln.Close()
	}()
	err = f.acceptAll(ln)
	select {
	case <-stdinClosed:
		return nil // the harness is done
	default:
		return err
	}
}

func newFloor(ca *x509.Certificate, caKey *ecdsa.PrivateKey, upstream string, roots *x509.CertPool) *floor {
	return &floor{
		ca: ca, caKey: caKey, upstream: upstream,
		// Resuming upstream sessions is work any proxy can save, so the
		// floor saves it too.
		upConf: &tls.Config{RootCAs: roots, NextProtos: []string{"http/1.1"}, ClientSessionCache: tls.NewLRUClientSessionCache(64)},
		leaves: map[string]*tls.Config{}, serial: 1, // the CA's
	}
}

// acceptAll serves every connection of ln until it is closed.
func (f *floor) acceptAll(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go f.serve(c)
	}
}

func loadCA(certPath, keyPath string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	cb, err := os.ReadFile(certPath)
	if err != nil {
		return nil, nil, err
	}
	kb, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, err
	}
	cp, _ := pem.Decode(cb)
	kp, _ := pem.Decode(kb)
	if cp == nil || kp == nil {
		return nil, nil, errors.New("floor CA: no PEM")
	}
	cert, err := x509.ParseCertificate(cp.Bytes)
	if err != nil {
		return nil, nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(kp.Bytes)
	if err != nil {
		return nil, nil, err
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, nil, errors.New("floor CA: not an ECDSA key")
	}
	return cert, key, nil
}

// serverConfig returns the client-facing TLS config for host, issuing its
// leaf on first use.
func (f *floor) serverConfig(host string) (*tls.Config, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.leaves[host]; ok {
		return c, nil
	}
	f.serial++
	leaf, err := newLeaf(f.ca, f.caKey, host, f.serial)
	if err != nil {
		return nil, err
	}
	c := &tls.Config{Certificates: []tls.Certificate{leaf}, NextProtos: []string{"http/1.1"}}
	f.leaves[host] = c
	return c, nil
}

// bufferedConn reads first what the CONNECT's reader already took from the
// connection: a client may send its ClientHello without waiting for the 200.
type bufferedConn struct {
	net.Conn
	r io.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// CloseWrite lets pipe half-close the client's TCP connection through the
// wrapper.
func (c *bufferedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (f *floor) serve(raw net.Conn) {
	defer raw.Close()
	// Bounds the CONNECT and both handshakes; the tunnel itself has no
	// deadline, the client closes it.
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(raw)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	host, port, err := net.SplitHostPort(req.Host)
	if req.Method != "CONNECT" || err != nil || host != benchHost || port != "443" {
		io.WriteString(raw, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		return
	}
	sc, err := f.serverConfig(host)
	if err != nil {
		io.WriteString(raw, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		return
	}
	if _, err := io.WriteString(raw, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	var conn net.Conn = raw
	if n := br.Buffered(); n > 0 {
		early, _ := br.Peek(n)
		conn = &bufferedConn{Conn: raw, r: io.MultiReader(bytes.NewReader(early), raw)}
	}

	// The upstream's handshake runs while the client's does: the host is
	// known from CONNECT, so waiting for the client would only add latency.
	type dialed struct {
		tc  *tls.Conn
		err error
	}
	upc := make(chan dialed, 1)
	go func() {
		d := &net.Dialer{Timeout: 10 * time.Second}
		nc, err := d.Dial("tcp", f.upstream)
		if err != nil {
			upc <- dialed{err: err}
			return
		}
		conf := f.upConf.Clone()
		conf.ServerName = host
		tc := tls.Client(nc, conf)
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		if err := tc.Handshake(); err != nil {
			nc.Close()
			upc <- dialed{err: err}
			return
		}
		nc.SetDeadline(time.Time{})
		upc <- dialed{tc: tc}
	}()
	ct := tls.Server(conn, sc)
	cerr := ct.Handshake()
	up := <-upc
	if cerr != nil || up.err != nil {
		if up.tc != nil {
			up.tc.Close()
		}
		if up.err != nil {
			fmt.Fprintln(os.Stderr, "avbench floor: upstream:", up.err)
		}
		return
	}
	defer up.tc.Close()
	raw.SetDeadline(time.Time{})

	done := make(chan struct{})
	go func() {
		pipe(up.tc, ct)
		close(done)
	}()
	pipe(ct, up.tc)
	<-done
}

// pipe copies src to dst until src ends, then passes the end on: a clean
// end as a half-close (close_notify, then FIN), so that the other direction
// can still finish; an error by closing both, which ends the other
// direction too.
func pipe(dst, src *tls.Conn) {
	buf := make([]byte, 64<<10)
	if _, err := io.CopyBuffer(dst, src, buf); err != nil {
		dst.Close()
		src.Close()
		return
	}
	dst.CloseWrite()
	if cw, ok := dst.NetConn().(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}
