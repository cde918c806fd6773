package devcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/fido-operator/fido/internal/devcluster/netpol"
)

// NodeName is the dev node's name.
const NodeName = "fido-dev-node"

// Node is the dev node: one kubelet with containerd and runc beside the
// control plane, built by hack/node/build.sh into NodeAssets. Its files live under
// stateDir/node, and Stop (or the next start, after a crash) removes what
// it made on the machine: containers, mounts, network namespaces, the
// bridge, the kubepods cgroups, its nftables table and the sysctls it
// changed. NetworkPolicies are enforced by package netpol. It has no
// kube-proxy (pods reach each other by pod IP) and no image registry
// (images are imported into containerd).
type Node struct {
	dir   string
	bin   string
	procs []*exec.Cmd
	logs  []*os.File
	// stopEnforcer ends the NetworkPolicy enforcer; enforcerDone closes
	// once it has removed its table.
	stopEnforcer context.CancelFunc
	enforcerDone chan struct{}
}

// path is a file or directory under the node's directory.
func (n *Node) path(parts ...string) string {
	return filepath.Join(append([]string{n.dir}, parts...)...)
}

func (n *Node) socket() string { return n.path("run", "containerd.sock") }

// NodeUnavailable says in one line why this machine cannot run the dev
// node, or "" when it can.
func NodeUnavailable(assets string) string {
	switch {
	case assets == "":
		return "FIDO_NODE_ASSETS is not set (make run sets it from hack/node/build.sh)"
	case os.Geteuid() != 0:
		return "the dev node needs root (containerd, runc and the CNI bridge)"
	}
	if _, err := os.Stat(filepath.Join(assets, "kubelet")); err != nil {
		return "no kubelet in FIDO_NODE_ASSETS: " + err.Error()
	}
	for _, tool := range []string{"nft", "conntrack"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "no " + tool + " on PATH, which the dev node's NetworkPolicy enforcer needs (Debian: apt-get install nftables conntrack)"
		}
	}
	if _, err := os.Stat("/proc/sys/net/bridge"); err != nil {
		return "the kernel has no br_netfilter (modprobe br_netfilter), so NetworkPolicies could not see pod-to-pod traffic"
	}
	if fs, err := os.ReadFile("/proc/filesystems"); err != nil || !strings.Contains(string(fs), "overlay") {
		return "the kernel has no overlay filesystem, which containerd's snapshotter needs"
	}
	if _, err := os.Stat("/sys/fs/cgroup/pids"); err != nil {
		if _, err2 := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err2 != nil {
			return "no cgroup hierarchy at /sys/fs/cgroup"
		}
	}
	return ""
}

