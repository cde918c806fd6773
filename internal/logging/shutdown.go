// Package logging holds the operator's adjustments to controller-runtime's
// logging.
package logging

import (
	"context"
	"errors"

	"github.com/go-logr/logr"
)

// releasedMessage is what controller-runtime logs, as an error with a
// stack trace, when the leader elector reports the lease gone after the
// manager began to stop; on a requested shutdown that is the lease being
// released (LeaderElectionReleaseOnCancel), not lost.
const releasedMessage = "error received after stop sequence was engaged"

// QuietShutdown returns the manager's logger: like l, except that once
// stopping() is true the errors controller-runtime logs for a clean stop
// (the lease it just released, a cache sync cut short) become info
// lines, so Ctrl-C or a rolling update logs no ERROR and no stack trace.
func QuietShutdown(l logr.Logger, stopping func() bool) logr.Logger {
	return logr.New(&shutdownSink{LogSink: l.GetSink(), stopping: stopping})
}

type shutdownSink struct {
	logr.LogSink
	stopping func() bool
}

// syncAbortedMessage is what a controller's source logs, as an error with
// a stack trace, when the process stops before its cache has synced.
const syncAbortedMessage = "failed to get informer from cache"

// Error logs, on a requested shutdown, the release of the lease, the
// abort of a cache sync and a request the shutdown cancelled (the leader
// elector's renewal in flight) as info; anything else as is.
func (s *shutdownSink) Error(err error, msg string, kv ...any) {
	switch {
	case err == nil || !s.stopping():
	case msg == releasedMessage && err.Error() == "leader election lost":
		s.Info(0, "leader lease released on shutdown")
		return
	case msg == syncAbortedMessage:
		s.Info(0, "cache sync stopped by the shutdown", append(kv, "reason", err.Error())...)
		return
	case errors.Is(err, context.Canceled):
		s.Info(0, msg+": cancelled by the shutdown", kv...)
		return
	}
	s.LogSink.Error(err, msg, kv...)
}

// WithValues keeps the filter on derived loggers.
func (s *shutdownSink) WithValues(kv ...any) logr.LogSink {
	return &shutdownSink{LogSink: s.LogSink.WithValues(kv...), stopping: s.stopping}
}

// WithName keeps the filter on derived loggers.
func (s *shutdownSink) WithName(name string) logr.LogSink {
	return &shutdownSink{LogSink: s.LogSink.WithName(name), stopping: s.stopping}
}
