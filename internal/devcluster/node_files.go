package devcluster

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// podSubnet is the CNI bridge's pod network on the dev node.
const podSubnet = "10.244.0.0/24"

// bridgeName is the CNI bridge the dev node's pods attach to.
const bridgeName = "fido0"

// writeConfigs writes containerd's, the kubelet's and CNI's configuration
// and a kubeconfig for each component, and returns the kubeconfigs' paths.
func (n *Node) writeConfigs(cp *envtest.ControlPlane) (map[string]string, error) {
	for _, d := range []string{"logs", "run", "cni", "kubelet"} {
		if err := os.MkdirAll(n.path(d), 0o700); err != nil {
			return nil, err
		}
	}
	files := map[string]string{
		"containerd.toml":          n.containerdConfig(),
		"kubelet.yaml":             n.kubeletConfig(),
		"cni/10-fido-dev.conflist": cniConfig(n.path("run", "ipam")),
	}
	for name, body := range files {
		if err := os.WriteFile(n.path(name), []byte(body), 0o600); err != nil {
			return nil, err
		}
	}
	users := map[string]envtest.User{
		// The kubelet is a node, limited by the Node authorizer and NodeRestriction.
		"kubelet":   {Name: "system:node:" + NodeName, Groups: []string{"system:nodes"}},
		"scheduler": {Name: "system:kube-scheduler"},
		// The controller manager runs every controller under one identity.
		"controller-manager": {Name: "fido-dev-controller-manager", Groups: []string{"system:masters"}},
		// The NetworkPolicy enforcer only reads (networkPolicyReader).
		"network-policy": {Name: netpolUser},
	}
	paths := map[string]string{}
	for name, u := range users {
		au, err := cp.AddUser(u, nil)
		if err != nil {
			return nil, fmt.Errorf("creating the %s's credentials: %w", name, err)
		}
		raw, err := au.KubeConfig()
		if err != nil {
			return nil, err
		}
		paths[name] = n.path(name + ".kubeconfig")
		if err := os.WriteFile(paths[name], raw, 0o600); err != nil {
			return nil, err
		}
	}
	return paths, nil
}

// containerdConfig keeps containerd's state under the node's directory
// (network namespaces included, so cleanup finds every mount there). This
// machine gives root no CAP_SYS_RESOURCE, so OOM scores may only be raised.
func (n *Node) containerdConfig() string {
	return fmt.Sprintf(`version = 3
root = %[1]q
state = %[2]q
[grpc]
  address = %[3]q
[ttrpc]
  address = %[4]q
[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "localhost/fido-pause:dev"
[plugins."io.containerd.cri.v1.runtime"]
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
      BinaryName = %[5]q
      SystemdCgroup = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = [%[6]q]
    conf_dir = %[7]q
`, n.path("containerd"), n.path("run", "containerd"), n.socket(), n.socket()+".ttrpc",
		filepath.Join(n.bin, "runc"), n.bin, n.path("cni"))
}

// kubeletConfig allows this machine's cgroup v1, never collects images
// (they cannot be pulled again), adds no iptables chains to the machine
// (KUBE-FIREWALL and the canaries) and trusts the API server's client
// certificate from the node's own CA.
func (n *Node) kubeletConfig() string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
makeIPTablesUtilChains: false
containerRuntimeEndpoint: unix://%s
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %q}
authorization: {mode: Webhook}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi"}
localStorageCapacityIsolation: false
resolvConf: /etc/resolv.conf
`, n.socket(), n.path("pki", "ca.crt"))
}

// cniConfig is a bridge network without masquerading: the pods need no
// way out of the machine, and FIDO adds no iptables rules to clean up.
func cniConfig(ipamDir string) string {
	return fmt.Sprintf(`{"cniVersion": "1.0.0", "name": "fido-dev", "plugins": [
  {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": %q}}]}
`, bridgeName, podSubnet, ipamDir)
}

// writeKubeletClientPKI writes a CA the kubelet trusts and the client
// certificate kube-apiserver shows it, in the system:masters group.
func writeKubeletClientPKI(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fido-dev-kubelet-client-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2),
		Subject:   pkix.Name{CommonName: "kube-apiserver-kubelet-client", Organization: []string{"system:masters"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	for name, block := range map[string]*pem.Block{
		"ca.crt":                       {Type: "CERTIFICATE", Bytes: caDER},
		"apiserver-kubelet-client.crt": {Type: "CERTIFICATE", Bytes: leafDER},
		"apiserver-kubelet-client.key": {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// netpolUser is the NetworkPolicy enforcer's identity.
const netpolUser = "fido-dev-network-policy"

// grantNetworkPolicyReader lets the enforcer read what it compiles, and
// nothing else.
func grantNetworkPolicyReader(ctx context.Context, cfg *rest.Config) error {
	cl, err := client.New(cfg, client.Options{})
	if err != nil {
		return err
	}
	name := "fido-dev:network-policy-enforcer"
	read := []string{"get", "list", "watch"}
	objs := []client.Object{
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"pods", "namespaces"}, Verbs: read},
			{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"networkpolicies"}, Verbs: read},
		}},
		&rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: netpolUser}},
		},
	}
	for _, o := range objs {
		if err := cl.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("granting the NetworkPolicy enforcer its reads: %w", err)
		}
	}
	return nil
}
