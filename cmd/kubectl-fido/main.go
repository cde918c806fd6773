// Command kubectl-fido is the kubectl plugin for FIDO: on PATH as
// kubectl-fido, kubectl runs it as `kubectl fido`. It works with the
// user's own kubeconfig and RBAC, as kubectl does, and talks only to the
// API server:
//
//	kubectl fido get                    incidents, with their score, tier and actions
//	kubectl fido explain INCIDENT       why an incident scored what it did, and what FIDO does about it
//	kubectl fido approve ra/ACTION|incident/INCIDENT    approve one action, or every action of an incident awaiting approval
//	kubectl fido revert ra/ACTION|incident/INCIDENT     undo one action, or every action of an incident
//	kubectl fido resolve INCIDENT       close a true positive (--restore-access gives disabled identities back)
//	kubectl fido false-positive INCIDENT    close an incident as a false positive: every action is reverted
//	kubectl fido console                the web console on 127.0.0.1, with your kubeconfig's identity and RBAC
//
// approve and revert take ra/NAME (responseaction/NAME) or inc/NAME
// (incident/NAME); a bare NAME works when only one of the two kinds has
// it, and is refused when both do.
//
// Approving is a merge patch that sets spec.approved and the annotation
// security.fido.dev/approved-by to the caller's username (from a
// SelfSubjectReview) in one request, as the admission policy in
// config/admission demands. Writes that depend on what was read first
// carry its resourceVersion, so a change in between is noticed.
//
// Subcommands are entries of the commands table (commands.go): a new one
// is one entry there.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
