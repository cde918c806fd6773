package enforce

import (
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Class says how the controller should treat a driver error.
type Class int

// The error classes.
const (
	// ClassTransient errors are retried with backoff, up to the retry limit.
	ClassTransient Class = iota
	// ClassTerminal errors end the action Failed without retrying: the
	// target is gone, the operator is forbidden, or the spec is invalid.
	ClassTerminal
	// ClassSkip errors end the action Skipped: there is nothing this action
	// may do, e.g. the pod is already isolated by another action.
	ClassSkip
)

// String names the class.
func (c Class) String() string {
	switch c {
	case ClassTerminal:
		return "terminal"
	case ClassSkip:
		return "skip"
	default:
		return "transient"
	}
}

// ErrNotRevertible is returned by Revert for actions whose effect cannot be
// undone (DeletePod, Notify).
var ErrNotRevertible = errors.New("the action cannot be reverted")

type classifiedError struct {
	class Class
	err   error
}

func (e *classifiedError) Error() string { return e.err.Error() }
func (e *classifiedError) Unwrap() error { return e.err }

// Terminalf returns a terminal error: retrying will not help.
func Terminalf(format string, args ...any) error {
	return &classifiedError{class: ClassTerminal, err: fmt.Errorf(format, args...)}
}

// Skipf returns an error that ends the action Skipped with the message as reason.
func Skipf(format string, args ...any) error {
	return &classifiedError{class: ClassSkip, err: fmt.Errorf(format, args...)}
}

// Transientf returns an error that is retried with backoff.
func Transientf(format string, args ...any) error {
	return &classifiedError{class: ClassTransient, err: fmt.Errorf(format, args...)}
}

// Classify tells whether err is transient, terminal or a skip. Errors marked
// by Terminalf, Skipf or Transientf keep their class; API errors that a retry
// cannot fix (not found, forbidden, invalid, bad request) are terminal;
// everything else (conflicts, timeouts, unavailable servers) is transient.
func Classify(err error) Class {
	var ce *classifiedError
	if errors.As(err, &ce) {
		return ce.class
	}
	switch {
	case apierrors.IsNotFound(err), apierrors.IsGone(err), apierrors.IsForbidden(err),
		apierrors.IsInvalid(err), apierrors.IsBadRequest(err), apierrors.IsMethodNotSupported(err),
		apierrors.IsNotAcceptable(err), apierrors.IsUnsupportedMediaType(err),
		apierrors.IsRequestEntityTooLargeError(err), apierrors.IsUnauthorized(err):
		return ClassTerminal
	}
	return ClassTransient
}
