package isolate

import (
	"strings"
	"testing"
)

// TestRefused: where the kernel refuses a step, the command never runs, the
// helper gets a *Refused (exit 78) and the message names the step and how to
// enable it. The refusals are real: a user namespace whose
// user.max_user_namespaces is 0, and one whose /proc is partly masked, as
// Docker masks it.
func TestRefused(t *testing.T) {
	cases := []struct {
		name string
		wrap []string
		want []string
	}{
		{"user namespaces used up",
			[]string{"unshare", "-Ur", "sh", "-c", `echo 0 > /proc/sys/user/max_user_namespaces && exec "$0"`},
			[]string{"creating the user, PID, network, mount and IPC namespaces was refused", "user.max_user_namespaces is 0", "sysctl -w user.max_user_namespaces="}},
		{"/proc partly masked",
			[]string{"unshare", "-Urm", "sh", "-c", `mount --bind /dev/null /proc/uptime && exec "$0"`},
			[]string{"mounting a fresh /proc was refused", "masked paths"}},
	}
	for _, r := range runners(t) {
		for _, c := range cases {
			t.Run(r.name+"/"+c.name, func(t *testing.T) {
				res := r.run(t, c.wrap, map[string]string{"ISOLATE_PORT": "0"}, "echo the command ran")
				if res.code != 78 {
					t.Errorf("exit %d, want 78 (stderr %q)", res.code, res.stderr)
				}
				if strings.Contains(res.stdout, "the command ran") {
					t.Error("the command ran although isolation was refused")
				}
				for _, w := range c.want {
					if !strings.Contains(res.stderr, w) {
						t.Errorf("stderr lacks %q:\n%s", w, res.stderr)
					}
				}
				if n := strings.Count(strings.TrimSpace(res.stderr), "\n"); n != 0 {
					t.Errorf("refusal is %d lines, want one paragraph:\n%s", n+1, res.stderr)
				}
			})
		}
	}
}
