package backends

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentvault/agentvault/internal/testsupport"
	vault "github.com/hashicorp/vault/api"
)

// A real PostgreSQL for Vault's database secrets engine: the machine image
// has PostgreSQL's server binaries but no running cluster, so the test makes
// one as the postgres user on a free loopback port.

type testPostgres struct {
	bin     string // the directory holding initdb, pg_ctl, psql
	port    int
	superPW string
}

func vaultSkipOrFail(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}

func startPostgres(t *testing.T) *testPostgres {
	t.Helper()
	initdbs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(initdbs) == 0 {
		vaultSkipOrFail(t, "no PostgreSQL server binaries under /usr/lib/postgresql (apt-get install postgresql)")
	}
	if os.Geteuid() != 0 {
		vaultSkipOrFail(t, "starting PostgreSQL as the postgres user needs root")
	}
	pgUser, err := user.Lookup("postgres")
	if err != nil {
		vaultSkipOrFail(t, "no postgres user: "+err.Error())
	}
	uid, _ := strconv.Atoi(pgUser.Uid)
	gid, _ := strconv.Atoi(pgUser.Gid)

	p := &testPostgres{bin: filepath.Dir(initdbs[len(initdbs)-1]), port: testsupport.FreePort(t), superPW: "s3cr3t-super-" + strconv.Itoa(os.Getpid())}
	// Not t.TempDir: its parents are private to root and postgres must reach it.
	dir, err := os.MkdirTemp("", "agentvault-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte(p.superPW+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{dir, pwFile} {
		if err := os.Chown(f, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	data := filepath.Join(dir, "data")
	asPostgres := func(timeout time.Duration, name string, args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", filepath.Join(p.bin, name)}, args...)...)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C"}
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			log, _ := os.ReadFile(filepath.Join(dir, "log"))
			t.Fatalf("%s %s: %v\n%s\n%s", name, strings.Join(args, " "), err, out, log)
		}
	}
	asPostgres(60*time.Second, "initdb", "-D", data, "-U", "postgres", "--pwfile="+pwFile,
		"--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync")
	asPostgres(60*time.Second, "pg_ctl", "-D", data, "-l", filepath.Join(dir, "log"), "-w", "-t", "30",
		"-o", fmt.Sprintf("-p %d -h 127.0.0.1 -k %s -c fsync=off", p.port, dir), "start")
	t.Cleanup(func() {
		asPostgres(30*time.Second, "pg_ctl", "-D", data, "-m", "immediate", "-w", "-t", "20", "stop")
	})
	return p
}

// psql runs one statement as user over TCP with a password, as any client of
// the database would, and returns its unaligned output.
func (p *testPostgres) psql(user, password, sql string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(p.bin, "psql"), "-w", "-X", "-h", "127.0.0.1",
		"-p", strconv.Itoa(p.port), "-U", user, "-d", "postgres", "-tAc", sql)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "PGPASSWORD=" + password, "PGCONNECT_TIMEOUT=5", "PGSSLMODE=disable"}
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// roleExists asks, as the superuser, whether a login role is in pg_roles.
func (p *testPostgres) roleExists(t *testing.T, name string) bool {
	t.Helper()
	out, err := p.psql("postgres", p.superPW, fmt.Sprintf("SELECT count(*) FROM pg_roles WHERE rolname = '%s'", strings.ReplaceAll(name, "'", "''")))
	if err != nil {
		t.Fatalf("querying pg_roles: %v: %s", err, out)
	}
	return out != "0"
}

