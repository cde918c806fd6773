package incident_test

import (
	"os"
	"testing"

	"github.com/fido-operator/fido/internal/testenv"
)

// env is one real control plane shared by every test of the package; each
// test starts its own manager and works in its own namespaces.
var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, &env)) }
