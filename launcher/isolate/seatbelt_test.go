package isolate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestSeatbeltProfileText: the generated macOS profile denies the network but
// the listed loopback ports, denies the hidden paths (passed as parameters,
// never as text) and confines process information and signals to the
// sandbox. Hostile path names (quotes, backslashes, newlines, parentheses,
// "=" and SBPL comments) leave the text byte for byte the same as a plain
// path's, and reach sandbox-exec unchanged.
func TestSeatbeltProfileText(t *testing.T) {
	hostile := []string{
		`/Users/a"b/.aws`,
		`/Users/a\b/.aws`,
		"/Users/a\nb/.aws",
		"/Users/x\")) (allow default) ; \n(allow network*)/.aws",
		`/Users/a=b/.aws`,
		"/Users/a\\\"\n#|/.netrc",
	}
	plain, err := NewSeatbeltProfile([]int{8080}, []string{"/Users/u/.aws"})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hostile {
		p, err := NewSeatbeltProfile([]int{8080}, []string{h})
		if err != nil {
			t.Fatalf("%q: %v", h, err)
		}
		if p.Text != plain.Text {
			t.Errorf("path %q changed the profile's text:\n%s", h, p.Text)
		}
		if want := []string{"HIDE_0=" + h}; !reflect.DeepEqual(p.Params, want) {
			t.Errorf("params %q, want %q", p.Params, want)
		}
		args := p.Args("/bin/sh", []string{"sh", "-c", "true"})
		if want := []string{"sandbox-exec", "-p", p.Text, "-D", "HIDE_0=" + h, "--", "/bin/sh", "-c", "true"}; !reflect.DeepEqual(args, want) {
			t.Errorf("args %q\nwant %q", args, want)
		}
	}
	if err := balanced(plain.Text); err != nil {
		t.Errorf("profile does not parse: %v\n%s", err, plain.Text)
	}

	for _, c := range []struct {
		name      string
		ports     []int
		hidden    []string
		want, not []string // lines (after trimming) present / absent
	}{
		{
			name:  "proxy port only",
			ports: []int{41234},
			want: []string{
				`(allow default)`,
				`(deny network*)`,
				`(allow network-outbound (remote ip "localhost:41234"))`,
				`(allow network-inbound (local ip "localhost:*"))`,
				`(deny mach-lookup (global-name "com.apple.dnssd.service"))`,
				`(deny process-info*)`,
				`(allow process-info* (target same-sandbox))`,
				`(deny signal)`,
				`(allow signal (target same-sandbox))`,
				`(deny mach-priv-task-port)`,
			},
			not: []string{`(allow network*)`, `(allow network-outbound)`, `(allow network-outbound (remote ip "localhost:*"))`},
		},
		{
			name:  "extra ports, repeated once",
			ports: []int{1, 65535, 1},
			want: []string{
				`(allow network-outbound (remote ip "localhost:1"))`,
				`(allow network-outbound (remote ip "localhost:65535"))`,
			},
		},
		{
			name:   "hidden paths by parameter",
			ports:  []int{8080},
			hidden: []string{"/Users/u/.aws", "/Users/u/.netrc"},
			want: []string{
				`(deny file-read* file-write* (subpath (param "HIDE_0")))`,
				`(deny file-read* file-write* (subpath (param "HIDE_1")))`,
			},
			not: []string{`/Users/u`},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := NewSeatbeltProfile(c.ports, c.hidden)
			if err != nil {
				t.Fatal(err)
			}
			lines := map[string]int{}
			for _, l := range strings.Split(p.Text, "\n") {
				lines[strings.TrimSpace(l)]++
			}
			for _, w := range c.want {
				if lines[w] != 1 {
					t.Errorf("%d lines %q, want 1:\n%s", lines[w], w, p.Text)
				}
			}
			for _, n := range c.not {
				if strings.Contains(p.Text, n) {
					t.Errorf("profile contains %q:\n%s", n, p.Text)
				}
			}
			// Seatbelt takes the last matching rule: every allow-back must
			// follow its deny.
			for _, pair := range [][2]string{
				{`(deny network*)`, `(allow network-outbound (remote ip "localhost:`},
				{`(allow default)`, `(deny file-read* file-write*`},
				{`(deny process-info*)`, `(allow process-info* (target same-sandbox))`},
				{`(deny signal)`, `(allow signal (target same-sandbox))`},
			} {
				d, a := strings.Index(p.Text, pair[0]), strings.Index(p.Text, pair[1])
				if a >= 0 && (d < 0 || d > a) {
					t.Errorf("%q does not precede %q", pair[0], pair[1])
				}
			}
			if err := balanced(p.Text); err != nil {
				t.Errorf("profile does not parse: %v", err)
			}
		})
	}
}