// setupDatabase points Vault's database engine at p with role "agent":
// credentials valid for ttl, renewable up to maxTTL. The role's password
// expires with the lease (VALID UNTIL), and Vault moves that date on renewal.
func setupDatabase(t *testing.T, v *testVault, p *testPostgres, ttl, maxTTL string) {
	t.Helper()
	if err := v.root.Sys().Mount("database", &vault.MountInput{Type: "database"}); err != nil {
		t.Fatal(err)
	}
	v.write(t, "database/config/pg", map[string]any{
		"plugin_name":    "postgresql-database-plugin",
		"connection_url": fmt.Sprintf("postgresql://{{username}}:{{password}}@127.0.0.1:%d/postgres?sslmode=disable", p.port),
		"username":       "postgres",
		"password":       p.superPW,
		"allowed_roles":  "*",
	})
	v.write(t, "database/roles/agent", map[string]any{
		"db_name": "pg",
		"creation_statements": []string{
			`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`,
			`GRANT CONNECT ON DATABASE postgres TO "{{name}}";`,
		},
		"default_ttl": ttl,
		"max_ttl":     maxTTL,
	})
}

func leaseTTL(t *testing.T, v *testVault, id string) (time.Duration, error) {
	t.Helper()
	s, err := v.root.Logical().Write("sys/leases/lookup", map[string]any{"lease_id": id})
	if err != nil {
		return 0, err
	}
	n, err := s.Data["ttl"].(json.Number).Int64()
	return time.Duration(n) * time.Second, err
}

func TestVaultDatabase(t *testing.T) {
	t.Parallel()
	v := startVault(t)
	pg := startPostgres(t)
	setupDatabase(t, v, pg, "4s", "60s")
	ctx := context.Background()
	b := openTestVault(t, "address: "+v.addr, map[string]string{"VAULT_TOKEN": "root"})

	// Credentials on one path share one lease, even resolved concurrently.
	refs := []string{"database/creds/agent#username", "database/creds/agent#password", "database/creds/agent",
		"database/creds/agent#username", "database/creds/agent#password", "database/creds/agent"}
	got := make([]Secret, len(refs))
	errs := make([]error, len(refs))
	var wg sync.WaitGroup
	for i, ref := range refs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = b.Resolve(ctx, ref)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Resolve(%s): %v", refs[i], err)
		}
		if got[i].LeaseID != got[0].LeaseID || got[i].Value != got[i%3].Value {
			t.Fatalf("concurrent resolutions took more than one lease (%q vs %q)", got[i].LeaseID, got[0].LeaseID)
		}
	}
	userS, pwS, allS := got[0], got[1], got[2]
	user, pw := userS.Value, pwS.Value
	if !strings.HasPrefix(userS.LeaseID, "database/creds/agent/") || pwS.LeaseID != userS.LeaseID || allS.LeaseID != userS.LeaseID {
		t.Fatalf("lease IDs %q %q %q: want one shared database lease", userS.LeaseID, pwS.LeaseID, allS.LeaseID)
	}
	if !userS.Renewable || userS.TTL <= 0 || userS.TTL > 4*time.Second {
		t.Errorf("lease lifetime: renewable %v, TTL %s; want renewable with TTL in (0, 4s]", userS.Renewable, userS.TTL)
	}
	var all map[string]string
	if err := json.Unmarshal([]byte(allS.Value), &all); err != nil || all["username"] != user || all["password"] != pw {
		t.Errorf("without a field the value is not the JSON of username and password (err %v)", err)
	}
	if out, err := pg.psql(user, pw, "SELECT current_user"); err != nil || out != user {
		t.Fatalf("the Vault credential does not log in: %v: %s", err, out)
	}

	_, err := b.Resolve(ctx, "database/creds/agent#nope")
	if err == nil || !strings.Contains(err.Error(), `field "nope" not found (keys: "password", "username")`) {
		t.Errorf("missing field: %v", err)
	}
	if err != nil && (strings.Contains(err.Error(), pw) || strings.Contains(err.Error(), user)) {
		t.Errorf("error reveals the credential: %v", err)
	}

	// Longer than the 4s TTL: the credential still logs in only if the
	// backend renewed the lease (Vault would revoke it, and the role's
	// VALID UNTIL would refuse the password).
	time.Sleep(8 * time.Second)
	if out, err := pg.psql(user, pw, "SELECT 1"); err != nil || out != "1" {
		t.Fatalf("after 8s the credential no longer logs in: %v: %s", err, out)
	}
	// Vault reports whole seconds, so a renewal that is due (or late on a
	// loaded machine) reads as 0s: look again for a moment before calling
	// the lease unrenewed. An expired lease is an error, not 0s.
	ttl, err := leaseTTL(t, v, userS.LeaseID)
	for deadline := time.Now().Add(3 * time.Second); err == nil && ttl <= 0 && time.Now().Before(deadline); {
		time.Sleep(250 * time.Millisecond)
		ttl, err = leaseTTL(t, v, userS.LeaseID)
	}
	if err != nil || ttl <= 0 {
		t.Fatalf("lease after 8s: ttl %s, %v", ttl, err)
	}
	again, err := b.Resolve(ctx, "database/creds/agent#password")
	if err != nil || again.LeaseID != userS.LeaseID || again.Value != pw {
		t.Errorf("re-resolving took a new lease (%q vs %q) or value (err %v)", again.LeaseID, userS.LeaseID, err)
	}

	if err := b.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if pg.roleExists(t, user) {
		t.Error("the database role is still in pg_roles after Close")
	}
	if _, err := leaseTTL(t, v, userS.LeaseID); err == nil {
		t.Error("the lease is still known to Vault after Close")
	}
	if _, err := pg.psql(user, pw, "SELECT 1"); err == nil {
		t.Error("the credential still logs in after Close")
	}
}

