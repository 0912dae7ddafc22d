package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"
)

// ParseConnectTo parses a curl-style "HOST:PORT:ADDR:PORT2" mapping and returns
// the target it overrides ("host:port") and the address to dial instead.
// ADDR may be a bracketed IPv6 literal.
func ParseConnectTo(s string) (from, to string, err error) {
	bad := fmt.Errorf("--connect-to %q: want HOST:PORT:ADDR:PORT2", s)
	i := strings.Index(s, ":")
	if i <= 0 {
		return "", "", bad
	}
	host, rest := s[:i], s[i+1:]
	j := strings.Index(rest, ":")
	if j <= 0 {
		return "", "", bad
	}
	port, addrPort := rest[:j], rest[j+1:]
	h, p, ok := splitTarget(net.JoinHostPort(host, port), 0)
	if !ok || p == 0 {
		return "", "", bad
	}
	addr, port2, err := net.SplitHostPort(addrPort)
	if err != nil || addr == "" {
		return "", "", bad
	}
	if _, _, ok := splitTarget(net.JoinHostPort(addr, port2), 0); !ok {
		return "", "", bad
	}
	return joinHostPort(h, p), net.JoinHostPort(addr, port2), nil
}

// dialer opens every upstream connection of the proxy, for MITM'd requests and
// plain tunnels alike, so that one place enforces --connect-to, the address
// rules and the invoking environment's own proxy.
type dialer struct {
	connectTo map[string]string // normalized "host:port" -> "addr:port"
	explicit  map[string]bool   // hosts the user allowed by exact name or address
	upstream  func(*http.Request) (*url.URL, error)
	net       net.Dialer
}

// errRefusedAddress marks a dial refused by the address rules, so the caller
// can answer 403 rather than 502.
var errRefusedAddress = errors.New("refused address")

var (
	metadataAddrs = []netip.Addr{netip.MustParseAddr("fd00:ec2::254"), netip.MustParseAddr("100.100.100.200")}
	sharedSpace   = netip.MustParsePrefix("100.64.0.0/10") // carrier-grade NAT, used inside clouds
)

// blockedAddr reports why an address may not be dialed unless the user named
// it: loopback reaches agentvault's neighbours, link-local holds cloud
// metadata services, private ranges hold the internal network an agent could
// otherwise probe through the proxy, and unspecified means this host.
func blockedAddr(a netip.Addr) string {
	a = a.Unmap()
	switch {
	case a.IsLoopback():
		return "loopback"
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast():
		return "link-local"
	case a.IsUnspecified():
		return "unspecified"
	case slices.Contains(metadataAddrs, a):
		return "cloud metadata"
	case a.IsPrivate(), sharedSpace.Contains(a):
		return "private"
	}
	return ""
}

// dialTarget connects to host:port directly (no upstream proxy), applying
// --connect-to and the address rules.
func (d *dialer) dialTarget(ctx context.Context, host string, port int) (net.Conn, error) {
	key := joinHostPort(host, port)
	if to, ok := d.connectTo[key]; ok {
		// A mapping is the user's explicit permission to dial its address, for
		// this HOST:PORT only.
		return d.net.DialContext(ctx, "tcp", to)
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, fmt.Errorf("cannot resolve %s: %w", host, unwrapDNS(err))
		}
		addrs = ips
	}
	var lastErr error
	for _, a := range addrs {
		if why := blockedAddr(a); why != "" && !d.explicit[host] && !d.explicit[a.Unmap().String()] {
			lastErr = fmt.Errorf("%w: %s resolves to %s address %s (allow it explicitly to connect)", errRefusedAddress, host, why, a)
			continue
		}
		// Dial the address that was checked, never the name again, so a
		// second DNS answer cannot swap in an address that was not checked.
		c, err := d.net.DialContext(ctx, "tcp", netip.AddrPortFrom(a.Unmap(), uint16(port)).String())
		if err == nil {
			return c, nil
		}
		lastErr = err
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("no address for %s", host)
	}
	return nil, lastErr
}

func unwrapDNS(err error) error {
	var de *net.DNSError
	if errors.As(err, &de) {
		return errors.New(de.Err)
	}
	return err
}

// upstreamProxyFor returns the invoking environment's proxy for an HTTPS
// target, or nil. Mapped targets never go through it: the mapping says where
// to dial.
func (d *dialer) upstreamProxyFor(host string, port int) *url.URL {
	if d.upstream == nil {
		return nil
	}
	key := joinHostPort(host, port)
	if _, ok := d.connectTo[key]; ok {
		return nil
	}
	u, err := d.upstream(&http.Request{URL: &url.URL{Scheme: "https", Host: key}})
	if err != nil {
		return nil
	}
	return u
}

