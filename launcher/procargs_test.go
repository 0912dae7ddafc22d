package launcher

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

// procargs2 lays out a KERN_PROCARGS2 snapshot the way macOS does: argc, the
// executable path, NUL padding, argv, the environment, the apple strings.
func procargs2(argc int, path string, pad int, strs ...[]string) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, uint32(argc))
	b.WriteString(path)
	b.Write(make([]byte, 1+pad))
	for _, list := range strs {
		for _, s := range list {
			b.WriteString(s)
			b.WriteByte(0)
		}
	}
	b.Write(make([]byte, 8)) // alignment up to the top of the stack
	return b.Bytes()
}

func TestEnvBlock(t *testing.T) {
	args := []string{"/usr/local/bin/agentvault", "run", "--", "claude"}
	env := []string{"HOME=/Users/a", "ANTHROPIC_API_KEY=sk-ant-real", "PATH=/usr/bin"}
	apple := []string{"executable_path=/usr/local/bin/agentvault", "ptr_munge=", "main_stack="}
	path := "/usr/local/bin/agentvault"
	tests := []struct {
		name    string
		snap    []byte
		env     []string
		wantEnv []string // the strings the extent must cover, in order
		wantErr string
	}{
		{"plain", procargs2(4, path, 5, args, env, apple), env, env, ""},
		{"no padding", procargs2(4, path, 0, args, env, apple), env, env, ""},
		{"empty environment", procargs2(4, path, 3, args, apple), nil, nil, ""},
		{"dyld-pruned and empty entries are covered",
			procargs2(4, path, 2, args, []string{"DYLD_INSERT_LIBRARIES=/x.dylib", env[0], "", env[1], env[2]}, apple),
			env, []string{"DYLD_INSERT_LIBRARIES=/x.dylib", env[0], "", env[1], env[2]}, ""},
		// An apple string that looks like an environment entry is not one.
		{"stops at the last entry", procargs2(4, path, 1, args, env, []string{"PATH=/usr/bin"}), env, env, ""},
		{"argc differs", procargs2(3, path, 1, args, env, apple), env, nil, "argc"},
		{"argument differs", procargs2(4, path, 1, []string{args[0], "run", "--", "codex"}, env, apple), env, nil, "argument 3"},
		{"environment changed since start", procargs2(4, path, 1, args, env, apple),
			[]string{env[0], "ANTHROPIC_API_KEY=other", env[2]}, nil, "entry 1 differs"},
		{"environment longer than the block", procargs2(4, path, 1, args, env[:1]), env, nil, "entry 1"},
		{"truncated", []byte{4, 0}, env, nil, "too short"},
		{"no path terminator", append(binary.LittleEndian.AppendUint32(nil, 4), path...), env, nil, "no executable path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			argv0, off, n, err := envBlock(tc.snap, args, tc.env)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v; want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := string(tc.snap[argv0 : argv0+len(args[0])]); got != args[0] {
				t.Fatalf("argv0 at %d reads %q", argv0, got)
			}
			var want []byte
			for _, s := range tc.wantEnv {
				want = append(append(want, s...), 0)
			}
			if got := tc.snap[off : off+n]; !bytes.Equal(got, want) {
				t.Fatalf("extent %q; want %q", got, want)
			}
			// What the scrub leaves: the arguments and the apple strings intact.
			scrubbed := bytes.Clone(tc.snap)
			clear(scrubbed[off : off+n])
			if bytes.Contains(scrubbed, []byte("sk-ant-real")) {
				t.Fatal("the secret survives outside the extent")
			}
			if !bytes.Equal(scrubbed[:off], tc.snap[:off]) || !bytes.Equal(scrubbed[off+n:], tc.snap[off+n:]) {
				t.Fatal("bytes outside the extent changed")
			}
		})
	}
}