// A login token under the default policy may not call sys/leases/revoke;
// Close then revokes the token, and with it its leases.
func TestVaultDatabaseAppRoleRevocation(t *testing.T) {
	t.Parallel()
	v := startVault(t)
	pg := startPostgres(t)
	setupDatabase(t, v, pg, "1m", "10m")
	if err := v.root.Sys().PutPolicy("db", `path "database/creds/agent" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	if err := v.root.Sys().PutPolicy("kv-read", kvReadPolicy); err != nil {
		t.Fatal(err)
	}
	roleID, secretID := setupAppRole(t, v, "dbagent", map[string]any{"token_policies": []string{"db"}})
	b := openTestVault(t, "address: "+v.addr+"\nauth: {method: approle, role_id: "+roleID+", secret_id: "+secretID+"}", nil)
	s, err := b.Resolve(context.Background(), "database/creds/agent#username")
	if err != nil {
		t.Fatal(err)
	}
	if !pg.roleExists(t, s.Value) {
		t.Fatal("no database role after Resolve")
	}
	if err := b.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Token revocation revokes its leases in the background: poll, bounded.
	deadline := time.Now().Add(15 * time.Second)
	for pg.roleExists(t, s.Value) {
		if time.Now().After(deadline) {
			t.Fatal("the database role outlived the revoked login token by 15s")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// The user's own token is never revoked; without the right to revoke leases
// Close says so, naming the lease and the capability to grant.
func TestVaultDatabaseUserTokenCannotRevoke(t *testing.T) {
	t.Parallel()
	v := startVault(t)
	pg := startPostgres(t)
	setupDatabase(t, v, pg, "1m", "10m")
	if err := v.root.Sys().PutPolicy("db", `path "database/creds/agent" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	tok, err := v.root.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"db"}, TTL: "10m"})
	if err != nil {
		t.Fatal(err)
	}
	b := openTestVault(t, "address: "+v.addr, map[string]string{"VAULT_TOKEN": tok.Auth.ClientToken})
	s, err := b.Resolve(context.Background(), "database/creds/agent#username")
	if err != nil {
		t.Fatal(err)
	}
	err = b.Close(context.Background())
	if err == nil || !strings.Contains(err.Error(), "vault revoking lease "+s.LeaseID+": permission denied (HTTP 403)") ||
		!strings.Contains(err.Error(), "needs update on sys/leases/revoke") {
		t.Errorf("Close = %v, want a permission error naming the lease", err)
	}
	if !v.tokenValid(t, tok.Auth.ClientToken) {
		t.Error("Close revoked the user's token")
	}
	if !pg.roleExists(t, s.Value) {
		t.Error("the role vanished although nothing could revoke it")
	}
}
