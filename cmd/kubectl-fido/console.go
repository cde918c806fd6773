package main

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/spf13/pflag"

	"github.com/fido-operator/fido/internal/console"
)

// setupConsole serves FIDO's web console on this machine with the user's
// kubeconfig: the same pages the manager serves, read from a cache the
// user's own credentials fill, every page and action checked with a
// SelfSubjectAccessReview and every change made as the user. It listens on
// loopback only and prints a URL with a one-time key; nothing is exposed
// in the cluster and no login is needed.
func setupConsole(fs *pflag.FlagSet) runner {
	port := fs.Int("port", 8082, "Local port to serve the console on (0 picks a free one).")
	address := fs.String("address", "127.0.0.1", "Loopback address to listen on (127.0.0.1 or ::1). The console acts with your credentials, so it never listens elsewhere.")
	operatorNamespace := fs.String("operator-namespace", "fido-system", "FIDO's namespace, where the cluster-wide scoring policies are.")
	return func(ctx context.Context, s *session, args []string) error {
		if len(args) != 0 {
			return fmt.Errorf("console takes no arguments, got %q", args)
		}
		return console.RunLocalWith(ctx, console.LocalOptions{
			Config: s.config, Addr: net.JoinHostPort(*address, strconv.Itoa(*port)),
			Namespace: s.namespace, OperatorNamespace: *operatorNamespace, Out: s.out,
		})
	}
}
