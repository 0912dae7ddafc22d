package isolate

import (
	"errors"
	"os"
	"strings"
	"syscall"
)

// Set-up steps, as the refusal message names them.
const (
	stepCreate   = "creating the user, PID, network, mount and IPC namespaces"
	stepMapIDs   = "mapping your uid and gid into the user namespace"
	stepMounts   = "making the sandbox's mounts its own"
	stepProc     = "mounting a fresh /proc"
	stepLoopback = "bringing up the loopback interface"
	stepHide     = "hiding " // + the path
	stepDir      = "entering the working directory"
	stepListen   = "listening for the proxy inside the sandbox"
	stepResolver = "pointing the sandbox's resolver configuration at its own DNS"
	stepDNS      = "answering DNS inside the sandbox on 127.0.0.1:53"
)

// sysctlValue reads a /proc/sys setting, "" when absent.
var sysctlValue = func(name string) string {
	b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(name, ".", "/"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// refusedClone explains a failure to create the namespaces.
func refusedClone(err error) error {
	return &Refused{Step: stepCreate, Err: unwrapErrno(err), Hint: hint(stepCreate, unwrapErrno(err))}
}

// refusedStep turns PID 1's refusal message into a *Refused.
func refusedStep(m msg) error {
	var err error = errors.New(m.Err)
	if m.Errno != 0 {
		err = syscall.Errno(m.Errno)
	}
	return &Refused{Step: m.Step, Err: err, Hint: hint(m.Step, err)}
}

func unwrapErrno(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}

// hint says how to enable isolation, from the step, the error and the
// settings that usually cause it.
func hint(step string, err error) string {
	switch {
	case sysctlValue("user.max_user_namespaces") == "0" || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EUSERS):
		return "User namespaces are disabled or used up (user.max_user_namespaces is " + orUnknown(sysctlValue("user.max_user_namespaces")) +
			" here, or in the namespace agentvault runs in): enable them with `sysctl -w user.max_user_namespaces=15000`."
	case sysctlValue("kernel.unprivileged_userns_clone") == "0":
		return "Unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone=0): enable them with `sysctl -w kernel.unprivileged_userns_clone=1`."
	case sysctlValue("kernel.apparmor_restrict_unprivileged_userns") == "1" && step != stepCreate:
		return "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns=1): allow them for agentvault with an AppArmor profile granting `userns,` to its binary, or set the sysctl to 0."
	case step == stepCreate && errors.Is(err, syscall.EINVAL):
		return "This kernel lacks one of these namespaces (CONFIG_USER_NS, CONFIG_PID_NS, CONFIG_NET_NS)."
	case step == stepCreate:
		return "Creating namespaces is blocked, usually by a container's seccomp profile (Docker: --security-opt seccomp=unconfined or a profile that allows clone with CLONE_NEWUSER; Kubernetes: a pod allowed to create user namespaces) or by a security module."
	case step == stepProc:
		return "A container usually hides parts of /proc (Docker's masked paths), which forbids mounting a fresh one: run the container with --security-opt systempaths=unconfined (Docker) or procMount: Unmasked (Kubernetes)."
	case strings.HasPrefix(step, stepHide):
		return "Remove the path from isolate.hide or fix its permissions."
	case step == stepDir:
		return "The working directory is inside a hidden path or not reachable inside the sandbox: run from another directory or list it under isolate.show."
	}
	return "A security module or container runtime may forbid this step."
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