// TestSeatbeltProfileRejects: out-of-range ports and paths SBPL would not
// match (relative, unclean) or argv cannot carry (NUL) are errors, not
// silently weaker profiles.
func TestSeatbeltProfileRejects(t *testing.T) {
	for _, c := range []struct {
		name   string
		ports  []int
		hidden []string
	}{
		{"port 0", []int{0}, nil},
		{"negative port", []int{-1}, nil},
		{"port above 65535", []int{65536}, nil},
		{"relative path", []int{80}, []string{"Users/u/.aws"}},
		{"unclean path", []int{80}, []string{"/Users/u/../u/.aws"}},
		{"trailing slash", []int{80}, []string{"/Users/u/.aws/"}},
		{"NUL", []int{80}, []string{"/Users/u/.aws\x00x"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if p, err := NewSeatbeltProfile(c.ports, c.hidden); err == nil {
				t.Errorf("accepted; profile:\n%s", p.Text)
			}
		})
	}
}

// TestResolveHidden: a hidden path is denied as written and where its
// symbolic links lead (a linked ~/.aws, a home under a linked directory, a
// path that does not exist yet under a linked parent), since Seatbelt
// compares the real path of what is opened.
func TestResolveHidden(t *testing.T) {
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	real := filepath.Join(root, "real")
	must(os.MkdirAll(filepath.Join(real, "home", "aws-store"), 0o700))
	// home -> real/home; home/.aws -> aws-store
	must(os.Symlink(filepath.Join(real, "home"), filepath.Join(root, "home")))
	must(os.Symlink("aws-store", filepath.Join(real, "home", ".aws")))
	must(os.WriteFile(filepath.Join(real, "home", ".netrc"), nil, 0o600))
	// A name an attacker chose, with a quote and a newline.
	odd := filepath.Join(root, "od\"d\nname")
	must(os.Mkdir(odd, 0o700))
	must(os.Symlink(filepath.Join(real, "home", "aws-store"), filepath.Join(odd, "link")))

	home := filepath.Join(root, "home")
	got := ResolveHidden([]string{
		home + "/.aws",
		home + "/.netrc/",
		home + "/.config/gh", // does not exist
		filepath.Join(odd, "link"),
		"relative/ignored",
		home + "/.aws", // twice
	}, filepath.EvalSymlinks)
	want := []string{
		home + "/.aws", real + "/home/aws-store",
		home + "/.netrc", real + "/home/.netrc",
		home + "/.config/gh", real + "/home/.config/gh",
		filepath.Join(odd, "link"),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	// Every resolved path makes a valid profile.
	if _, err := NewSeatbeltProfile([]int{8080}, got); err != nil {
		t.Error(err)
	}
}

// balanced checks the profile is a sequence of balanced s-expressions whose
// strings are closed, skipping ";" comments: the shape SBPL's reader needs.
func balanced(text string) error {
	depth, inStr, esc, comment := 0, false, false, false
	for i, r := range text {
		switch {
		case comment:
			comment = r != '\n'
		case inStr && esc:
			esc = false
		case inStr && r == '\\':
			esc = true
		case inStr:
			inStr = r != '"'
			if r == '\n' {
				return fmt.Errorf("newline in a string at %d", i)
			}
		case r == ';':
			comment = true
		case r == '"':
			inStr = true
		case r == '(':
			depth++
		case r == ')':
			depth--
			if depth < 0 {
				return fmt.Errorf("unbalanced ) at %d", i)
			}
		}
	}
	if depth != 0 || inStr {
		return errors.New("unclosed ( or string")
	}
	return nil
}
