package responseaction

import (
	"os"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/fido-operator/fido/internal/testenv"
)

// env is one real control plane shared by every test of the package; each
// test starts its own manager and works in its own namespaces.
var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, &env)) }

// startManager runs a manager with what setup registers until the test
// ends, and returns a client that reads straight from the API server.
func startManager(t *testing.T, setup func(mgr manager.Manager) error) client.Client {
	t.Helper()
	env.StartManager(t, env.Config, setup)
	return env.Client
}

func startManagerWith(t *testing.T, cfg *rest.Config, setup func(mgr manager.Manager) error) {
	t.Helper()
	env.StartManager(t, cfg, setup)
}

func newNamespace(t *testing.T, labels map[string]string) string {
	t.Helper()
	return env.NewNamespace(t, labels)
}

func eventually(t *testing.T, timeout time.Duration, cond func() error) {
	t.Helper()
	testenv.Eventually(t, timeout, cond)
}

func ptrTo[T any](v T) *T { return &v }