// dialTunnel returns a raw byte stream to host:port, through the invoking
// environment's proxy when it has one.
func (d *dialer) dialTunnel(ctx context.Context, host string, port int) (net.Conn, error) {
	pu := d.upstreamProxyFor(host, port)
	if pu == nil {
		return d.dialTarget(ctx, host, port)
	}
	return d.connectVia(ctx, pu, joinHostPort(host, port))
}

// connectVia opens a CONNECT tunnel through an upstream HTTP(S) proxy.
func (d *dialer) connectVia(ctx context.Context, pu *url.URL, target string) (net.Conn, error) {
	port := pu.Port()
	if port == "" {
		port = map[string]string{"https": "443"}[pu.Scheme]
		if port == "" {
			port = "80"
		}
	}
	c, err := d.net.DialContext(ctx, "tcp", net.JoinHostPort(pu.Hostname(), port))
	if err != nil {
		return nil, fmt.Errorf("upstream proxy %s: %w", pu.Host, err)
	}
	if pu.Scheme == "https" {
		tc := tls.Client(c, &tls.Config{ServerName: pu.Hostname()})
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, fmt.Errorf("upstream proxy %s: %w", pu.Host, err)
		}
		c = tc
	}
	req := &http.Request{Method: http.MethodConnect, URL: &url.URL{Opaque: target}, Host: target, Header: http.Header{}}
	if pu.User != nil {
		pw, _ := pu.User.Password()
		req.Header.Set("Proxy-Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(pu.User.Username()+":"+pw)))
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	} else {
		c.SetDeadline(time.Now().Add(30 * time.Second))
	}
	if err := req.Write(c); err != nil {
		c.Close()
		return nil, fmt.Errorf("upstream proxy %s: %w", pu.Host, err)
	}
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, req)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("upstream proxy %s: %w", pu.Host, err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		c.Close()
		return nil, fmt.Errorf("upstream proxy %s answered CONNECT with %s", pu.Host, res.Status)
	}
	c.SetDeadline(time.Time{})
	if br.Buffered() > 0 {
		// The proxy may have sent the first tunnel bytes with its answer.
		return &bufferedConn{Conn: c, r: br}, nil
	}
	return c, nil
}

type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// newTransport builds the upstream transport. It is HTTP/1.1 only: martian
// would otherwise hand HTTP/2 status lines to HTTP/1.1 clients.
func (d *dialer) newTransport(roots *x509.CertPool) *http.Transport {
	return &http.Transport{
		Proxy: func(r *http.Request) (*url.URL, error) {
			host, port, ok := splitTarget(r.URL.Host, defaultPort(r.URL.Scheme))
			if !ok {
				return nil, nil
			}
			if r.URL.Scheme == "https" {
				return d.upstreamProxyFor(host, port), nil
			}
			if d.upstream == nil {
				return nil, nil
			}
			if _, mapped := d.connectTo[joinHostPort(host, port)]; mapped {
				return nil, nil
			}
			return d.upstream(r)
		},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, ok := splitTarget(addr, 0)
			if !ok {
				return nil, fmt.Errorf("bad upstream address %q", addr)
			}
			if d.upstream != nil {
				// Connections to an upstream proxy itself are dialed as named.
				if c, ok := d.isUpstreamProxy(host, port); ok {
					return d.net.DialContext(ctx, network, c)
				}
			}
			return d.dialTarget(ctx, host, port)
		},
		TLSClientConfig:       &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   15 * time.Second,
		DisableCompression:    true, // else Go adds Accept-Encoding and silently decodes
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     false,
		TLSNextProto:          map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
}

// isUpstreamProxy reports whether host:port is the address of an upstream
// proxy from the invoking environment (which may well be on loopback).
func (d *dialer) isUpstreamProxy(host string, port int) (string, bool) {
	for _, scheme := range []string{"https", "http"} {
		u, err := d.upstream(&http.Request{URL: &url.URL{Scheme: scheme, Host: "agentvault.invalid"}})
		if err != nil || u == nil {
			continue
		}
		p := u.Port()
		if p == "" {
			p = map[string]string{"https": "443"}[u.Scheme]
			if p == "" {
				p = "80"
			}
		}
		h, pp, ok := splitTarget(net.JoinHostPort(u.Hostname(), p), 0)
		if ok && h == host && pp == port {
			return joinHostPort(h, pp), true
		}
	}
	return "", false
}

func defaultPort(scheme string) int {
	if scheme == "https" {
		return 443
	}
	return 80
}
