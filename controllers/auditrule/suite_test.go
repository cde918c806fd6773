package auditrule

import (
	"os"
	"testing"

	"github.com/fido-operator/fido/internal/testenv"
)

// env is one real control plane shared by the package's tests.
var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, &env)) }