// PrepareNode removes what a previous dev node left (after a crash),
// records the kernel settings the node will change, and returns the kube-apiserver flags the node needs: the client certificate
// it shows the kubelet (for logs, exec and port-forward) and the node
// address it dials.
func PrepareNode(stateDir string) (map[string]string, error) {
	dir := filepath.Join(stateDir, "node")
	if err := cleanNode(dir); err != nil {
		return nil, fmt.Errorf("removing what the previous dev node left: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := saveSysctls(dir); err != nil {
		return nil, err
	}
	pki := filepath.Join(dir, "pki")
	if err := writeKubeletClientPKI(pki); err != nil {
		return nil, err
	}
	return map[string]string{
		"kubelet-client-certificate":      filepath.Join(pki, "apiserver-kubelet-client.crt"),
		"kubelet-client-key":              filepath.Join(pki, "apiserver-kubelet-client.key"),
		"kubelet-preferred-address-types": "InternalIP",
	}, nil
}

// StartNode starts containerd (after PrepareNode and the control plane's
// start), imports the node's images, starts the kubelet,
// kube-controller-manager and kube-scheduler, and waits for the node to be
// Ready. The taints are registered with the node (e.g. to keep tests' pods
// that do not tolerate them off it).
func StartNode(ctx context.Context, cp *envtest.ControlPlane, cfg *rest.Config, stateDir, assets string, taints ...string) (*Node, error) {
	dir, err := filepath.Abs(filepath.Join(stateDir, "node"))
	if err != nil {
		return nil, err
	}
	n := &Node{dir: dir, bin: assets}
	kubeconfigs, err := n.writeConfigs(cp)
	if err != nil {
		return nil, err
	}
	if err := n.start("containerd", "--config", n.path("containerd.toml")); err != nil {
		return nil, err
	}
	if err := n.importImages(ctx); err != nil {
		err = fmt.Errorf("%w; containerd's log ends: %s", err, n.logTail("containerd"))
		n.Stop()
		return nil, err
	}
	for _, args := range [][]string{
		{"kubelet", "--config", n.path("kubelet.yaml"), "--kubeconfig", kubeconfigs["kubelet"],
			"--hostname-override", NodeName, "--root-dir", n.path("kubelet"), "--cert-dir", n.path("kubelet", "pki"),
			"--node-labels", "fido.dev/dev-node=true", "--register-with-taints", strings.Join(taints, ","), "--v=1"},
		{"kube-controller-manager", "--kubeconfig", kubeconfigs["controller-manager"], "--leader-elect=false",
			"--secure-port=0", "--controllers=*,-nodeipam", "--v=1"},
		{"kube-scheduler", "--kubeconfig", kubeconfigs["scheduler"], "--leader-elect=false", "--secure-port=0", "--v=1"},
	} {
		if err := n.start(args[0], args[1:]...); err != nil {
			n.Stop()
			return nil, err
		}
	}
	if err := grantNetworkPolicyReader(ctx, cfg); err != nil {
		n.Stop()
		return nil, err
	}
	if err := n.startEnforcer(kubeconfigs["network-policy"]); err != nil {
		n.Stop()
		return nil, err
	}
	if err := waitNodeReady(ctx, cfg, 90*time.Second); err != nil {
		n.Stop()
		return nil, fmt.Errorf("%w (logs in %s)", err, n.path("logs"))
	}
	return n, nil
}

// start runs one of the node's binaries, its output in logs/NAME.log. It
// gets SIGTERM if this process dies without stopping it; the next start's
// cleanup removes what it leaves.
func (n *Node) start(name string, args ...string) error {
	log, err := os.Create(n.path("logs", name+".log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(n.bin, name), args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), "PATH="+n.bin+":"+os.Getenv("PATH"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		_ = log.Close()
		return fmt.Errorf("starting %s: %w", name, err)
	}
	n.procs, n.logs = append(n.procs, cmd), append(n.logs, log)
	return nil
}

// importImages loads every OCI archive of the assets (the sandbox and
// probe images) into containerd's Kubernetes namespace.
func (n *Node) importImages(ctx context.Context) error {
	archives, _ := filepath.Glob(filepath.Join(n.bin, "fido-*.tar"))
	deadline := time.Now().Add(30 * time.Second)
	for _, a := range archives {
		for {
			out, err := n.Ctr(ctx, "images", "import", a)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("importing %s into containerd: %w: %s", filepath.Base(a), err, strings.Join(strings.Fields(string(out)), " "))
			}
			time.Sleep(500 * time.Millisecond) // containerd is still starting
		}
	}
	return nil
}

// startEnforcer runs the NetworkPolicy enforcer under its own identity
// until Stop; its errors go to logs/network-policy.log.
func (n *Node) startEnforcer(kubeconfig string) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	e, err := netpol.New(cfg)
	if err != nil {
		return err
	}
	log, err := os.Create(n.path("logs", "network-policy.log"))
	if err != nil {
		return err
	}
	e.Errorf = func(format string, args ...any) {
		fmt.Fprintf(log, "%s %s\n", time.Now().Format(time.RFC3339), fmt.Sprintf(format, args...))
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.stopEnforcer, n.enforcerDone, n.logs = cancel, make(chan struct{}), append(n.logs, log)
	go func() {
		defer close(n.enforcerDone)
		if err := e.Run(ctx); err != nil {
			e.Errorf("%v", err)
		}
	}()
	return nil
}

// Stop ends the node's processes (the kubelet first, containerd last) and
// removes what they left on the machine.
func (n *Node) Stop() {
	if n.stopEnforcer != nil {
		n.stopEnforcer()
		<-n.enforcerDone
		n.stopEnforcer = nil
	}
	for i := len(n.procs) - 1; i >= 0; i-- {
		p := n.procs[i]
		_ = p.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = p.Process.Kill()
			<-done
		}
	}
	for _, l := range n.logs {
		_ = l.Close()
	}
	n.procs, n.logs = nil, nil
	if err := cleanNode(n.dir); err != nil {
		fmt.Fprintln(os.Stderr, "cleaning up the dev node:", err)
	}
}

// logTail is the last line of a component's log, for a one-line error.
func (n *Node) logTail(name string) string {
	raw, _ := os.ReadFile(n.path("logs", name+".log"))
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	return lines[len(lines)-1]
}

// Ctr runs containerd's ctr against the node's containerd, in the
// Kubernetes namespace, and returns its output.
func (n *Node) Ctr(ctx context.Context, args ...string) ([]byte, error) {
	args = append([]string{"-a", n.socket(), "-n", "k8s.io"}, args...)
	return exec.CommandContext(ctx, filepath.Join(n.bin, "ctr"), args...).CombinedOutput()
}

// waitNodeReady polls the node until its Ready condition is True.
func waitNodeReady(ctx context.Context, cfg *rest.Config, timeout time.Duration) error {
	cl, err := client.New(cfg, client.Options{})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		var nd corev1.Node
		if err := cl.Get(ctx, client.ObjectKey{Name: NodeName}, &nd); err == nil {
			for _, c := range nd.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return errors.New("node " + NodeName + " did not become Ready")
		case <-time.After(time.Second):
		}
	}
}
