package ca

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestNewDirUnusableXDG(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root can write into a read-only directory")
	}
	xdg := t.TempDir()
	if err := os.Chmod(xdg, 0o500); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(xdg, 0o700)
	d, err := NewDir(envOf(map[string]string{"XDG_RUNTIME_DIR": xdg}), "s")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Remove()
	if filepath.Dir(d.Path()) != filepath.Clean(os.TempDir()) {
		t.Errorf("did not fall back to the temp dir: %s", d.Path())
	}
}

func TestWriteBundle(t *testing.T) {
	d, err := NewDir(envOf(nil), "s")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Remove()
	roots, extra1, extra2 := pemOf(t, 2), pemOf(t, 1), pemOf(t, 1)
	a := mustNew(t, Options{})
	ca := a.CertPEM()

	// A part without its final newline must not run into the next block.
	noNL := bytes.TrimRight(extra2, "\n")
	bundle, caPath, err := d.WriteBundle(roots, [][]byte{extra1, nil, noNL}, ca)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(bundle)
	want := string(roots) + string(extra1) + string(noNL) + "\n" + string(ca)
	if string(got) != want {
		t.Errorf("bundle content or order wrong:\n%s", got)
	}
	if n := countCerts(got); n != 5 {
		t.Errorf("bundle holds %d certificates, want 5", n)
	}
	gotCA, _ := os.ReadFile(caPath)
	if string(gotCA) != string(ca) {
		t.Errorf("ca.pem is not the session CA alone:\n%s", gotCA)
	}
	if bytes.Contains(got, []byte("PRIVATE")) || bytes.Contains(gotCA, []byte("PRIVATE")) {
		t.Error("a private key was written")
	}

	// Rewriting replaces the files and leaves no temporary behind.
	if _, _, err := d.WriteBundle(nil, nil, ca); err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(bundle)
	if string(got) != string(ca) {
		t.Errorf("rewritten bundle:\n%s", got)
	}
	entries, _ := os.ReadDir(d.Path())
	if len(entries) != 2 {
		t.Errorf("session dir holds %d entries, want bundle.pem and ca.pem", len(entries))
	}

	if _, _, err := d.WriteBundle(roots, nil, nil); err == nil {
		t.Error("a bundle without the session CA was accepted")
	}
}

func TestRemoveIdempotent(t *testing.T) {
	d, err := NewDir(envOf(nil), "s")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.WriteBundle(nil, nil, []byte("ca\n")); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := d.Remove(); err != nil {
			t.Fatalf("Remove #%d: %v", i+1, err)
		}
	}
	if _, err := os.Lstat(d.Path()); !os.IsNotExist(err) {
		t.Errorf("directory still there: %v", err)
	}
}
