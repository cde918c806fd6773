package main

import (
	"context"
	"fmt"
	"io"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	fidov1 "github.com/fido-operator/fido/api/v1alpha1"
	"github.com/fido-operator/fido/internal/version"
)

// session is one invocation's connection to the API server, as the user's
// kubeconfig and the connection flags say.
type session struct {
	// out is where results go, errOut where notes go (stdout, stderr).
	out, errOut io.Writer
	// config is the REST configuration, for commands that need more than client.
	config *rest.Config
	// client reads and writes FIDO's kinds as the user.
	client client.Client
	// namespace is -n, or the kubeconfig context's namespace, or "default".
	namespace string
	// user is who the API server says the user is, once asked.
	user string
}

// newSession loads the kubeconfig and builds a client; it does not yet
// talk to the API server.
func newSession(conn *connFlags, out, errOut io.Writer) (*session, error) {
	// controller-runtime would otherwise warn that no logger is set.
	log.SetLogger(logr.Discard())
	cc := conn.clientConfig()
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, fmt.Errorf("reading the kubeconfig: %w", err)
	}
	config, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("reading the kubeconfig: %w", err)
	}
	config.UserAgent = "kubectl-fido/" + version.Version
	scheme := runtime.NewScheme()
	if err := fidov1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := authenticationv1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	cl, err := client.New(config, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("connecting to the API server: %w", err)
	}
	return &session{out: out, errOut: errOut, config: config, client: cl, namespace: ns}, nil
}

// whoami asks the API server who the user is (a SelfSubjectReview), once.
func (s *session) whoami(ctx context.Context) (string, error) {
	if s.user != "" {
		return s.user, nil
	}
	review := &authenticationv1.SelfSubjectReview{}
	if err := s.client.Create(ctx, review); err != nil {
		return "", fmt.Errorf("asking the API server who you are (SelfSubjectReview): %w", err)
	}
	if review.Status.UserInfo.Username == "" {
		return "", fmt.Errorf("the API server did not say who you are (SelfSubjectReview has no username)")
	}
	s.user = review.Status.UserInfo.Username
	return s.user, nil
}

// printf writes a result line to stdout.
func (s *session) printf(format string, args ...any) {
	fmt.Fprintf(s.out, format, args...)
}
