package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// maxLine bounds one audit line. Real lines are a few hundred bytes; the
// bound keeps a corrupt or hostile file from growing memory without limit.
const maxLine = 1 << 20

// maxReported caps how many bad lines one error lists.
const maxReported = 10

// ReadLog parses an audit log. Blank lines are skipped, and a last line
// without its newline that does not parse is ignored: that is a write cut
// short by a crash or a still-running session, not corruption. Every other
// bad line is reported by number in the returned error, together with all
// the entries that did parse, so a caller can still show what is readable.
func ReadLog(r io.Reader) ([]Entry, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var (
		entries []Entry
		bad     []error
		nbad    int
	)
	report := func(n int, err error) {
		nbad++
		if len(bad) < maxReported {
			bad = append(bad, fmt.Errorf("line %d: %w", n, err))
		}
	}
	for n := 1; ; n++ {
		line, complete, err := readLine(br)
		if err != nil && !errors.Is(err, io.EOF) {
			if errors.Is(err, errLineTooLong) {
				report(n, err)
				if !complete {
					break
				}
				continue
			}
			return entries, fmt.Errorf("audit log: line %d: %w", n, err)
		}
		if len(bytes.TrimSpace(line)) > 0 {
			var e Entry
			if perr := json.Unmarshal(line, &e); perr != nil {
				if complete {
					report(n, perr)
				}
			} else {
				entries = append(entries, e)
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
	}
	if nbad == 0 {
		return entries, nil
	}
	if nbad > len(bad) {
		bad = append(bad, fmt.Errorf("and %d more bad lines", nbad-len(bad)))
	}
	return entries, fmt.Errorf("audit log: %w", errors.Join(bad...))
}

var errLineTooLong = errors.New("line longer than 1 MiB")

// readLine returns the next line without its newline. complete reports
// whether the newline was present; err is io.EOF after the last line.
// An over-long line is skipped up to its newline and reported.
func readLine(br *bufio.Reader) (line []byte, complete bool, err error) {
	var buf []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(buf)+len(chunk) > maxLine+1 {
			// Discard the rest of the line without keeping it.
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			if err == nil {
				return nil, true, errLineTooLong
			}
			if errors.Is(err, io.EOF) {
				return nil, false, errLineTooLong
			}
			return nil, false, err
		}
		buf = append(buf, chunk...)
		switch {
		case err == nil:
			return bytes.TrimSuffix(buf[:len(buf)-1], []byte("\r")), true, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return buf, false, io.EOF
		default:
			return nil, false, err
		}
	}
}
