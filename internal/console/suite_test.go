package console_test

import (
	"os"
	"testing"

	"github.com/fido-operator/fido/internal/testenv"
)

// env is one real control plane (kube-apiserver and etcd) for the
// handler tests: TokenReview, SubjectAccessReview, RBAC and admission are
// the API server's own.
var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, &env)) }
