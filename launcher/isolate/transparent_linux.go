package isolate

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Transparent mode (Spec.Transparent): inside the sandbox every name
// resolves to 127.0.0.1, where agentvault serves TLS on port 443 and plain
// HTTP on port 80 (ListenTransparent), so that clients ignoring the proxy
// variables still go through the proxy. PID 1 answers DNS itself; no query
// ever leaves the sandbox.

// Ports of the transparent listeners, inside the sandbox.
const (
	TransparentTLSPort  = 443
	TransparentHTTPPort = 80
)

// What resolvers read inside a transparent sandbox. The hosts file names
// localhost only, so that no name of the host's file bypasses the sandbox's
// DNS.
const (
	resolvConf = "nameserver 127.0.0.1\n"
	hostsFile  = "127.0.0.1 localhost\n::1 localhost\n"
)

// resolverSockets lead to a resolver outside the sandbox through the file
// system (a Unix socket needs no network): systemd-resolved's, which glibc's
// nss-resolve uses, and nscd's. They are covered like hidden files.
var resolverSockets = []string{
	"/run/systemd/resolve/io.systemd.Resolve",
	"/run/systemd/resolve/io.systemd.Resolve.Monitor",
	"/run/nscd/socket",
	"/var/run/nscd/socket",
}

// setupTransparent makes every name resolve to loopback in the sandbox. It
// runs in PID 1 with its set-up capabilities, after /proc is mounted and
// loopback is up, and before the hidden paths are covered.
func setupTransparent() (string, error) {
	if err := overlayResolverFiles(); err != nil {
		return stepResolver, err
	}
	for _, p := range resolverSockets {
		if err := hide(p); err != nil {
			return stepHide + p, err
		}
	}
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53})
	if err != nil {
		return stepDNS, err
	}
	go serveDNS(conn)
	return "", nil
}

// overlayResolverFiles binds read-only copies of resolvConf and hostsFile
// over /etc/resolv.conf and /etc/hosts (or what they link to). The copies
// live on a tmpfs mounted over /tmp just long enough to write them: nothing
// else runs in the sandbox yet, and the detached tmpfs lives on only in the
// two bind mounts.
func overlayResolverFiles() error {
	const scratch = "/tmp"
	if err := unix.Mount("tmpfs", scratch, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0700,size=64k"); err != nil {
		return err
	}
	defer unix.Unmount(scratch, unix.MNT_DETACH)
	for _, f := range []struct{ path, content string }{{"/etc/resolv.conf", resolvConf}, {"/etc/hosts", hostsFile}} {
		if _, err := os.Stat(f.path); errors.Is(err, fs.ErrNotExist) {
			// Absent (or a dangling link): resolvers then default to a
			// name server on localhost, which is the sandbox's.
			continue
		}
		src := filepath.Join(scratch, filepath.Base(f.path))
		if err := os.WriteFile(src, []byte(f.content), 0o444); err != nil {
			return err
		}
		if err := unix.Mount(src, f.path, "", unix.MS_BIND, ""); err != nil {
			return err
		}
		// Read-only, or the command (same uid as the copy) could point the
		// resolver elsewhere; it has no capability to remount.
		if err := unix.Mount("", f.path, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			return err
		}
	}
	return nil
}

// serveDNS answers every query on conn with loopback until conn fails. A
// malformed query gets no answer.
func serveDNS(conn *net.UDPConn) {
	buf := make([]byte, 512)
	for {
		n, from, err := conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		if out := answerLoopback(buf[:n]); out != nil {
			conn.WriteToUDP(out, from)
		}
	}
}

// ListenTransparent opens the sandbox's TLS and plain HTTP listeners on
// 127.0.0.1:443 and :80, for proxy.Proxy.ServeTransparent. The sandbox must
// have been started with Spec.Transparent (otherwise names do not resolve
// to them), and the command not yet: binding a port below 1024 needs PID 1's
// set-up capabilities, which it drops to start the command.
func (s *Sandbox) ListenTransparent() (tlsLn, httpLn net.Listener, err error) {
	if !s.transparent {
		return nil, nil, errors.New("isolate: ListenTransparent on a sandbox without Spec.Transparent")
	}
	if tlsLn, err = s.Listen(TransparentTLSPort); err != nil {
		return nil, nil, err
	}
	if httpLn, err = s.Listen(TransparentHTTPPort); err != nil {
		tlsLn.Close()
		return nil, nil, err
	}
	return tlsLn, httpLn, nil
}
