package isolate

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// The control protocol: length-prefixed JSON messages over a Unix stream
// socket pair, with file descriptors attached (SCM_RIGHTS). agentvault sends
// setup, listen, exec and signal; PID 1 answers ready or refused, listening
// (with the listener), started or exec-failed.
const (
	opSetup      = "setup"
	opReady      = "ready"
	opRefused    = "refused"
	opListen     = "listen"
	opListening  = "listening"
	opExec       = "exec"
	opStarted    = "started"
	opExecFailed = "exec-failed"
	opSignal     = "signal"
)

// msg is one control message; each op uses a few of the fields.
type msg struct {
	Op string `json:"op"`

	// setup
	UID  int      `json:"uid,omitempty"`
	GID  int      `json:"gid,omitempty"`
	Dir  string   `json:"dir,omitempty"` // also exec's working directory
	Hide []string `json:"hide,omitempty"`
	// Transparent: answer DNS with loopback inside (see transparent_linux.go)
	Transparent bool `json:"transparent,omitempty"`

	// refused, exec-failed
	Step  string `json:"step,omitempty"`
	Err   string `json:"err,omitempty"`
	Errno int    `json:"errno,omitempty"`

	// listen
	Port int `json:"port,omitempty"`

	// exec (the three stdio descriptors ride along)
	Path string   `json:"path,omitempty"`
	Argv []string `json:"argv,omitempty"`
	Env  []string `json:"env,omitempty"`

	// signal
	Signal int `json:"signal,omitempty"`
}

const (
	maxMsgLen = 8 << 20 // an exec message carries the whole environment
	maxFDs    = 4
)

// ctl is one end of the control socket. send and recv may run concurrently
// with each other, but neither with itself.
type ctl struct {
	c       *net.UnixConn
	pending []int // descriptors received with the message being read
}

// newCtl takes over f, a Unix stream socket.
func newCtl(f *os.File) (*ctl, error) {
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, errors.New("control descriptor is not a Unix socket")
	}
	return &ctl{c: uc}, nil
}

func (c *ctl) send(m msg, fds ...int) error {
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	buf := make([]byte, 4+len(body))
	binary.BigEndian.PutUint32(buf, uint32(len(body)))
	copy(buf[4:], body)
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	n, _, err := c.c.WriteMsgUnix(buf, oob, nil)
	if err != nil {
		return err
	}
	// The descriptors went with the first byte; a short write is finished
	// without them. No empty write: on a socket whose peer has already
	// answered and exited, even that fails with EPIPE.
	if n < len(buf) {
		_, err = c.c.Write(buf[n:])
	}
	return err
}

// recv reads one message and the descriptors that came with it. The caller
// owns them (they are close-on-exec) and must close what it does not keep.
func (c *ctl) recv() (msg, []int, error) {
	var hdr [4]byte
	if err := c.readFull(hdr[:]); err != nil {
		return msg{}, c.takeFDs(), err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxMsgLen {
		return msg{}, c.takeFDs(), fmt.Errorf("control message of %d bytes", n)
	}
	body := make([]byte, n)
	if err := c.readFull(body); err != nil {
		return msg{}, c.takeFDs(), err
	}
	var m msg
	if err := json.Unmarshal(body, &m); err != nil {
		return msg{}, c.takeFDs(), fmt.Errorf("control message: %w", err)
	}
	return m, c.takeFDs(), nil
}

func (c *ctl) takeFDs() []int {
	fds := c.pending
	c.pending = nil
	return fds
}

func (c *ctl) readFull(b []byte) error {
	oob := make([]byte, unix.CmsgSpace(4*maxFDs))
	for len(b) > 0 {
		n, oobn, flags, _, err := c.c.ReadMsgUnix(b, oob)
		if oobn > 0 {
			c.pending = append(c.pending, parseRights(oob[:oobn])...)
		}
		if flags&unix.MSG_CTRUNC != 0 {
			return errors.New("control message: descriptors truncated")
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return io.EOF
		}
		b = b[n:]
	}
	return nil
}

func parseRights(oob []byte) []int {
	scms, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var fds []int
	for _, scm := range scms {
		got, err := unix.ParseUnixRights(&scm)
		if err != nil {
			continue
		}
		for _, fd := range got {
			unix.CloseOnExec(fd)
			fds = append(fds, fd)
		}
	}
	return fds
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

func (c *ctl) close() error { return c.c.Close() }
